"""Does training actually learn? End-to-end quality on the built-in scene, kernels against the
reference ops, the NeuS surface, and short runs on the real scenes (skipped without
../shared/data).

Thresholds were calibrated on the CPU (2 cores, torch 2.13) with the sizes below; the numbers
measured are in each test's docstring.
"""
import math

import pytest
import torch

from fastfield.config import apply_override, preset
from fastfield.train import Trainer, psnr
from fastfield.train.evaluate import render_view
from fastfield.train.log import read_records
from fastfield.train.metrics import mean_colour_psnr
from fastfield.train.surface import score_builtin_surface
from helpers import DTU, FERN, LEGO, real_scene
from training_helpers import TINY

# nerf-small at 32 x 32 with only 8 coarse samples, so that the fine pass depends on the PDF
# sampling (with nerf-small's 32 coarse samples, broken PDF sampling costs < 0.3 dB here).
NERF = ["data.builtin_resolution=32", "batch_rays=256", "iters=300", "nerf.n_coarse=8",
        "nerf.n_fine=56", "log_every=50", "val_every=0", "ckpt_every=0"]
NERF_MARGIN_DB = 5.0         # test PSNR over the mean-colour baseline
FINE_OVER_COARSE_DB = 1.0    # the fine pass over the coarse one
PARITY_DB = 0.5              # kernels versus reference
NEUS = ["data.builtin_resolution=32", "batch_rays=128", "iters=500", "log_every=50",
        "val_every=0", "ckpt_every=0"]
CHAMFER_MAX = 0.05           # normalised (unit-sphere) units
MESH_RESOLUTION, CHAMFER_POINTS = 64, 5000


def configured(name, overrides, *extra):
    config = preset(name)
    for assignment in [*overrides, *extra]:
        apply_override(config, assignment)
    return config


def held_out_psnr(trainer: Trainer, indices=None):
    """(fine, coarse) mean per-view PSNR on the test views ``indices`` (default all)."""
    views = trainer.scene.split("test")
    fine, coarse = [], []
    for index in indices if indices is not None else range(len(views)):
        out = render_view(trainer.model, trainer.scene, "test", index, backend=trainer.backend,
                          precision=trainer.precision, device=trainer.device)
        target = views.images[index].float() / 255.0
        fine.append(psnr(out["rgb"].clamp(0, 1), target))
        if "rgb_coarse" in out:
            coarse.append(psnr(out["rgb_coarse"].clamp(0, 1), target))
    return sum(fine) / len(fine), (sum(coarse) / len(coarse) if coarse else math.nan)



@pytest.fixture(scope="module")
def nerf_kernels(tmp_path_factory):
    trainer = Trainer(configured("nerf-small", NERF), tmp_path_factory.mktemp("nerf_kernels"),
                      device="cpu", backend="kernels", progress=False)
    trainer.train()
    return trainer, held_out_psnr(trainer)


def test_nerf_small_beats_the_mean_colour_baseline_on_held_out_views(nerf_kernels):
    """CALIBRATION"""
    trainer, (fine, coarse) = nerf_kernels
    baseline = mean_colour_psnr(trainer.scene.split("test").images)
    assert fine > baseline + NERF_MARGIN_DB, (fine, baseline)
    assert fine > coarse + FINE_OVER_COARSE_DB, (fine, coarse)


def test_kernels_and_reference_ops_train_to_the_same_quality(nerf_kernels, tmp_path):
    """CALIBRATION"""
    _, (kernels_psnr, _) = nerf_kernels
    trainer = Trainer(configured("nerf-small", NERF), tmp_path, device="cpu",
                      backend="reference", progress=False)
    trainer.train()
    reference_psnr, _ = held_out_psnr(trainer)
    assert abs(kernels_psnr - reference_psnr) < PARITY_DB, (kernels_psnr, reference_psnr)


def test_neus_small_mesh_is_close_to_the_true_surface_and_points_outward(tmp_path):
    """CALIBRATION"""
    config = configured("neus-small", NEUS)
    trainer = Trainer(config, tmp_path, device="cpu", progress=False)
    trainer.train()
    surface = score_builtin_surface(trainer.model, config, MESH_RESOLUTION, CHAMFER_POINTS, 0,
                                    trainer.device)
    assert surface["chamfer"] < CHAMFER_MAX, surface
    assert surface["outward_fraction"] > 0.95, surface


# ----------------------------------------------------------------------------- real scenes

def test_lego_learns_past_the_mean_colour_baseline(tmp_path):
    """CALIBRATION"""
    config = configured("nerf-small", ["data.downscale=16", "batch_rays=256", "iters=150",
                                       "log_every=50", "val_every=0", "ckpt_every=0"],
                        f"data.path={real_scene(LEGO)}")
    trainer = Trainer(config, tmp_path, device="cpu", progress=False)
    trainer.train()
    views = [0, 8, 16, 24]
    fine, _ = held_out_psnr(trainer, views)
    baseline = mean_colour_psnr(trainer.scene.split("test").images[views])
    assert fine > baseline + 2.0, (fine, baseline)


def test_fern_loads_with_ndc_and_renders_a_view(tmp_path):
    config = configured("nerf-fern", [o for o in TINY["nerf-small"] if "builtin" not in o],
                        "iters=2", f"data.path={real_scene(FERN)}")
    trainer = Trainer(config, tmp_path, device="cpu", progress=False)
    assert trainer.scene.ndc is not None and (trainer.scene.near, trainer.scene.far) == (0, 1)
    trainer.train()
    out = render_view(trainer.model, trainer.scene, "test", 0, backend=trainer.backend,
                      precision="fp32", device=trainer.device)
    height, width = trainer.scene.split("test").images.shape[1:3]
    assert out["rgb"].shape == (height, width, 3) and torch.isfinite(out["rgb"]).all()
    # NDC depths lie in [0, 1] (near and far of NDC space) before dividing by acc.
    assert out["depth"].min() >= 0 and out["depth"].max() <= 1 + 1e-5


def test_a_short_neus_run_on_dtu_lowers_the_loss(tmp_path):
    """CALIBRATION"""
    config = configured("neus-small", ["batch_rays=128", "iters=60", "log_every=20",
                                       "val_every=0", "ckpt_every=0"],
                        f"data.path={real_scene(DTU)}")
    trainer = Trainer(config, tmp_path, device="cpu", progress=False)
    trainer.train()
    losses = [r["loss"] for r in read_records(tmp_path / "metrics.jsonl") if "loss" in r]
    assert len(losses) == 3 and losses[-1] < 0.8 * losses[0], losses
