"""--cuda-graph (fastfield.train.graph) on the CPU: the option, auto's fallback with its reason,
on's one-line error, and the step a graph captures -- StepRunner.run_step with the learning
rate, cos_anneal_ratio and camera in device tensors updated in place -- trains exactly as the
eager step does. Capture and replay themselves need a GPU (not run here)."""
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from fastfield.train import Trainer
from fastfield.train.distributed import World
from fastfield.train.graph import capture_problem, graph_runner
from fastfield.train.step import StepRunner
from training_helpers import tiny_config

ROOT = Path(__file__).resolve().parents[1]


def make(config, out_dir, **kwargs) -> Trainer:
    return Trainer(config, out_dir, device="cpu", backend="kernels", progress=False, **kwargs)


def test_auto_trains_eagerly_on_the_cpu_and_says_why(tmp_path):
    trainer = make(tiny_config("nerf-small", 2), tmp_path)
    assert type(trainer.runner) is StepRunner
    assert trainer.summary()["cuda_graph"] == ("cuda graph off: CUDA graphs need a CUDA device; "
                                               "this run trains on cpu")
    assert make(tiny_config("nerf-small", 2), tmp_path / "off", cuda_graph="off"
                ).summary()["cuda_graph"] == "off"


def test_on_where_capture_cannot_work_is_a_one_line_error(tmp_path):
    with pytest.raises(ValueError, match=r"^--cuda-graph on: CUDA graphs need a CUDA device; "
                                         r"this run trains on cpu$"):
        make(tiny_config("nerf-small", 2), tmp_path, cuda_graph="on")
    with pytest.raises(ValueError, match="cuda_graph must be one of auto, on, off"):
        make(tiny_config("nerf-small", 2), tmp_path, cuda_graph="yes")
    dense = SimpleNamespace()  # a pipeline without an occupancy grid
    cuda = SimpleNamespace(device=torch.device("cuda"), backend="kernels", pipeline=dense)
    assert "all-reduces its gradients" in capture_problem(cuda, World(0, 2))
    reference = SimpleNamespace(device=torch.device("cuda"), backend="reference", pipeline=dense)
    assert "reference backend" in capture_problem(reference, World())
    occupancy = SimpleNamespace(device=torch.device("cuda"), backend="kernels",
                                pipeline=SimpleNamespace(update_grid=None))
    assert "occupancy sampler" in capture_problem(occupancy, World())
    with pytest.raises(ValueError, match="^--cuda-graph on: a multi-process step"):
        graph_runner(cuda, "on", World(1, 2))


def test_cli_parses_the_option_and_reports_errors_in_one_line(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "fastfield", "train", "--preset",
                               "nerf-small", "--out", str(tmp_path), "--device", "cpu", *args],
                              capture_output=True, text=True, cwd=ROOT, timeout=300)
    result = cli("--cuda-graph", "sometimes")
    assert result.returncode == 2 and "invalid choice: 'sometimes'" in result.stderr
    result = cli("--cuda-graph", "on")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "fastfield train: error: --cuda-graph on: CUDA graphs need a CUDA device; this run "
        "trains on cpu"]


@pytest.mark.parametrize("name, extra", [
    ("neus-small", ["anneal_end=6", "warm_up=2"]),           # lr warm-up and annealing
    ("nerf-small", ["batching=one_image", "precrop_iters=3"])])  # camera tensor, precrop
def test_the_device_schedule_step_trains_as_the_eager_step(name, extra, tmp_path):
    """Five updates eagerly and five with the per-step values in device tensors updated in
    place (what a captured step reads): the same pixels, the same parameters."""
    config = tiny_config(name, 5, *extra)
    eager = make(config, tmp_path / "eager")
    device = make(config, tmp_path / "device")
    device.runner.use_device_schedule()
    assert all(isinstance(g["lr"], torch.Tensor) for g in device.optimizer.param_groups)
    for step in range(5):
        eager.train_step()
        device.train_step()
        assert device.runner.schedule.lr.item() == pytest.approx(
            eager.optimizer.param_groups[0]["lr"], rel=1e-6)
        for (key, a), b in zip(eager.model.state_dict().items(),
                               device.model.state_dict().values()):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-7, msg=f"step {step}: {key}")


def test_a_one_image_step_reads_its_camera_from_the_device(tmp_path):
    trainer = make(tiny_config("nerf-small", 1, "batching=one_image", "precrop_iters=2"),
                   tmp_path)
    sampler = trainer.sampler
    state = sampler.state_dict()
    first = [sampler.sample(step, torch.Generator().manual_seed(step)) for step in range(4)]
    sampler.load_state_dict(state)
    camera = torch.zeros((), dtype=torch.long)
    for step in range(4):
        camera.fill_(sampler.image_for(step))
        assert torch.equal(sampler.sample(step, torch.Generator().manual_seed(step), camera),
                           first[step])
    assert [sampler.precropping(step) for step in range(4)] == [True, True, False, False]


def test_a_checkpoint_of_a_device_schedule_run_resumes_eagerly(tmp_path):
    config = tiny_config("nerf-small", 4, "ckpt_every=2")
    trainer = make(config, tmp_path)
    trainer.runner.use_device_schedule()
    for group in trainer.optimizer.param_groups:
        group["capturable"] = False  # CPU Adam; a CUDA run saves capturable groups
    with pytest.raises(KeyboardInterrupt):
        trainer.train(callback=lambda t: (_ for _ in ()).throw(KeyboardInterrupt)
                      if t.step == 2 else None)
    resumed = make(config, tmp_path, resume=True)
    assert all(isinstance(g["lr"], float) and not g["capturable"]
               for g in resumed.optimizer.param_groups)
    resumed.train()
    assert resumed.step == 4
