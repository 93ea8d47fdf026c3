"""The training loop, its checkpoints, schedules, batching, metrics and evaluation (CPU, the
built-in scene at 32 x 32, tiny networks: see training_helpers.TINY)."""
import json
import math
import os
import signal

import numpy as np
import pytest
import torch

from fastfield.config import preset, to_dict
from fastfield.data import builtin_scene
from fastfield.train import Trainer, evaluate, learning_rate, cos_anneal_ratio, psnr, ssim
from fastfield.train import checkpoint as checkpoint_module
from fastfield.train.batching import PixelSampler
from fastfield.train.checkpoint import load_checkpoint
from fastfield.train.log import read_records
from fastfield.train.metrics import mean_colour_psnr
from fastfield.train.scenes import split_note
from training_helpers import tiny_config

BACKEND = "kernels"


def make_trainer(config, out_dir, **kwargs) -> Trainer:
    kwargs.setdefault("backend", BACKEND)
    return Trainer(config, out_dir, device="cpu", progress=False, **kwargs)


def interrupt_at(step: int):
    """A train() callback that raises KeyboardInterrupt once ``step`` updates are done."""
    def callback(trainer):
        if trainer.step == step:
            raise KeyboardInterrupt
    return callback


# ----------------------------------------------------------------------------- schedules

def test_exponential_schedule_is_nerf_pytorchs():
    config = preset("nerf-lego")
    assert learning_rate(config, 0) == config.lr
    assert learning_rate(config, config.lr_decay_steps) == pytest.approx(0.1 * config.lr)
    half = learning_rate(config, config.lr_decay_steps // 2)
    assert half == pytest.approx(config.lr * math.sqrt(0.1))


def test_cosine_schedule_is_neus():
    config = preset("neus-womask")
    warm_up, iters, alpha = config.warm_up, config.iters, config.lr_alpha
    assert learning_rate(config, 0) == 0.0  # NeuS's first update has learning_factor 0
    assert learning_rate(config, warm_up // 2) == pytest.approx(0.5 * config.lr)
    assert learning_rate(config, warm_up) == pytest.approx(config.lr)
    midway = warm_up + (iters - warm_up) // 2
    assert learning_rate(config, midway) == pytest.approx(config.lr * (0.5 + 0.5 * alpha))
    assert learning_rate(config, iters) == pytest.approx(alpha * config.lr)
    rates = [learning_rate(config, s) for s in range(warm_up, iters, 997)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))


def test_cos_anneal_ratio_ramps_then_stays_at_one():
    womask, wmask = preset("neus-womask"), preset("neus-wmask")
    assert cos_anneal_ratio(womask, 0) == 0.0
    assert cos_anneal_ratio(womask, womask.anneal_end // 4) == pytest.approx(0.25)
    assert cos_anneal_ratio(womask, 3 * womask.anneal_end) == 1.0
    assert wmask.anneal_end == 0 and cos_anneal_ratio(wmask, 0) == 1.0


# ----------------------------------------------------------------------------- batching

def sampler(batching="one_image", order="random", precrop_iters=0, n_images=5, size=(20, 30)):
    return PixelSampler(batching, order, n_images, *size, batch_rays=400,
                        precrop_iters=precrop_iters, precrop_frac=0.5, seed=0,
                        device=torch.device("cpu"))


def test_one_image_batches_and_precrop_window():
    pixels_sampler = sampler(precrop_iters=2)
    generator = torch.Generator().manual_seed(0)
    for step in range(4):
        pixels = pixels_sampler.sample(step, generator)
        assert pixels.shape == (400, 3) and pixels.dtype == torch.int64
        assert (pixels[:, 0] == pixels[0, 0]).all(), "one image per step"
        rows, cols = pixels[:, 1], pixels[:, 2]
        if step < 2:  # nerf-pytorch precrop: dH = H // 2 * frac, rows H/2 - dH .. H/2 + dH - 1
            assert rows.min() >= 10 - 5 and rows.max() <= 10 + 5 - 1
            assert cols.min() >= 15 - 7 and cols.max() <= 15 + 7 - 1
        else:
            assert rows.max() - rows.min() > 10 and cols.max() - cols.min() > 15


def test_all_images_batches_draw_from_every_image():
    pixels = sampler("all_images").sample(0, torch.Generator().manual_seed(0))
    assert set(pixels[:, 0].tolist()) == set(range(5))


def test_neus_walks_a_fresh_permutation_every_epoch_and_resumes_it():
    walker = sampler(order="permutation", n_images=4)
    generator = torch.Generator().manual_seed(0)
    images = [int(walker.sample(step, generator)[0, 0]) for step in range(6)]
    assert sorted(images[:4]) == [0, 1, 2, 3]
    state = walker.state_dict()
    ahead = [int(walker.sample(step, generator)[0, 0]) for step in range(6, 13)]
    restored = sampler(order="permutation", n_images=4)
    restored.load_state_dict(state)
    assert [int(restored.sample(step, generator)[0, 0]) for step in range(6, 13)] == ahead
    assert sorted(images[4:6] + ahead[:2]) == [0, 1, 2, 3]  # the epoch of steps 4..7


# ----------------------------------------------------------------------------- the loop

def test_training_data_stays_uint8_images_on_the_device(tmp_path):
    trainer = make_trainer(tiny_config("nerf-small", 1), tmp_path)
    train = trainer.scene.split("train")
    assert trainer.images.dtype == torch.uint8 and trainer.images.shape == train.images.shape
    assert trainer.images.device == trainer.device
    # No ray table: no tensor of the trainer holds one row per training pixel.
    n_pixels = train.images.shape[0] * train.images.shape[1] * train.images.shape[2]
    assert all(value.numel() < 3 * n_pixels or value is trainer.images
               for value in vars(trainer).values() if isinstance(value, torch.Tensor))


@pytest.mark.parametrize("name", ["nerf-small", "neus-small"])
def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(name, tmp_path):
    """Steps 0..5 in one go versus interrupted (KeyboardInterrupt from the callback) after 3
    updates, then resumed: bit-identical parameters and optimiser state. A periodic checkpoint
    at step 2 is overwritten by the interruption's."""
    config = tiny_config(name, 6, "ckpt_every=2")
    straight = make_trainer(config, tmp_path / "straight")
    straight.train()

    first = make_trainer(config, tmp_path / "resumed")
    with pytest.raises(KeyboardInterrupt):
        first.train(callback=interrupt_at(3))
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["step"] == 3
    resumed = make_trainer(config, tmp_path / "resumed", resume=True)
    assert resumed.step == 3
    resumed.train()

    assert resumed.step == straight.step == 6
    for (key, expected), actual in zip(straight.model.state_dict().items(),
                                       resumed.model.state_dict().values()):
        assert torch.equal(expected, actual), key
    expected_state = straight.optimizer.state_dict()["state"]
    actual_state = resumed.optimizer.state_dict()["state"]
    for index in expected_state:
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(expected_state[index][key], actual_state[index][key]), (index, key)


def test_ctrl_c_finishes_the_step_then_saves_and_restores_the_handler(tmp_path):
    previous = signal.getsignal(signal.SIGINT)

    def press_ctrl_c(trainer):
        if trainer.step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    trainer = make_trainer(tiny_config("nerf-small", 10), tmp_path)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(callback=press_ctrl_c)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 2
    assert signal.getsignal(signal.SIGINT) is previous


def test_a_failed_checkpoint_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    trainer = make_trainer(tiny_config("nerf-small", 2), tmp_path)
    trainer.train()
    path = tmp_path / "checkpoint.pt"
    before = path.read_bytes()

    def crash_mid_write(payload, file):
        file.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.torch, "save", crash_mid_write)
    trainer.step += 1
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint()
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path)["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path):
    make_trainer(tiny_config("nerf-small", 1), tmp_path).train()
    with pytest.raises(ValueError, match="holds a nerf model but this run builds a neus model"):
        make_trainer(tiny_config("neus-small", 1), tmp_path, resume=True)
    with pytest.raises(ValueError, match=r"nerf\.coarse\.width 32 in the checkpoint, 64 here"):
        make_trainer(tiny_config("nerf-small", 1, "nerf.coarse.width=64"), tmp_path,
                     resume=True)
    with pytest.raises(ValueError, match="already holds a run"):
        make_trainer(tiny_config("nerf-small", 1), tmp_path)


def test_a_crash_after_the_last_checkpoint_resumes_without_duplicate_records(tmp_path):
    config = tiny_config("nerf-small", 5, "log_every=1", "ckpt_every=2")

    def crash(trainer):
        if trainer.step == 3:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        make_trainer(config, tmp_path).train(callback=crash)
    assert [r["step"] for r in read_records(tmp_path / "metrics.jsonl")] == [1, 2, 3]
    resumed = make_trainer(config, tmp_path, resume=True)
    assert resumed.step == 2
    resumed.train()
    assert [r["step"] for r in read_records(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4, 5]


def test_run_folder_holds_metrics_curve_validation_renders_and_checkpoint(tmp_path):
    config = tiny_config("neus-small", 4, "val_every=2")
    summary = make_trainer(config, tmp_path).train()
    records = read_records(tmp_path / "metrics.jsonl")
    train_records = [r for r in records if "loss" in r]
    val_records = [r for r in records if "val_psnr" in r]
    assert [r["step"] for r in train_records] == [2, 4]
    for record in train_records:
        assert {"loss", "psnr", "lr", "it_s", "elapsed", "s_val", "eikonal"} <= set(record)
        assert record["lr"] == pytest.approx(learning_rate(config, record["step"] - 1))
        assert all(math.isfinite(record[key]) for key in ("loss", "psnr", "s_val", "eikonal"))
    assert [r["step"] for r in val_records] == [2, 4]
    for record in val_records:
        image = tmp_path / record["image"]
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "training_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert summary["step"] == 4 and summary["val_psnr"] == val_records[-1]["val_psnr"]
    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    assert payload["step"] == 4 and payload["config"] == to_dict(config)
    assert payload["backend"] == BACKEND and payload["precision"] == "fp32"


@pytest.mark.parametrize("name", ["nerf-small", "neus-small"])
def test_bf16_training_runs_on_the_cpu(name, tmp_path):
    trainer = make_trainer(tiny_config(name, 4), tmp_path, precision="bf16")
    before = [p.detach().clone() for p in trainer.model.parameters()]
    summary = trainer.train()
    assert math.isfinite(summary["loss"]) and math.isfinite(summary["psnr"])
    after = list(trainer.model.parameters())
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(before, after))


# Tensor methods that read device memory from the host (a GPU sync).
HOST_READS = ("item", "tolist", "numpy", "cpu", "nonzero", "__bool__", "__int__", "__float__")


@pytest.mark.parametrize("name", ["nerf-small", "neus-small"])
def test_a_training_step_never_reads_tensors_back(name, tmp_path, monkeypatch):
    """No host read of a tensor inside train_step (on a GPU each would wait for the device).

    Python-level reads are caught here on the CPU; boolean-mask indexing inside C++ is not
    visible this way, so with a GPU the step also runs under torch.cuda's sync debug mode."""
    trainer = make_trainer(tiny_config(name, 3), tmp_path)
    trainer.train_step()  # creates the optimiser state
    # Adam's step counters live on the host even when training on a GPU (torch's default,
    # capturable=False), so reading them is free: they are the only tensors allowed.
    host_counters = {id(state["step"]) for state in trainer.optimizer.state.values()}

    def forbidden(method):
        original = getattr(torch.Tensor, method)

        def guard(tensor, *args, **kwargs):
            if id(tensor) in host_counters:
                return original(tensor, *args, **kwargs)
            raise AssertionError(f"Tensor.{method} called inside a training step")
        return guard

    with monkeypatch.context() as patch:
        for method in HOST_READS:
            patch.setattr(torch.Tensor, method, forbidden(method))
        with pytest.raises(AssertionError, match="Tensor.item"):
            torch.ones(()).item()  # the guard is live
        trainer.train_step()
    if torch.cuda.is_available():
        cuda_trainer = Trainer(tiny_config(name, 3), tmp_path / "cuda", device="cuda",
                               backend=BACKEND, progress=False)
        cuda_trainer.train_step()
        torch.cuda.set_sync_debug_mode("error")
        try:
            cuda_trainer.train_step()
        finally:
            torch.cuda.set_sync_debug_mode("default")


# ----------------------------------------------------------------------------- metrics

def test_ssim_and_psnr_match_skimage():
    metrics = pytest.importorskip("skimage.metrics")
    generator = torch.Generator().manual_seed(0)
    scene = builtin_scene(resolution=32)
    image = scene.split("test").images[0].double() / 255
    noisy = (image + 0.05 * torch.randn(image.shape, generator=generator,
                                        dtype=torch.float64)).clamp(0, 1)
    cases = [(image, noisy), (torch.rand(40, 27, 3, generator=generator, dtype=torch.float64),
                              torch.rand(40, 27, 3, generator=generator, dtype=torch.float64)),
             (image[..., 0], noisy[..., 0])]
    for a, b in cases:
        expected = metrics.structural_similarity(
            a.numpy(), b.numpy(), gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, data_range=1.0,
            channel_axis=-1 if a.dim() == 3 else None)
        assert ssim(a, b) == pytest.approx(expected, abs=1e-12)
        assert psnr(a, b) == pytest.approx(
            metrics.peak_signal_noise_ratio(b.numpy(), a.numpy(), data_range=1.0), abs=1e-9)
    with pytest.raises(ValueError, match="at least 11 x 11"):
        ssim(image[:8, :8], noisy[:8, :8])


def test_mean_colour_baseline_per_view_and_inside_masks():
    generator = torch.Generator().manual_seed(0)
    images = (torch.rand(2, 16, 16, 3, generator=generator) * 255).round().to(torch.uint8)
    expected = np.mean([psnr(image.double().mean((0, 1)).expand_as(image), image)
                        for image in images.double() / 255])
    assert mean_colour_psnr(images) == pytest.approx(expected)
    masks = torch.zeros(2, 16, 16)
    masks[:, 4:9, 2:12] = 1.0
    images[:, 4:9, 2:12] = torch.tensor([200, 30, 90], dtype=torch.uint8)  # one colour inside
    assert mean_colour_psnr(images, masks) > 200  # exact up to float rounding
    assert math.isfinite(mean_colour_psnr(images))


@pytest.mark.parametrize("name", ["nerf-small", "neus-small"])
def test_evaluate_reports_each_view_and_writes_images(name, tmp_path):
    masks = ["data.use_masks=true"] if name == "neus-small" else []  # adds the masked PSNR
    trainer = make_trainer(tiny_config(name, 1, *masks), tmp_path / "run")
    result = evaluate(trainer.model, trainer.scene, "test", tmp_path / "eval", backend=BACKEND,
                      progress=False)
    views = trainer.scene.split("test")
    assert result["n_views"] == len(views) == len(result["views"])
    assert result["mean_psnr"] == pytest.approx(np.mean([v["psnr"] for v in result["views"]]))
    assert result["mean_ssim"] == pytest.approx(np.mean([v["ssim"] for v in result["views"]]))
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == result
    kinds = ("rgb", "depth", "normal") if name == "neus-small" else ("rgb", "depth")
    for view in result["views"]:
        for kind in kinds:
            assert (tmp_path / "eval" / f"{view['name']}_{kind}.png").is_file()
    assert result["note"] == split_note(trainer.scene, "test")
    if masks:
        masked = [v["psnr_masked"] for v in result["views"]]
        assert result["mean_psnr_masked"] == pytest.approx(np.mean(masked))
        assert all(masked_psnr != v["psnr"] for masked_psnr, v in zip(masked, result["views"]))
    else:
        assert "mean_psnr_masked" not in result


def test_split_notes_say_what_the_views_are():
    blender, neus = builtin_scene(resolution=32), builtin_scene(kind="neus", resolution=32)
    assert "held-out" in split_note(blender, "test")
    assert "also training views" in split_note(neus, "test")
    blender.name = "lego"  # a thinned NeRF-synthetic test split, like the shared lego copy
    assert f"{len(blender.split('test'))} of the 200 test views" in split_note(blender, "test")
