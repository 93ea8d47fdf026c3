"""The fastfield command line, run in-process through ``main(argv)`` (plus one real
``python -m fastfield --help``): the happy paths on tiny runs of the built-in scene, and every
error path ending in one line on stderr with exit code 2."""
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

import fastfield.app.video
from fastfield.app import cli, demo
from fastfield.config import PRESETS, TrainConfig, apply_override, from_dict, preset
from fastfield.data import write_builtin_scene
from fastfield.mesh import read_ply
from fastfield.train import Trainer
from fastfield.train.checkpoint import load_checkpoint
from training_helpers import TINY, tiny_overrides

REPO = Path(__file__).resolve().parents[1]


def sets(assignments):
    return [arg for assignment in assignments for arg in ("--set", assignment)]


def run_cli(capsys, *argv):
    """(exit code, stdout, stderr) of ``fastfield argv``."""
    code = cli.main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def tiny_run(out: Path, name: str) -> Path:
    """A 2-step tiny run of preset ``name`` trained through the CLI into ``out``."""
    assert cli.main(["train", "--preset", name, "--out", str(out), "--device", "cpu",
                     "--no-progress", *sets(tiny_overrides(name, 2))]) == 0
    return out


@pytest.fixture(scope="module")
def nerf_run(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("cli") / "nerf", "nerf-small")


@pytest.fixture(scope="module")
def neus_run(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("cli") / "neus", "neus-small")


# ----------------------------------------------------------------------------- help

def test_python_m_fastfield_help_lists_commands_and_presets():
    result = subprocess.run([sys.executable, "-m", "fastfield", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for word in ("train", "eval", "render", "mesh", "chamfer", "demo", "process", *PRESETS):
        assert word in result.stdout


def test_train_help_lists_presets(capsys):
    code, out, _ = run_cli(capsys, "train", "--help")
    assert code == 0
    assert all(name in out for name in PRESETS) and "--resume" in out and "--precision" in out


def test_print_config_is_the_preset_with_the_overrides(capsys):
    code, out, _ = run_cli(capsys, "train", "--preset", "nerf-small", "--iters", "7", "--seed",
                           "3", "--set", "nerf.n_fine=16", "--print-config")
    assert code == 0
    expected = preset("nerf-small")
    for assignment in ("iters=7", "seed=3", "nerf.n_fine=16"):
        apply_override(expected, assignment)
    assert from_dict(TrainConfig, json.loads(out)) == expected


# ----------------------------------------------------------------------------- happy paths

def test_train_eval_render_and_resume(capsys, nerf_run, tmp_path):
    assert load_checkpoint(nerf_run / "checkpoint.pt")["step"] == 2
    code, out, err = run_cli(capsys, "eval", "--run", nerf_run, "--device", "cpu")
    assert code == 0, err
    metrics = json.loads((nerf_run / "eval_test" / "metrics.json").read_text())
    assert f"PSNR {metrics['mean_psnr']:.2f} dB" in out and metrics["step"] == 2
    assert "held-out" in metrics["note"]

    code, out, err = run_cli(capsys, "render", "--run", nerf_run, "--frames", "3", "--out",
                             tmp_path / "orbit.mp4")
    assert code == 0, err
    # Without imageio-ffmpeg (an optional extra) the video falls back to a GIF.
    written = tmp_path / ("orbit.mp4" if fastfield.app.video.mp4_encoder_available() else "orbit.gif")
    assert written.stat().st_size > 0 and f"wrote 3 frames to {written}" in out

    resumed = tmp_path / "resumed"
    shutil.copytree(nerf_run, resumed)
    code, out, err = run_cli(capsys, "train", "--out", resumed, "--resume", "--iters", "4",
                             "--device", "cpu", "--no-progress")
    assert code == 0, err
    assert load_checkpoint(resumed / "checkpoint.pt")["step"] == 4
    assert "for 4 steps" in out


def test_ctrl_c_during_training_saves_and_exits_130(capsys, tmp_path, monkeypatch):
    """A real SIGINT arriving inside step 2: the step finishes, the checkpoint is saved."""
    original_step = Trainer.train_step

    def ctrl_c_inside_step_2(trainer):
        if trainer.step == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return original_step(trainer)

    monkeypatch.setattr(Trainer, "train_step", ctrl_c_inside_step_2)
    code, _, err = run_cli(capsys, "train", "--preset", "nerf-small", "--out", tmp_path,
                           "--device", "cpu", "--no-progress",
                           *sets(tiny_overrides("nerf-small", 10)))
    assert code == 130
    assert "checkpoint of step 2 saved" in err and "--resume" in err
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 2


def test_render_falls_back_to_gif_without_an_mp4_encoder(capsys, nerf_run, tmp_path,
                                                         monkeypatch):
    monkeypatch.setattr(fastfield.app.video, "mp4_encoder_available", lambda: False)
    code, out, err = run_cli(capsys, "render", "--run", nerf_run, "--frames", "2", "--out",
                             tmp_path / "orbit.mp4")
    assert code == 0
    assert (tmp_path / "orbit.gif").is_file() and not (tmp_path / "orbit.mp4").exists()
    assert "no MP4 encoder" in err and "orbit.gif" in out


def test_eval_of_a_masked_neus_run_leads_with_the_masked_psnr(capsys, tmp_path):
    out = tmp_path / "masked"
    assert cli.main(["train", "--preset", "neus-small", "--out", str(out), "--device", "cpu",
                     "--no-progress", *sets(tiny_overrides("neus-small", 2,
                                                           "data.use_masks=true"))]) == 0
    capsys.readouterr()
    code, printed, err = run_cli(capsys, "eval", "--run", out, "--device", "cpu")
    assert code == 0, err
    metrics = json.loads((out / "eval_test" / "metrics.json").read_text())
    assert printed.startswith(f"test: masked PSNR {metrics['mean_psnr_masked']:.2f} dB "
                              f"(pixels inside the masks), PSNR {metrics['mean_psnr']:.2f} dB")


def test_mesh_and_chamfer_of_a_neus_run(capsys, neus_run, tmp_path):
    code, out, err = run_cli(capsys, "mesh", "--run", neus_run, "--resolution", "24", "--out",
                             tmp_path / "mesh.ply", "--device", "cpu")
    assert code == 0, err
    vertices, faces, normals = read_ply(tmp_path / "mesh.ply")
    assert len(faces) > 0 and normals is not None
    assert f"{len(vertices)} vertices" in out
    code, out, err = run_cli(capsys, "chamfer", "--run", neus_run, "--resolution", "24",
                             "--points", "500", "--device", "cpu")
    assert code == 0, err
    report = json.loads(out)
    assert report["chamfer"] > report["sampling_floor"] > 0
    assert report["outward_fraction"] > 0.99


def test_demo_wires_training_evaluation_video_and_mesh(capsys, tmp_path, monkeypatch):
    """The demo with its runs cut to tiny sizes (the real sizes take minutes)."""
    monkeypatch.setitem(demo.DEMO_PLAN, "cpu", [
        ("nerf", "nerf-small", tiny_overrides("nerf-small", 2)),
        ("neus", "neus-small", tiny_overrides("neus-small", 2))])
    monkeypatch.setitem(demo.VIDEO_FRAMES, "cpu", 2)
    monkeypatch.setitem(demo.MESH_RESOLUTION, "cpu", 24)
    monkeypatch.setattr(demo, "CHAMFER_POINTS", 500)
    code, out, err = run_cli(capsys, "demo", "--out", tmp_path, "--device", "cpu")
    assert code == 0, err
    summary = json.loads((tmp_path / "summary.json").read_text())
    for run in summary["runs"].values():
        for where in run["files"].values():
            assert (tmp_path / where).exists(), where
    assert summary["runs"]["neus"]["surface"]["chamfer"] > 0
    markdown = (tmp_path / "SUMMARY.md").read_text()
    assert f"{summary['runs']['nerf']['test_psnr']:.2f} dB" in markdown
    assert "Chamfer" in markdown

    # overview.png: row 0 is NeRF (image, render, depth), row 1 NeuS (plus normals).
    assert "![overview](overview.png)" in markdown
    overview = iio.imread(tmp_path / "overview.png")
    view = json.loads((tmp_path / "nerf" / "eval_test" / "metrics.json").read_text())["views"][0]
    render = iio.imread(tmp_path / "nerf" / "eval_test" / f"{view['name']}_rgb.png")[..., :3]
    height, width = render.shape[:2]
    factor, gap = demo.OVERVIEW_HEIGHT // height, 4
    assert overview.shape == (2 * height * factor + gap, 4 * width * factor + 3 * gap, 3)
    column = width * factor + gap
    upscaled = np.repeat(np.repeat(render, factor, 0), factor, 1)
    np.testing.assert_array_equal(overview[:height * factor, column:column + width * factor],
                                  upscaled)


# ----------------------------------------------------------------------------- error paths

@pytest.mark.parametrize("argv, fragments", [
    ([], ["required: COMMAND"]),
    (["train"], ["train needs --preset", "nerf-small"]),
    (["train", "--preset", "nope"], ["unknown preset 'nope'", "accepted:", "nerf-lego"]),
    (["train", "--preset", "nerf-small", "--bogus"], ["unrecognized arguments: --bogus"]),
    (["train", "--preset", "nerf-small", "--set", "nerf.bogus=1"],
     ["unknown field 'bogus'", "accepted:", "n_fine"]),
    (["train", "--preset", "nerf-small", "--set", "lr=fast"], ["lr: expected float"]),
    (["train", "--preset", "nerf-small", "--precision", "fp8"],
     ["invalid choice: 'fp8'", "fp32", "bf16"]),
    (["train", "--preset", "nerf-small", "--device", "tpu"],
     ["unknown device 'tpu'", "cpu, cuda, cuda:N"]),
    (["eval", "--run", "{tmp}/nowhere"], ["run folder", "nowhere not found"]),
    (["eval", "--run", "{tmp}"], ["holds no checkpoint.pt"]),
    (["train", "--preset", "nerf-small", "--data", "{tmp}/nowhere"],
     ["nowhere: scene folder not found"]),
    (["train", "--preset", "nerf-small", "--data", "{tmp}"],
     ["cannot tell the scene format", "transforms_train.json"]),
])
def test_usage_errors_are_one_line(capsys, tmp_path, argv, fragments):
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    code, _, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, *fragments)


def test_devices_that_do_not_exist_are_one_line_errors(capsys):
    if not torch.cuda.is_available():
        code, _, err = run_cli(capsys, "train", "--preset", "nerf-small", "--device", "cuda")
        assert_one_line_error(code, err, "no CUDA GPU is visible", "--device cpu")
    missing = torch.cuda.device_count() + 7 if torch.cuda.is_available() else 7
    code, _, err = run_cli(capsys, "train", "--preset", "nerf-small", "--device",
                           f"cuda:{missing}")
    assert_one_line_error(code, err, f"cuda:{missing}")


def test_checkpoints_of_another_model_or_not_a_checkpoint_are_one_line_errors(
        capsys, nerf_run, tmp_path):
    code, _, err = run_cli(capsys, "train", "--preset", "neus-small", "--out", nerf_run,
                           "--resume", "--device", "cpu", *sets(TINY["neus-small"]))
    assert_one_line_error(code, err, "holds a nerf model but this run builds a neus model")
    code, _, err = run_cli(capsys, "train", "--preset", "nerf-small", "--out", nerf_run,
                           "--resume", "--device", "cpu", *sets(TINY["nerf-small"]),
                           "--set", "nerf.n_fine=4")
    assert_one_line_error(code, err, "different nerf model", "nerf.n_fine 8 in the checkpoint")
    code, _, err = run_cli(capsys, "train", "--preset", "nerf-small", "--out", nerf_run,
                           "--device", "cpu")
    assert_one_line_error(code, err, "already holds a run", "--resume")
    code, _, err = run_cli(capsys, "mesh", "--run", nerf_run)
    assert_one_line_error(code, err, "trained a nerf model", "NeuS run")

    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint at all")
    code, _, err = run_cli(capsys, "eval", "--run", tmp_path)
    assert_one_line_error(code, err, "checkpoint.pt: not a readable checkpoint")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "checkpoint.pt")
    code, _, err = run_cli(capsys, "eval", "--run", tmp_path)
    assert_one_line_error(code, err, "not a fastfield checkpoint")


@pytest.fixture
def blender_copy(tmp_path):
    """A 16 x 16 built-in scene in Blender format (4 training views) to damage."""
    return write_builtin_scene(tmp_path, resolution=16, n_train=4, n_val=1, n_test=1)["blender"]


def test_corrupt_or_missing_data_files_are_one_line_errors(capsys, blender_copy):
    train = ["train", "--preset", "nerf-small", "--device", "cpu", "--data", blender_copy]
    (blender_copy / "train" / "r_3.png").write_bytes(b"\x89PNG but then garbage")
    code, _, err = run_cli(capsys, *train)
    assert_one_line_error(code, err, "r_3.png: cannot read image")
    (blender_copy / "train" / "r_3.png").unlink()
    code, _, err = run_cli(capsys, *train)
    assert_one_line_error(code, err, "r_3.png: file not found")
    transforms = blender_copy / "transforms_train.json"
    transforms.write_text(json.dumps({"camera_angle_x": 0.6}))
    code, _, err = run_cli(capsys, *train)
    assert_one_line_error(code, err, "transforms_train.json has no 'frames'")


def test_fastfield_traceback_shows_the_real_exception(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTFIELD_TRACEBACK", "1")
    with pytest.raises(ValueError, match="not found"):
        cli.main(["eval", "--run", str(tmp_path / "nowhere")])


# ----------------------------------------------------------------------------- hash-grid presets
@pytest.mark.parametrize("name", ["ngp-small", "neus-ngp"])
def test_hash_presets_train_resume_eval_render_and_mesh(capsys, tmp_path, name):
    """The hash-grid fields go through the unchanged loop, checkpoint, resume and commands."""
    run = tiny_run(tmp_path / name, name)
    payload = load_checkpoint(run / "checkpoint.pt")
    assert payload["step"] == 2
    assert any(key.endswith("grid.params") for key in payload["model"])
    code, out, err = run_cli(capsys, "train", "--out", run, "--resume", "--iters", "3",
                             "--device", "cpu", "--no-progress")
    assert code == 0, err
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 3
    code, out, err = run_cli(capsys, "eval", "--run", run, "--device", "cpu", "--split", "val")
    assert code == 0, err
    assert json.loads((run / "eval_val" / "metrics.json").read_text())["step"] == 3
    code, out, err = run_cli(capsys, "render", "--run", run, "--frames", "2", "--out",
                             tmp_path / "orbit.gif", "--device", "cpu")
    assert code == 0, err
    assert (tmp_path / "orbit.gif").stat().st_size > 0
    if name == "neus-ngp":
        code, out, err = run_cli(capsys, "mesh", "--run", run, "--resolution", "24", "--out",
                                 tmp_path / "mesh.ply", "--device", "cpu")
        assert code == 0, err
        vertices, faces, normals = read_ply(tmp_path / "mesh.ply")
        assert len(faces) > 0 and normals is not None


def test_random_background_on_a_scene_without_alpha_is_a_one_line_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--preset", "neus-ngp", "--out", tmp_path / "r",
                           "--device", "cpu", "--no-progress",
                           *sets(tiny_overrides("neus-ngp", 1, "random_background=true")))
    assert_one_line_error(code, err, "random_background=true needs training images with alpha")


def test_an_unknown_field_kind_is_a_one_line_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--preset", "nerf-small", "--out", tmp_path / "f",
                           "--device", "cpu", "--no-progress",
                           *sets(tiny_overrides("nerf-small", 1, "nerf.field=grid")))
    assert_one_line_error(code, err, "nerf.field must be one of 'mlp', 'hash', got 'grid'")
