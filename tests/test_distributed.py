"""Multi-process data-parallel training (fastfield.train.distributed, train.launch) on the CPU:
gloo process groups of 2 ranks, the built-in scene at 32 x 32 and tiny networks."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from fastfield.train import Trainer
from fastfield.train.checkpoint import load_checkpoint
from fastfield.train.distributed import BUCKET_BYTES, World, share_of_batch
from fastfield.train.launch import check_process_count
from fastfield.train.log import read_records
from fastfield.train.schedule import learning_rate
from distributed_helpers import fixed_ray_step, free_port, step_on_share
from training_helpers import tiny_config, tiny_overrides

ROOT = Path(__file__).resolve().parents[1]
HELPERS = Path(__file__).resolve().parent / "distributed_helpers.py"


def single_trainer(name, out_dir, *extra) -> Trainer:
    return Trainer(tiny_config(name, 1, *extra), out_dir, device="cpu", backend="kernels",
                   progress=False)


def spawn_step(tmp_path, name, extra, pixels, bucket_bytes=BUCKET_BYTES):
    """Both ranks' gradients and parameters after one fixed-ray step on their halves."""
    torch.save(pixels, tmp_path / "pixels.pt")
    mp.start_processes(step_on_share, args=(2, free_port(), name, extra,
                                            str(tmp_path / "pixels.pt"), str(tmp_path),
                                            bucket_bytes),
                       nprocs=2, start_method="spawn")
    return [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(2)]


def fixed_pixels(trainer: Trainer, n: int) -> torch.Tensor:
    """n pixel ids [n, 3] spread over the training images (not the run's sampler)."""
    images = trainer.images
    generator = torch.Generator().manual_seed(7)
    return torch.stack([torch.randint(0, size, (n,), generator=generator)
                        for size in images.shape[:3]], dim=-1)


def assert_close(actual, expected, rtol, what):
    for index, (a, e) in enumerate(zip(actual, expected)):
        error = (a - e).norm() / e.norm().clamp_min(1e-30)
        assert error <= rtol, f"{what} {index}: relative error {error:.3g}"


def test_a_step_split_over_two_ranks_equals_one_process_on_all_rays(tmp_path):
    """NeRF's loss is a mean over rays, so the average of two equal halves' gradients is the
    gradient on all rays: after one update from the same weights on the same fixed rays the
    2-rank parameters equal the single-process ones to 1e-6 relative. Buckets of 5 kB split
    the gradients over several all-reduces in flight at once."""
    single = single_trainer("nerf-small", tmp_path / "single")
    pixels = fixed_pixels(single, 32)
    ranks = spawn_step(tmp_path, "nerf-small", [], pixels, bucket_bytes=5000)
    assert torch.load(tmp_path / "buckets0.pt") > 3
    fixed_ray_step(single, pixels)
    grads = [p.grad for p in single.model.parameters()]
    params = [p.detach() for p in single.model.parameters()]
    for rank in ranks:
        assert_close(rank["grads"], grads, 1e-5, "gradient")
        assert_close(rank["params"], params, 1e-6, "parameter")
    # The step moved the weights (so equality is not trivially that of the initialisation).
    start = single_trainer("nerf-small", tmp_path / "start")
    assert all((a - b).abs().max() > 0 for a, b in zip(params, start.model.parameters()))


def test_neus_ranks_average_their_eikonal_double_backward_gradients(tmp_path):
    """NeuS (eikonal term: double backward, no DDP): the ranks end with the mean of the two
    halves' single-process gradients and take the same Adam step from it."""
    extra = ["warm_up=0"]  # the cosine schedule's first update would have lr 0
    halves = []
    for index in range(2):
        trainer = single_trainer("neus-small", tmp_path / f"half{index}", *extra)
        pixels = fixed_pixels(trainer, 16)
        fixed_ray_step(trainer, pixels.chunk(2)[index])
        halves.append([p.grad.clone() for p in trainer.model.parameters()])
    mean = [(a + b) / 2 for a, b in zip(*halves)]
    reference = single_trainer("neus-small", tmp_path / "reference", *extra)
    for group in reference.optimizer.param_groups:
        group["lr"] = learning_rate(reference.config, 0)
    for parameter, grad in zip(reference.model.parameters(), mean):
        parameter.grad = grad.clone()
    reference.optimizer.step()
    ranks = spawn_step(tmp_path, "neus-small", extra, pixels)
    for rank in ranks:
        assert_close(rank["grads"], mean, 1e-5, "gradient")
        assert_close(rank["params"], [p.detach() for p in reference.model.parameters()], 1e-6,
                     "parameter")


def cli(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "fastfield", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=timeout)


def train_cli(name, out, iters, nproc, *extra, resume=False):
    sets = [item for assignment in tiny_overrides(name, iters, "ckpt_every=3", *extra)
            for item in ("--set", assignment)]
    result = cli("train", "--preset", name, *sets, "--out", str(out), "--device", "cpu",
                 "--nproc", str(nproc), "--no-progress", *(["--resume"] if resume else []))
    assert result.returncode == 0, result.stderr
    return result


def test_two_rank_nerf_run_resumes_exactly_and_on_one_rank(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    out = train_cli("nerf-small", straight, 6, 2)
    assert "x 2 processes" in out.stdout
    train_cli("nerf-small", resumed, 3, 2)
    train_cli("nerf-small", resumed, 6, 2, resume=True)
    expected, actual = load_checkpoint(straight / "checkpoint.pt"), \
        load_checkpoint(resumed / "checkpoint.pt")
    assert actual["step"] == expected["step"] == 6
    for key, value in expected["model"].items():
        assert torch.equal(value, actual["model"][key]), key
    assert len(actual["rng"]["device_generators"]) == 2
    streams = actual["rng"]["device_generators"]
    assert not torch.equal(streams[0], streams[1])  # each rank its own stream
    # Rank 0 alone writes the metrics: each window once (step 3 ended the first session).
    assert [r["step"] for r in read_records(resumed / "metrics.jsonl")] == [2, 3, 4, 6]
    assert sorted(p.name for p in resumed.iterdir()) == ["checkpoint.pt", "metrics.jsonl",
                                                         "training_curve.png"]
    one = train_cli("nerf-small", resumed, 8, 1, resume=True)
    assert "resuming with 1 process(es) a run saved by 2" in one.stderr
    assert load_checkpoint(resumed / "checkpoint.pt")["step"] == 8


def test_two_rank_neus_run_trains_and_resumes(tmp_path):
    train_cli("neus-small", tmp_path, 3, 2)
    first = load_checkpoint(tmp_path / "checkpoint.pt")
    train_cli("neus-small", tmp_path, 5, 2, resume=True)
    second = load_checkpoint(tmp_path / "checkpoint.pt")
    assert (first["step"], second["step"]) == (3, 5)
    assert any(not torch.equal(first["model"][k], v) for k, v in second["model"].items())
    assert all(torch.isfinite(v).all() for v in second["model"].values())
    records = [r for r in read_records(tmp_path / "metrics.jsonl") if "loss" in r]
    assert [r["step"] for r in records] == [2, 3, 4, 5]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in records)


@pytest.mark.parametrize("how, message", [
    ("rank1-exits", "rank 1 of 2 exited with code 3"),
    ("rank0-killed-writing", "rank 0 of 2 was killed by SIGKILL")])
def test_a_dying_rank_ends_the_run_and_leaves_no_partial_checkpoint(how, message, tmp_path):
    """A rank lost after the step-2 checkpoint (exiting, or killed while writing the step-4
    checkpoint): the launcher stops the other rank, says which rank failed and how, removes
    the half-written file and keeps the step-2 checkpoint."""
    overrides = tiny_overrides("nerf-small", 8, "ckpt_every=2")
    script = ("import sys; from pathlib import Path; from fastfield.train.launch import launch\n"
              "try:\n"
              f"    launch({[str(HELPERS), str(tmp_path), how, *overrides]!r}, 2, "
              f"Path({str(tmp_path)!r}))\n"
              "except RuntimeError as error:\n"
              "    print('FAILED:', error); sys.exit(1)\n")
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{HELPERS.parent}",
               OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("FAILED:"))
    assert message in line and "(step 2) is the last complete checkpoint" in line, line
    if how == "rank0-killed-writing":
        assert "removed 1 partial checkpoint file(s)" in line
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_process_counts_and_batch_shares_are_checked(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match="--nproc 2: only 1 CUDA device"):
        check_process_count(2, torch.device("cuda"))
    check_process_count(1, torch.device("cuda"))
    check_process_count(4, torch.device("cpu"))  # CPU: N gloo processes
    with pytest.raises(ValueError, match="nproc must be >= 1"):
        check_process_count(0, torch.device("cpu"))
    assert share_of_batch(512, World(1, 2)) == 256
    with pytest.raises(ValueError, match=r"batch_rays \(30\) must be a multiple .* \(4\)"):
        share_of_batch(30, World(0, 4))


def test_cli_rejects_bad_process_counts(tmp_path):
    result = cli("train", "--preset", "nerf-small", "--out", str(tmp_path), "--nproc", "0",
                 "--device", "cpu")
    assert result.returncode == 2 and "nproc must be >= 1" in result.stderr
    result = cli("train", "--preset", "nerf-small", "--out", str(tmp_path), "--nproc", "3",
                 "--device", "cpu")
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "fastfield train: error: batch_rays (512) must be a multiple of the number of "
        "processes (3): each rank draws an equal share"]
    if not torch.cuda.is_available():
        result = cli("train", "--preset", "nerf-small", "--out", str(tmp_path), "--nproc", "2",
                     "--device", "cuda")
        assert result.returncode == 2 and "no CUDA GPU is visible" in result.stderr


def test_rank_streams_differ_and_rank_zero_keeps_the_single_process_seed():
    seeds = [World(rank, 4).stream_seed(5) for rank in range(4)]
    assert seeds[0] == 5 and len(set(seeds)) == 4
    assert World(0, 4).stream_seed(5, step=10) != 5  # a restarted stream is a new one
    assert World(1, 2).stream_seed(5) == World(1, 3).stream_seed(5)


def test_ctrl_c_stops_every_rank_after_the_same_step_and_saves_once(tmp_path):
    """SIGINT to `fastfield train --nproc 2`: the launcher passes it on, the ranks agree on the
    step to stop after, save one checkpoint together and the command exits with 130."""
    sets = [item for assignment in tiny_overrides("nerf-small", 100_000, "log_every=1")
            for item in ("--set", assignment)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-m", "fastfield", "train", "--preset",
                                "nerf-small", *sets, "--out", str(tmp_path), "--device", "cpu",
                                "--nproc", "2", "--no-progress"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while len(read_records(tmp_path / "metrics.jsonl")) < 3:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    step = load_checkpoint(tmp_path / "checkpoint.pt")["step"]
    assert step >= 3 and f"interrupted: checkpoint of step {step} saved" in stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
