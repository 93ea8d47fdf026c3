"""Scene options across formats: ``data.downscale`` for every loader (LLFF's images_N
folders, NeuS's pixel-centre intrinsics), an option a format cannot honour as an error, and the
migration of configs written before LLFF's ``factor`` was folded into ``downscale``.

Expected images and intrinsics are computed here from the files (block means, the formulas),
not with the loaders' helpers."""
import imageio.v3 as iio
import numpy as np
import pytest
import torch

from fastfield.config import DataConfig, apply_override, from_dict, preset
from fastfield.data import load_llff, load_neus
from fastfield.train.scenes import load_config_scene


def test_neus_downscale_shrinks_images_masks_and_intrinsics(tiny_scene):
    full = load_neus(tiny_scene["neus"]).split("train")
    half = load_neus(tiny_scene["neus"], downscale=2).split("train")
    assert half.images.shape == (4, 8, 8, 3) and half.masks.shape == (4, 8, 8)
    blocks = full.images[0].double().reshape(8, 2, 8, 2, 3).mean((1, 3))
    np.testing.assert_allclose(half.images[0].double().numpy(), blocks.round().numpy())
    np.testing.assert_allclose(half.masks[0].numpy(),
                               full.masks[0].reshape(8, 2, 8, 2).mean((1, 3)).numpy(), atol=1e-6)
    # NeuS's integer pixel indices are pixel centres: x' = (x + 0.5) / 2 - 0.5.
    fx, fy, cx, cy = full.cameras.intrinsics[0].double().numpy()
    np.testing.assert_allclose(half.cameras.intrinsics[0].numpy(),
                               [fx / 2, fy / 2, (cx + 0.5) / 2 - 0.5, (cy + 0.5) / 2 - 0.5],
                               rtol=1e-6)
    torch.testing.assert_close(half.cameras.c2w, full.cameras.c2w)


def test_llff_downscale_reads_images_n_or_shrinks_a_finer_folder(llff_scene):
    scene = load_llff(llff_scene, downscale=16, llffhold=2)
    files = sorted((llff_scene / "images_8").iterdir())
    expected = iio.imread(files[1]).astype(float).reshape(6, 2, 8, 2, 3).mean((1, 3)).round()
    np.testing.assert_array_equal(scene.split("train").images[0].numpy(), expected)
    assert scene.split("train").cameras.intrinsics[0, 0] == pytest.approx(100 / 16)
    with pytest.raises(ValueError, match="images_4: folder not found .* a finer images_N"):
        load_llff(llff_scene, downscale=4)


def test_every_format_honours_downscale_and_refuses_what_it_cannot(tiny_scene, llff_scene):
    for builtin in ("blender", "neus"):
        scene = load_config_scene(DataConfig(builtin_format=builtin, builtin_resolution=16,
                                              downscale=2), "nerf")
        assert scene.split("train").images.shape[1:3] == (8, 8)
    scene = load_config_scene(DataConfig(path=str(llff_scene), downscale=16, llffhold=2))
    assert scene.split("train").images.shape[1:3] == (6, 8)
    for fields, message in ((dict(half_res=True), r"data.half_res=True applies to Blender"),
                            (dict(ndc=True), r"data.ndc=True applies to LLFF and nerfstudio"),
                            (dict(spherify=True), r"data.spherify=True applies to LLFF scenes"),
                            (dict(white_background=False), r"white_background=False applies to "
                                                           r"Blender scenes; scene .* is NeuS")):
        with pytest.raises(ValueError, match=message):
            load_config_scene(DataConfig(path=str(tiny_scene["neus"]), **fields))
    with pytest.raises(ValueError, match=r"use_masks=False applies to NeuS and nerfstudio .* "
                                         r"the built-in scene is Blender"):
        load_config_scene(DataConfig(use_masks=False, builtin_resolution=16))


def test_configs_from_before_one_downscale_migrate(tiny_scene, llff_scene):
    """Old configs had LLFF's factor beside a Blender-only downscale and ndc True by default:
    each maps to what its run actually used, and --set data.factor names the new option."""
    old = {"downscale": 1, "factor": 4, "ndc": True, "llffhold": 8}
    llff = from_dict(DataConfig, {**old, "path": str(llff_scene)})
    assert (llff.downscale, llff.ndc) == (4, True)
    blender = from_dict(DataConfig, {**old, "downscale": 2, "path": str(tiny_scene["blender"])})
    assert (blender.downscale, blender.ndc) == (2, None)
    neus = from_dict(DataConfig, {**old, "downscale": 2, "path": str(tiny_scene["neus"])})
    assert (neus.downscale, neus.ndc) == (None, None)  # the NeuS loader ignored it then
    builtin = from_dict(DataConfig, {**old, "path": None})
    assert (builtin.downscale, builtin.ndc) == (None, None)
    with pytest.raises(ValueError, match="data.factor.* now data.downscale"):
        apply_override(preset("nerf-small"), "data.factor=4")


def test_a_checkpoint_from_before_loads_and_resumes_without_notices(tmp_path):
    from fastfield.train import Trainer
    from fastfield.train.checkpoint import load_checkpoint, save_atomic
    from fastfield.app.runs import load_run
    from training_helpers import tiny_config

    config = tiny_config("nerf-small", 2)
    Trainer(config, tmp_path, device="cpu", progress=False).train()
    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    data = payload["config"]["data"]
    data.update(factor=8, ndc=True, downscale=1)  # what an older fastfield wrote
    save_atomic(payload, tmp_path / "checkpoint.pt")
    run = load_run(tmp_path, device="cpu")
    assert (run.config.data.downscale, run.config.data.ndc) == (None, None)
    config.iters = 3
    resumed = Trainer(config, tmp_path, device="cpu", resume=True, progress=False)
    assert not any("data." in notice for notice in resumed.notices), resumed.notices
