"""Training NeRF with an occupancy grid: the grid in checkpoints and resumed runs, the adaptive
synchronisation-free batch, dropped rays reported, configurations that no code path can honour
refused by name, the presets, and the command line."""
import json

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import _disable_current_modes

from fastfield.app import cli
from fastfield.config import PRESETS, preset
from fastfield.data.builtin.files import SCALE_MAT
from fastfield.data.builtin.shapes import BOUNDING_RADIUS
from fastfield.fields import NeRF, build_model
from fastfield.train import Trainer
from fastfield.train.checkpoint import load_checkpoint
from fastfield.train.evaluate import evaluate
from fastfield.train.losses import nerf_loss
from fastfield.train.schedule import learning_rate
from test_occupancy import NoSynchronisation
from training_helpers import tiny_config, tiny_overrides


def make_trainer(config, out, **kwargs):
    return Trainer(config, out, device="cpu", progress=False, **kwargs)


def interrupt_at(step):
    def callback(trainer):
        if trainer.step == step:
            raise KeyboardInterrupt
    return callback


@pytest.mark.parametrize("target", [None, 3000])
def test_interrupted_and_resumed_run_keeps_the_grid_and_equals_an_uninterrupted_one(
        tmp_path, target):
    extra = [f"target_samples={target}", "batch_rays=64"] if target else []
    config = tiny_config("nerf-small-occ", 10, "ckpt_every=2", *extra)
    straight = make_trainer(config, tmp_path / "straight")
    straight.train()

    first = make_trainer(config, tmp_path / "resumed")
    with pytest.raises(KeyboardInterrupt):
        first.train(callback=interrupt_at(5))
    saved = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")
    assert saved["step"] == 5
    for name in ("density", "bitfield", "aabb"):
        assert torch.equal(saved["model"][f"grid.{name}"], getattr(first.model.grid, name))
    assert bool((saved["model"]["grid.density"] > 0).any())  # updated, not the initial grid
    resumed = make_trainer(config, tmp_path / "resumed", resume=True)
    assert torch.equal(resumed.model.grid.bitfield, first.model.grid.bitfield)
    if target:
        assert torch.equal(resumed.runner.adaptive.ray_count, first.runner.adaptive.ray_count)
    resumed.train()
    assert resumed.step == straight.step == 10
    for (key, expected), actual in zip(straight.model.state_dict().items(),
                                       resumed.model.state_dict().values()):
        assert torch.equal(expected, actual), key


def test_a_training_step_with_target_samples_never_synchronises(tmp_path):
    config = tiny_config("nerf-small-occ", 20, "target_samples=2000", "batch_rays=128")
    trainer = make_trainer(config, tmp_path)
    adam_step = trainer.optimizer.step

    def step_outside_the_detector(*args, **kwargs):
        # torch's Adam reads its CPU step counter with .item() on a CPU (a host read, no
        # device involved); everything else of the step runs under the detector.
        with _disable_current_modes():
            return adam_step(*args, **kwargs)

    trainer.optimizer.step = step_outside_the_detector
    for step in (0, 1, 2):  # an update step (warm-up: every cell) and plain steps
        with NoSynchronisation():
            stats = trainer.train_step()
    assert set(stats) >= {"loss", "psnr", "samples_per_ray", "rays", "dropped_rays"}
    trainer.train()  # the adaptive count approaches the target from the first guess
    marched = trainer.runner.adaptive.ray_count * float(trainer.last_record["samples_per_ray"])
    assert 1 < float(trainer.runner.adaptive.ray_count) <= 128
    assert float(marched) <= 1.25 * 2000


def test_dropped_rays_are_counted_and_reported_at_the_next_log_line(tmp_path, capsys):
    # A buffer of 40 samples: a ray through the box takes more, so rays are dropped.
    config = tiny_config("nerf-small-occ", 4, "target_samples=32", "batch_rays=64")
    trainer = make_trainer(config, tmp_path)
    trainer.train()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert sum(r["dropped_rays"] for r in records) > 0
    assert "rays did not fit the sample buffer" in capsys.readouterr().err


def test_training_improves_the_held_out_psnr(tmp_path):
    config = tiny_config("nerf-small-occ", 60, "batch_rays=128", "lr=2e-3")
    trainer = make_trainer(config, tmp_path)
    before = evaluate(trainer.model, trainer.scene, "test", progress=False)["mean_psnr"]
    trainer.train()
    after = evaluate(trainer.model, trainer.scene, "test", progress=False)["mean_psnr"]
    assert after > before + 1.0, (before, after)
    occupied = trainer.model.grid.occupancy().float().mean()
    assert 0 < float(occupied) < 1  # the grid learnt where the scene is


@pytest.mark.parametrize("assignments,fragment", [
    (["nerf.sampler=stratified"], "nerf.sampler must be one of"),
    (["nerf.n_fine=64"], "renders one field"),
    (["nerf.lindisp=true"], "nerf.lindisp"),
    (["nerf.raw_noise_std=1.0"], "raw_noise_std"),
    (["nerf.occupancy.resolution=0"], "nerf.occupancy: .*resolution"),
    (["nerf.occupancy.decay=1.5"], "decay"),
    (["nerf.occupancy.early_stop_eps=-1"], "early_stop_eps"),
    (["nerf.occupancy.render_step_size=0"], "step_size"),
    (["nerf.occupancy.aabb=(1,1,1,0,2,2)"], "min < max"),
    (["target_samples=0"], "target_samples must be >= 1"),
])
def test_bad_occupancy_settings_raise_naming_the_field(tmp_path, assignments, fragment):
    config = tiny_config("nerf-small-occ", 2, *assignments)
    if "nerf.n_fine=64" in assignments:
        config.nerf.fine = config.nerf.coarse
    with pytest.raises(ValueError, match=fragment):
        make_trainer(config, tmp_path)


def test_target_samples_needs_the_occupancy_sampler(tmp_path):
    config = tiny_config("nerf-small", 2, "target_samples=1000")
    with pytest.raises(ValueError, match="occupancy sampler only"):
        make_trainer(config, tmp_path)


def test_masked_nerf_loss_is_the_mse_of_the_selected_rays():
    g = torch.Generator().manual_seed(0)
    rgb, target = torch.rand(10, 3, generator=g), torch.rand(10, 3, generator=g)
    mask = (torch.arange(10) < 6).float()
    loss, stats = nerf_loss({"rgb": rgb}, target, mask)
    torch.testing.assert_close(loss, ((rgb[:6] - target[:6]) ** 2).mean())
    assert torch.equal(nerf_loss({"rgb": rgb}, target)[0], ((rgb - target) ** 2).mean())


def test_multistep_schedule_is_nerfaccs():
    config = preset("nerf-lego-occ")
    milestones = [25_000, 37_500, 41_666, 45_000]  # max_steps // 2, * 3 // 4, * 5 // 6, * 9 // 10
    for passed, step in enumerate([0] + milestones):
        assert learning_rate(config, step) == pytest.approx(5e-4 * 0.33 ** passed)
        if step:
            assert learning_rate(config, step - 1) == pytest.approx(5e-4 * 0.33 ** (passed - 1))


def test_occupancy_presets():
    lego = PRESETS["nerf-lego-occ"]
    assert lego.nerf.sampler == "occupancy" and lego.nerf.fine is None and lego.nerf.n_fine == 0
    assert lego.nerf.coarse == PRESETS["nerf-lego"].nerf.coarse
    assert lego.iters == 50_000 and lego.target_samples == 2 ** 18
    diagonal = float(np.linalg.norm(np.subtract(lego.nerf.occupancy.aabb[3:],
                                                lego.nerf.occupancy.aabb[:3])))
    assert lego.nerf.occupancy.step_size() == pytest.approx(diagonal / 1024)
    # nerf-small-occ's box holds the built-in scene's bounding sphere (in world units).
    box = np.array(PRESETS["nerf-small-occ"].nerf.occupancy.aabb)
    centre, radius = SCALE_MAT[:3, 3], BOUNDING_RADIUS * SCALE_MAT[0, 0]
    assert (box[:3] <= centre - radius).all() and (centre + radius <= box[3:]).all()
    for name in ("nerf-lego-occ", "nerf-small-occ"):
        model = build_model(PRESETS[name])
        assert isinstance(model, NeRF) and model.grid is not None


def sets(assignments):
    return [arg for assignment in assignments for arg in ("--set", assignment)]


def test_cli_trains_evaluates_renders_and_resumes_nerf_small_occ(capsys, tmp_path):
    run = tmp_path / "occ"
    assert cli.main(["train", "--preset", "nerf-small-occ", "--out", str(run), "--device", "cpu",
                     "--no-progress", *sets(tiny_overrides("nerf-small-occ", 2))]) == 0
    assert cli.main(["eval", "--run", str(run), "--device", "cpu"]) == 0
    metrics = json.loads((run / "eval_test" / "metrics.json").read_text())
    assert metrics["mean_psnr"] > 0 and metrics["n_views"] > 0
    assert cli.main(["render", "--run", str(run), "--frames", "2", "--out",
                     str(tmp_path / "orbit.mp4")]) == 0
    assert cli.main(["train", "--out", str(run), "--resume", "--iters", "4", "--device", "cpu",
                     "--no-progress"]) == 0
    saved = load_checkpoint(run / "checkpoint.pt")
    assert saved["step"] == 4 and saved["config"]["nerf"]["sampler"] == "occupancy"
    assert "grid.bitfield" in saved["model"]
    capsys.readouterr()
