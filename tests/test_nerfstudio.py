"""The nerfstudio transforms.json loader (fastfield.data.load_nerfstudio) on small scenes written
here: intrinsics shared and per frame, pixel-centre convention, images_N folders, distortion
undone on load, masks, the every-8th hold-out, NDC for forward-facing captures, NeuS's unit
sphere, and a one-line ValueError for each bad field.

Expected values are computed from the files written here (and the formulas of nerfstudio's
format), not with the loader's helpers.
"""
import json
import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from fastfield.data import load_nerfstudio, load_scene, scene_format

H, W = 12, 16
FX, FY, CX, CY = 20.0, 21.0, 8.5, 5.75


def circle_pose(angle: float, radius: float = 3.0) -> np.ndarray:
    """OpenGL camera-to-world [4, 4] on a circle round the z axis, looking at the origin."""
    position = np.array([radius * math.cos(angle), radius * math.sin(angle), 1.0])
    back = position / np.linalg.norm(position)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    pose = np.eye(4)
    pose[:3, :4] = np.stack([right, np.cross(back, right), back, position], axis=1)
    return pose


def write_scene(folder: Path, n: int = 10, frame_extra=None, **top) -> dict:
    """n random H x W images frame_00.png ... listed in reverse order; returns the record."""
    (folder / "images").mkdir(parents=True)
    generator = np.random.default_rng(0)
    frames = []
    for i in reversed(range(n)):
        iio.imwrite(folder / "images" / f"frame_{i:02d}.png",
                    generator.integers(0, 256, (H, W, 3), np.uint8))
        frame = {"file_path": f"images/frame_{i:02d}.png",
                 "transform_matrix": circle_pose(2 * math.pi * i / n).tolist()}
        frames.append({**frame, **(frame_extra(i) if frame_extra else {})})
    record = {"camera_model": "OPENCV", "fl_x": FX, "fl_y": FY, "cx": CX, "cy": CY, "w": W,
              "h": H, "frames": frames, **top}
    (folder / "transforms.json").write_text(json.dumps(record))
    return record


def image(folder: Path, i: int, prefix: str = "images") -> np.ndarray:
    return iio.imread(folder / prefix / f"frame_{i:02d}.png")


def test_detected_sorted_and_held_out_every_eighth(tmp_path):
    write_scene(tmp_path)
    assert scene_format(tmp_path) == "nerfstudio"
    scene = load_scene(tmp_path)
    train, test = scene.split("train"), scene.split("test")
    assert scene.kind == "nerfstudio" and scene.split("val") is test
    assert test.names == ["frame_00.png", "frame_08.png"]
    assert train.names == [f"frame_{i:02d}.png" for i in range(10) if i % 8]
    np.testing.assert_array_equal(test.images[1].numpy(), image(tmp_path, 8))
    np.testing.assert_allclose(test.cameras.c2w[1].numpy(), circle_pose(2 * math.pi * 0.8)[:3],
                               atol=1e-6)
    # The file's principal point has pixel corners at integers; fastfield's integer pixel
    # index is the pixel centre, half a pixel on.
    np.testing.assert_allclose(train.cameras.intrinsics.numpy(),
                               np.tile([FX, FY, CX - 0.5, CY - 0.5], (8, 1)), rtol=1e-6)
    assert train.cameras.convention == "opengl" and train.masks is None
    # No depth_range: near/far from the cameras' spread (radius 3 about their centroid).
    assert (scene.near, scene.far) == (pytest.approx(0.9 * 0.3), pytest.approx(12.0))
    assert scene.bounds == "fixed" and scene.ndc is None and scene.aabb is None


def test_per_frame_intrinsics_override_the_shared_ones(tmp_path):
    write_scene(tmp_path, frame_extra=lambda i: {"fl_x": 30.0 + i} if i == 3 else {})
    train = load_nerfstudio(tmp_path).split("train")
    fx = train.cameras.intrinsics[:, 0].numpy()
    assert fx[train.names.index("frame_03.png")] == pytest.approx(33.0)
    assert np.delete(fx, train.names.index("frame_03.png")) == pytest.approx(FX)


def test_downscale_reads_images_n_or_shrinks_on_load(tmp_path):
    write_scene(tmp_path)
    shrunk = load_nerfstudio(tmp_path, downscale=2).split("test")
    expected = image(tmp_path, 0).astype(float).reshape(H // 2, 2, W // 2, 2, 3).mean((1, 3))
    np.testing.assert_allclose(shrunk.images[0].numpy(), np.round(expected), atol=0)
    # x' = x / 2 for pixel-corner coordinates, then the half-pixel shift.
    np.testing.assert_allclose(shrunk.cameras.intrinsics[0].numpy(),
                               [FX / 2, FY / 2, CX / 2 - 0.5, CY / 2 - 0.5], rtol=1e-6)
    (tmp_path / "images_2").mkdir()
    for i in range(10):
        iio.imwrite(tmp_path / "images_2" / f"frame_{i:02d}.png",
                    np.full((H // 2, W // 2, 3), i, np.uint8))
    from_folder = load_nerfstudio(tmp_path, downscale=2).split("test")
    assert (from_folder.images[1] == 8).all()
    iio.imwrite(tmp_path / "images_2" / "frame_08.png", np.zeros((3, 3, 3), np.uint8))
    with pytest.raises(ValueError, match=r"images_2/frame_08.png: image is 3x3, expected 6x8"):
        load_nerfstudio(tmp_path, downscale=2)


def test_opencv_distortion_is_undone_on_load(tmp_path):
    """The distorted file shows f(undistorted normalised coordinates) at each pixel; loaded, a
    pixel must show f at its own pinhole coordinates."""
    coefficients = {"k1": -0.25, "k2": 0.05, "k3": 0.0, "p1": 0.004, "p2": -0.003}
    size, focal = 64, 50.0

    def pattern(x, y):
        return 0.5 + 0.4 * np.sin(12 * x) * np.cos(10 * y)

    v, u = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")
    xd, yd = (u - size / 2) / focal, (v - size / 2) / focal
    x, y = xd.copy(), yd.copy()
    for _ in range(50):  # invert the distortion by fixed-point iteration
        r2 = x * x + y * y
        radial = 1 + coefficients["k1"] * r2 + coefficients["k2"] * r2 * r2
        dx = 2 * coefficients["p1"] * x * y + coefficients["p2"] * (r2 + 2 * x * x)
        dy = coefficients["p1"] * (r2 + 2 * y * y) + 2 * coefficients["p2"] * x * y
        x, y = (xd - dx) / radial, (yd - dy) / radial
    folder = tmp_path / "scene"
    (folder / "images").mkdir(parents=True)
    distorted = np.repeat((pattern(x, y) * 255).round().astype(np.uint8)[..., None], 3, -1)
    for i in range(2):
        iio.imwrite(folder / "images" / f"{i}.png", distorted)
    (folder / "transforms.json").write_text(json.dumps({
        "camera_model": "OPENCV", "fl_x": focal, "fl_y": focal, "cx": size / 2, "cy": size / 2,
        "w": size, "h": size, **coefficients,
        "frames": [{"file_path": f"images/{i}.png",
                    "transform_matrix": circle_pose(i).tolist()} for i in range(2)]}))
    loaded = load_nerfstudio(folder).split("test").images[0, :, :, 0].numpy() / 255.0
    expected = pattern((u - size / 2) / focal, (v - size / 2) / focal)
    inner = slice(4, -4)  # the border samples beyond the distorted image's edge
    assert np.abs(loaded - expected)[inner, inner].max() < 0.03
    assert np.abs(distorted[..., 0] / 255.0 - expected)[inner, inner].max() > 0.3


def test_masks_are_read_for_every_frame_or_none(tmp_path):
    write_scene(tmp_path, frame_extra=lambda i: {"mask_path": f"masks/frame_{i:02d}.png"})
    (tmp_path / "masks").mkdir()
    for i in range(10):
        iio.imwrite(tmp_path / "masks" / f"frame_{i:02d}.png", np.full((H, W), 20 * i, np.uint8))
    masks = load_nerfstudio(tmp_path).split("test").masks
    np.testing.assert_allclose(masks[1].numpy(), 160 / 255, rtol=1e-6)
    assert load_nerfstudio(tmp_path, use_masks=False).split("train").masks is None
    meta = json.loads((tmp_path / "transforms.json").read_text())
    del meta["frames"][4]["mask_path"]
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="frame 4 has no 'mask_path' but other frames do"):
        load_nerfstudio(tmp_path)


def test_forward_facing_captures_get_llff_ndc(tmp_path):
    poses = lambda i: {"transform_matrix": (np.eye(4) + np.diag([0, 0, 0, 0]) + np.pad(  # noqa
        [[0.1 * i], [0.05 * i], [0.0]], ((0, 1), (3, 0)))).tolist()}
    write_scene(tmp_path, frame_extra=poses, forward_facing=True, depth_range=[2.0, 10.0])
    scene = load_scene(tmp_path)
    assert scene.ndc == {"H": H, "W": W, "focal": pytest.approx(FX), "near": 1.0}
    assert (scene.near, scene.far) == (0.0, 1.0) and scene.aabb is None
    positions = np.concatenate([scene.split(s).cameras.c2w[:, :, 3].double().numpy()
                                for s in ("train", "test")])
    np.testing.assert_allclose(positions.mean(0), 0, atol=1e-6)  # recentred
    # Positions scaled by 1 / (0.75 x closest depth): neighbours 0.1118 apart become 0.0745.
    step = np.linalg.norm([0.1, 0.05]) / (0.75 * 2.0)
    gaps = np.linalg.norm(np.diff(positions[np.argsort(positions[:, 0])], axis=0), axis=1)
    np.testing.assert_allclose(gaps, step, rtol=1e-5)
    flat = load_scene(tmp_path, ndc=False)
    assert flat.ndc is None and (flat.near, flat.far) == (pytest.approx(1.8), 10.0)


def test_unit_sphere_for_neus(tmp_path):
    aabb = [[-1.0, -2.0, -0.5], [1.0, 2.0, 1.5]]
    write_scene(tmp_path, aabb=aabb, depth_range=[1.0, 5.0])
    with pytest.raises(ValueError, match="cameras_sphere.npz: file not found"):
        load_nerfstudio(tmp_path, unit_sphere=True)
    scale_mat = np.diag([2.0, 2.0, 2.0, 1.0])
    scale_mat[:3, 3] = [1.0, 0.0, 0.5]
    np.savez(tmp_path / "cameras_sphere.npz", scale_mat_0=scale_mat)
    scene = load_nerfstudio(tmp_path, unit_sphere=True)
    assert scene.bounds == "sphere" and (scene.near, scene.far) == (0.0, 0.0)
    np.testing.assert_allclose(scene.scale_mat.numpy(), scale_mat)
    train = scene.split("train")
    assert len(train) == 10  # NeuS validates on training views: held-out views stay in
    pose = circle_pose(2 * math.pi * 0.8)
    np.testing.assert_allclose(scene.split("test").cameras.c2w[1].numpy(),
                               np.concatenate([pose[:3, :3], (pose[:3, 3:] - [[1.0], [0.0], [0.5]])
                                               / 2], 1), atol=1e-6)
    np.testing.assert_allclose(scene.aabb.numpy(), [[-1.0, -1.0, -0.5], [0.0, 1.0, 0.5]])
    flat = load_nerfstudio(tmp_path)
    np.testing.assert_allclose(flat.aabb.numpy(), aabb)
    assert (flat.near, flat.far) == (pytest.approx(0.9), 5.0)
    with pytest.raises(ValueError, match="ndc and unit_sphere exclude each other"):
        load_nerfstudio(tmp_path, unit_sphere=True, ndc=True)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(camera_model="OPENCV_FISHEYE"), "camera_model 'OPENCV_FISHEYE' is not"),
    (lambda m: m.update(k4=0.1), "'k4' is a fisheye coefficient"),
    (lambda m: m.pop("fl_x"), r"frame 9 has no 'fl_x' \(and the file none at the top"),
    (lambda m: m["frames"][2].update(w=20), r"frame 2: image size 12x20 \(h x w\) differs"),
    (lambda m: m.update(w=18, h=12), r"frame_00.png: image is 12x16, transforms.json gives"),
    (lambda m: m["frames"][1].pop("transform_matrix"), "frame 1 has no 'transform_matrix'"),
    (lambda m: m.update(frames=m["frames"][:1]), "'frames' must list at least 2 frames"),
    (lambda m: m.update(depth_range=[3.0, 1.0]), "'depth_range' must be \\[closest, farthest\\]"),
    (lambda m: m["frames"][0].update(file_path=7), "frame 0: 'file_path' must be a file path"),
])
def test_bad_fields_are_one_line_errors(tmp_path, edit, message):
    meta = write_scene(tmp_path)
    edit(meta)
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=message):
        load_nerfstudio(tmp_path)


def test_bad_arguments(tmp_path):
    write_scene(tmp_path)
    with pytest.raises(ValueError, match="llffhold must be >= 2"):
        load_nerfstudio(tmp_path, llffhold=1)
    with pytest.raises(ValueError, match="downscale must be >= 1"):
        load_nerfstudio(tmp_path, downscale=0)
    with pytest.raises(ValueError, match="a 12x16 image cannot be shrunk by a factor of 32"):
        load_nerfstudio(tmp_path, downscale=32)
