"""Data layer: cameras, camera paths and the Blender / LLFF / NeuS loaders.

Real-scene tests read ../shared/data (or $FASTFIELD_DATA) and skip when it is absent. Expected
values come from the files themselves (json, npy, npz, PNG) or from the references' formulas
written out here, not from the loaders' code. Error tests corrupt small scenes in tmp_path.
"""
import json
import math
import re
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from fastfield.data import (Camera, Split, load_blender, load_llff, load_neus, load_scene,
                            orbit_path)
from fastfield.data.blender import area_resize
from fastfield.data.neus import decompose_projection

from helpers import DTU, FERN, LEGO, real_scene


def pose_spherical(theta_deg: float, phi_deg: float, radius: float) -> np.ndarray:
    """nerf-pytorch's Blender render pose, written out as in load_blender.py."""
    theta, phi = math.radians(theta_deg), math.radians(phi_deg)
    trans_t = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, radius], [0, 0, 0, 1]], float)
    rot_phi = np.array([[1, 0, 0, 0], [0, math.cos(phi), -math.sin(phi), 0],
                        [0, math.sin(phi), math.cos(phi), 0], [0, 0, 0, 1]])
    rot_theta = np.array([[math.cos(theta), 0, -math.sin(theta), 0], [0, 1, 0, 0],
                          [math.sin(theta), 0, math.cos(theta), 0], [0, 0, 0, 1]])
    swap = np.array([[-1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], float)
    return swap @ rot_theta @ rot_phi @ trans_t


def project(camera: Camera, points: np.ndarray) -> np.ndarray:
    """[n_cams, n, 2] pixel (col, row) of world points [n, 3] through OpenCV cameras."""
    c2w = camera.c2w.double().numpy()
    fx, fy, cx, cy = camera.intrinsics.double().numpy().T
    local = np.einsum("cji,cnj->cni", c2w[:, :, :3], points[None] - c2w[:, None, :, 3])
    return np.stack([fx[:, None] * local[..., 0] / local[..., 2] + cx[:, None],
                     fy[:, None] * local[..., 1] / local[..., 2] + cy[:, None]], -1)


# ----------------------------------------------------------------------------- Camera

def test_camera_validates_fields():
    c2w, intrinsics = torch.zeros(2, 3, 4), torch.ones(2, 4)
    with pytest.raises(ValueError, match="c2w"):
        Camera(torch.zeros(2, 4, 4), intrinsics, 8, 8, "opengl")
    with pytest.raises(ValueError, match="intrinsics"):
        Camera(c2w, torch.ones(3, 4), 8, 8, "opengl")
    with pytest.raises(ValueError, match="height"):
        Camera(c2w, intrinsics, 0, 8, "opengl")
    with pytest.raises(ValueError, match="convention"):
        Camera(c2w, intrinsics, 8, 8, "blender")
    with pytest.raises(ValueError, match="dtype"):
        Camera(c2w, intrinsics.double(), 8, 8, "opengl")


def test_camera_indexing_keeps_camera_dim():
    camera = Camera(torch.arange(36.0).reshape(3, 3, 4), torch.arange(12.0).reshape(3, 4), 6, 8,
                    "opencv")
    last = camera[-1]
    assert len(last) == 1 and torch.equal(last.c2w[0], camera.c2w[2])
    assert torch.equal(camera[1:].intrinsics, camera.intrinsics[1:])
    assert torch.equal(camera[torch.tensor([2, 0])].c2w, camera.c2w[[2, 0]])
    assert (last.height, last.width, last.convention) == (6, 8, "opencv")
    assert camera.to(dtype=torch.float64).c2w.dtype == torch.float64
    with pytest.raises(IndexError):
        camera[3]


def test_split_checks_image_shape():
    camera = Camera(torch.zeros(2, 3, 4), torch.ones(2, 4), 4, 5, "opengl")
    with pytest.raises(ValueError, match="images"):
        Split(torch.zeros(2, 5, 4, 3, dtype=torch.uint8), camera, None, ["a", "b"])


# ----------------------------------------------------------------------------- paths and resize

def test_orbit_path_is_nerf_pytorch_pose_spherical():
    path = orbit_path((0, 0, 0), 4.0, 30.0, 40, (100.0, 100.0, 50.0, 50.0), 100, 100)
    expected = np.stack([pose_spherical(a, -30.0, 4.0)[:3]
                         for a in np.linspace(-180, 180, 41)[:-1]])
    np.testing.assert_allclose(path.c2w.numpy(), expected, atol=1e-5)
    opencv = orbit_path((0, 0, 0), 4.0, 30.0, 40, (100.0, 100.0, 50.0, 50.0), 100, 100, "opencv")
    np.testing.assert_allclose(opencv.c2w.numpy(), expected[:, :, :4] * [1, -1, -1, 1], atol=1e-5)


def test_area_resize_matches_box_and_fractional_area():
    image = torch.rand(6, 9, 2, dtype=torch.float64)
    box = image.reshape(3, 2, 3, 3, 2).mean((1, 3))
    torch.testing.assert_close(area_resize(image, 3, 3), box)
    row = torch.arange(5.0, dtype=torch.float64).reshape(1, 5, 1)  # 5 -> 2: 2.5 pixels each
    expected = torch.tensor([(0 + 1 + 0.5 * 2) / 2.5, (0.5 * 2 + 3 + 4) / 2.5],
                            dtype=torch.float64).reshape(1, 2, 1)
    torch.testing.assert_close(area_resize(row, 1, 2), expected)


# ----------------------------------------------------------------------------- Blender (lego)

@pytest.fixture(scope="module")
def lego_val():
    return load_blender(real_scene(LEGO), splits=("val",))


def test_lego_frame_counts_match_jsons():
    path = real_scene(LEGO)
    scene = load_scene(path, downscale=8)
    assert scene.kind == "blender" and (scene.near, scene.far) == (2.0, 6.0)
    for split, count in (("train", 100), ("val", 13), ("test", 25)):
        frames = json.loads((path / f"transforms_{split}.json").read_text())["frames"]
        assert len(frames) == count == len(scene.split(split))
        assert scene.split(split).images.shape == (count, 100, 100, 3)
        assert scene.split(split).names[1] == Path(frames[1]["file_path"]).name + ".png"


def test_lego_cameras_and_white_background(lego_val):
    path = real_scene(LEGO)
    meta = json.loads((path / "transforms_val.json").read_text())
    val = lego_val.split("val")
    assert val.images.shape == (13, 800, 800, 3) and val.images.dtype == torch.uint8
    np.testing.assert_allclose(val.cameras.intrinsics[0].numpy(), [1111.111, 1111.111, 400, 400],
                               atol=1e-3)
    np.testing.assert_allclose(val.cameras.c2w.numpy(),
                               np.array([f["transform_matrix"] for f in meta["frames"]])[:, :3],
                               atol=1e-6)
    assert val.cameras.convention == "opengl" and lego_val.background == (1.0, 1.0, 1.0)
    assert (val.images[:, 0, 0] == 255).all() and (val.masks[:, 0, 0] == 0).all()
    expected = np.stack([pose_spherical(a, -30.0, 4.0)[:3]
                         for a in np.linspace(-180, 180, 41)[:-1]])
    np.testing.assert_allclose(lego_val.render_path.c2w.numpy(), expected, atol=1e-5)


def test_lego_half_res_averages_rgba_before_compositing():
    path = real_scene(LEGO)
    val = load_blender(path, half_res=True, splits=("val",)).split("val")
    assert val.images.shape == (13, 400, 400, 3)
    np.testing.assert_allclose(val.cameras.intrinsics[0].numpy(), [555.556, 555.556, 200, 200],
                               atol=1e-3)
    rgba = iio.imread(path / "val" / "r_0.png").astype(np.float64) / 255
    rgba = rgba.reshape(400, 2, 400, 2, 4).mean((1, 3))
    expected = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])
    assert np.abs(val.images[0].numpy() - expected * 255).max() <= 0.5 + 1e-3
    np.testing.assert_allclose(val.masks[0].numpy(), rgba[..., 3], atol=1e-6)


def test_lego_black_background():
    val = load_blender(real_scene(LEGO), white_background=False, splits=("val",),
                       downscale=8).split("val")
    assert (val.images[:, 0, 0] == 0).all()


# ----------------------------------------------------------------------------- LLFF (fern)

@pytest.fixture(scope="module")
def fern():
    return load_scene(real_scene(FERN))


def fern_raw():
    raw = np.load(real_scene(FERN) / "poses_bounds.npy")
    return raw[:, :15].reshape(-1, 3, 5), raw[:, 15:]


def test_fern_images_splits_and_ndc(fern):
    poses, _ = fern_raw()
    focal = poses[0, 2, 4] / 8
    assert abs(focal - 3260.526 / 8) < 1e-2
    train, test = fern.split("train"), fern.split("test")
    assert fern.kind == "llff" and len(train) == 17 and len(test) == 3
    assert train.images.shape[1:] == (378, 504, 3) and train.masks is None
    assert test.names == ["image000.png", "image008.png", "image016.png"]
    assert fern.split("val") is test
    np.testing.assert_allclose(test.cameras.intrinsics[0].numpy(), [focal, focal, 252, 189],
                               rtol=1e-6)
    assert fern.ndc == {"H": 378, "W": 504, "focal": pytest.approx(focal), "near": 1.0}
    assert (fern.near, fern.far) == (0.0, 1.0)


def all_poses(scene) -> np.ndarray:
    """[n, 3, 4] float64 poses of an llffhold-8 scene, back in file order."""
    train, test = scene.split("train").cameras.c2w, scene.split("test").cameras.c2w
    n = len(train) + len(test)
    order = list(range(0, n, 8)) + [i for i in range(n) if i % 8]
    poses = np.empty((n, 3, 4))
    poses[order] = torch.cat([test, train]).double().numpy()
    return poses


def test_fern_poses_recentred(fern):
    poses = all_poses(fern)
    np.testing.assert_allclose(poses[:, :, 3].mean(0), 0, atol=1e-5)
    back = poses[:, :, 2].sum(0)
    np.testing.assert_allclose(back / np.linalg.norm(back), [0, 0, 1], atol=1e-5)
    assert abs(poses[:, 0, 1].sum()) < 1e-4 and poses[:, 1, 1].sum() > 0


def test_fern_poses_are_a_similarity_of_the_raw_poses(fern):
    raw, bounds = fern_raw()
    # [down, right, back] -> [right, up, back]
    rotations = np.stack([raw[:, :, 1], -raw[:, :, 0], raw[:, :, 2]], axis=2)
    poses = all_poses(fern)
    relative = np.einsum("ji,njk->nik", poses[0, :, :3], poses[:, :, :3])
    relative_raw = np.einsum("ji,njk->nik", rotations[0], rotations)
    np.testing.assert_allclose(relative, relative_raw, atol=1e-5)
    scale = 1 / (bounds.min() * 0.75)
    distances = np.linalg.norm(poses[:, None, :, 3] - poses[None, :, :, 3], axis=-1)
    raw_distances = np.linalg.norm(raw[:, None, :, 3] - raw[None, :, :, 3], axis=-1)
    np.testing.assert_allclose(distances, scale * raw_distances, atol=1e-5)


def test_fern_spiral_looks_at_the_focus_point(fern):
    _, bounds = fern_raw()
    bounds = bounds / (bounds.min() * 0.75)
    close, far = bounds.min() * 0.9, bounds.max() * 5
    focus_depth = 1 / (0.25 / close + 0.75 / far)
    path = fern.render_path.c2w.double().numpy()
    assert len(path) == 120
    to_focus = np.array([0, 0, -focus_depth]) - path[:, :, 3]
    to_focus /= np.linalg.norm(to_focus, axis=1, keepdims=True)
    np.testing.assert_allclose(to_focus, -path[:, :, 2], atol=1e-4)
    radii = np.percentile(np.abs(all_poses(fern)[:, :, 3]), 90, axis=0)
    assert np.all(np.abs(path[:, :, 3]).max(0) <= radii + 1e-4)


def test_fern_without_ndc_and_spherified():
    _, bounds = fern_raw()
    scene = load_llff(real_scene(FERN), ndc=False)
    assert scene.ndc is None and scene.near == pytest.approx(0.9 / 0.75)
    assert scene.far == pytest.approx(bounds.max() / (bounds.min() * 0.75))
    spherified = load_llff(real_scene(FERN), spherify=True)
    positions = all_poses(spherified)[:, :, 3]
    assert np.sqrt((positions ** 2).sum(1).mean()) == pytest.approx(1.0, abs=1e-5)
    render = spherified.render_path.c2w.double().numpy()
    np.testing.assert_allclose(np.linalg.norm(render[:, :, 3], axis=1), 1.0, atol=1e-5)


# ----------------------------------------------------------------------------- NeuS (DTU scan24)

@pytest.fixture(scope="module")
def dtu():
    return load_scene(real_scene(DTU))


def dtu_projections() -> np.ndarray:
    cameras = np.load(real_scene(DTU) / "cameras_sphere.npz")
    return np.stack([(cameras[f"world_mat_{i}"].astype(np.float64)
                      @ cameras[f"scale_mat_{i}"].astype(np.float64))[:3] for i in range(49)])


def test_dtu_images_masks_splits(dtu):
    train = dtu.split("train")
    assert dtu.kind == "neus" and len(train) == 49 and train.images.shape[1:] == (300, 400, 3)
    assert train.masks.shape == (49, 300, 400) and train.masks.dtype == torch.float32
    mask_file = iio.imread(real_scene(DTU) / "mask" / "000.png")
    np.testing.assert_allclose(train.masks[0].numpy(), mask_file[..., 0] / 255.0, atol=1e-7)
    assert ((train.masks > 0) & (train.masks < 1)).any()  # soft edges kept
    assert dtu.split("test").names == [f"{i:06d}.png" for i in range(0, 49, 8)]
    assert (dtu.bounds, dtu.near, dtu.far, dtu.background) == ("sphere", 0.0, 0.0, None)
    scale_mat = np.load(real_scene(DTU) / "cameras_sphere.npz")["scale_mat_0"]
    np.testing.assert_allclose(dtu.scale_mat.numpy(), scale_mat)


def test_dtu_cameras_reproduce_world_mat_times_scale_mat(dtu):
    cameras = dtu.split("train").cameras
    fx, fy, cx, cy = cameras.intrinsics.double().numpy().T
    c2w = cameras.c2w.double().numpy()
    for i, expected in enumerate(dtu_projections()):
        K = np.array([[fx[i], 0, cx[i]], [0, fy[i], cy[i]], [0, 0, 1]])
        rotation = c2w[i, :, :3].T
        rebuilt = K @ np.concatenate([rotation, -rotation @ c2w[i, :, 3:]], axis=1)
        expected = expected / (expected[2, :3] @ rotation[2])  # P is up to scale and sign
        assert np.abs(rebuilt - expected).max() <= 1e-4 * np.abs(expected).max()


def test_dtu_decomposition_is_proper_with_tiny_skew():
    for projection in dtu_projections():
        K, c2w = decompose_projection(projection)
        assert abs(K[0, 1]) < 1e-2 and (np.diag(K) > 0).all() and K[2, 2] == 1
        np.testing.assert_allclose(c2w[:, :3] @ c2w[:, :3].T, np.eye(3), atol=1e-9)
        assert np.linalg.det(c2w[:, :3]) == pytest.approx(1.0)


def test_dtu_sphere_centre_projects_into_every_mask(dtu):
    train = dtu.split("train")
    col, row = np.round(project(train.cameras, np.zeros((1, 3)))[:, 0].T).astype(int)
    assert (train.masks[np.arange(49), row, col] > 0.5).all()


def test_dtu_render_path_orbits_the_sphere_centre(dtu):
    path = dtu.render_path
    positions = path.c2w[:, :, 3].double().numpy()
    distances = np.linalg.norm(dtu.split("train").cameras.c2w[:, :, 3].double().numpy(), axis=1)
    assert len(path) == 60 and path.convention == "opencv"
    np.testing.assert_allclose(np.linalg.norm(positions, axis=1), distances.mean(), rtol=1e-5)
    centre_pixels = project(path, np.zeros((1, 3)))[:, 0]
    np.testing.assert_allclose(centre_pixels, path.intrinsics[:, 2:].numpy(), atol=1e-2)


def test_decompose_projection_recovers_sign_flipped_scaled_cameras():
    generator = np.random.default_rng(0)
    for scale in (3.7, -0.02):
        rotation, _ = np.linalg.qr(generator.normal(size=(3, 3)))
        rotation *= np.sign(np.linalg.det(rotation))
        centre = generator.normal(size=3)
        K = np.array([[500.0, 0.3, 200.0], [0.0, 480.0, 150.0], [0.0, 0.0, 1.0]])
        projection = scale * K @ np.concatenate([rotation, -rotation @ centre[:, None]], 1)
        recovered_K, c2w = decompose_projection(projection)
        np.testing.assert_allclose(recovered_K, K, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(c2w, np.concatenate([rotation.T, centre[:, None]], 1),
                                   atol=1e-9)


# ----------------------------------------------------------------------------- loader errors

@pytest.fixture
def blender_copy(tiny_scene, tmp_path):
    return Path(shutil.copytree(tiny_scene["blender"], tmp_path / "blender"))


@pytest.fixture
def neus_copy(tiny_scene, tmp_path):
    return Path(shutil.copytree(tiny_scene["neus"], tmp_path / "neus"))


def edit_json(path: Path, edit):
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def test_uncorrupted_copies_load(blender_copy, neus_copy, llff_scene):
    assert len(load_scene(blender_copy).split("train")) == 4
    assert len(load_scene(neus_copy).split("train")) == 4
    scene = load_scene(llff_scene, llffhold=2)
    assert len(scene.split("train")) == 1 and scene.split("train").images.shape[1:3] == (12, 16)


def test_blender_missing_or_malformed_json(blender_copy):
    (blender_copy / "transforms_val.json").unlink()
    with pytest.raises(ValueError, match="transforms_val.json: file not found"):
        load_blender(blender_copy)
    (blender_copy / "transforms_train.json").write_text('{"camera_angle_x": 0.6, "frames": [')
    with pytest.raises(ValueError, match="transforms_train.json: malformed JSON"):
        load_blender(blender_copy, splits=("train",))


@pytest.mark.parametrize("edit, message", [
    (lambda meta: meta["frames"][1].pop("transform_matrix"),
     "transforms_test.json: frame 1 has no 'transform_matrix'"),
    (lambda meta: meta.pop("camera_angle_x"), "transforms_test.json has no 'camera_angle_x'"),
    (lambda meta: meta.pop("frames"), "transforms_test.json has no 'frames'"),
    (lambda meta: meta["frames"][0].update(transform_matrix=[[1, 0], [0, 1]]),
     "transforms_test.json: frame 0: 'transform_matrix' must be a finite 4x4 array"),
])
def test_blender_bad_fields(blender_copy, edit, message):
    test_json = blender_copy / "transforms_test.json"
    meta = json.loads(test_json.read_text())
    meta["frames"].append(dict(meta["frames"][0]))  # two frames, so that frame 1 exists
    test_json.write_text(json.dumps(meta))
    edit_json(test_json, edit)
    with pytest.raises(ValueError, match=message):
        load_blender(blender_copy)


def test_blender_bad_images(blender_copy):
    image = blender_copy / "train" / "r_2.png"
    image.unlink()
    with pytest.raises(ValueError, match="r_2.png: file not found"):
        load_blender(blender_copy)
    iio.imwrite(image, np.zeros((8, 16, 4), np.uint8))
    with pytest.raises(ValueError, match="r_2.png: image is 8x16 .*expected 16x16"):
        load_blender(blender_copy)
    iio.imwrite(image, np.zeros((16, 16, 4), np.uint8))
    truncated = blender_copy / "val" / "r_0.png"
    truncated.write_bytes(truncated.read_bytes()[:60])
    with pytest.raises(ValueError, match="r_0.png: cannot read image"):
        load_blender(blender_copy)


def test_neus_missing_camera_and_count_mismatches(neus_copy):
    cameras = dict(np.load(neus_copy / "cameras_sphere.npz"))
    del cameras["world_mat_3"]
    np.savez(neus_copy / "cameras_sphere.npz", **cameras)
    with pytest.raises(ValueError, match="cameras_sphere.npz has no 'world_mat_3'"):
        load_neus(neus_copy)
    (neus_copy / "image" / "003.png").unlink()
    (neus_copy / "mask" / "003.png").unlink()
    assert len(load_neus(neus_copy).split("train")) == 3
    (neus_copy / "mask" / "002.png").unlink()
    with pytest.raises(ValueError, match="mask: 2 masks but 3 images"):
        load_neus(neus_copy)
    (neus_copy / "image" / "002.png").unlink()
    with pytest.raises(ValueError, match="cameras_sphere.npz: 3 cameras .* but 2 images"):
        load_neus(neus_copy)


def test_neus_bad_mask_and_npz(neus_copy):
    iio.imwrite(neus_copy / "mask" / "001.png", np.zeros((15, 16), np.uint8))
    with pytest.raises(ValueError, match="001.png: image is 15x16"):
        load_neus(neus_copy)
    assert load_neus(neus_copy, use_masks=False).split("train").masks is None
    (neus_copy / "cameras_sphere.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="cameras_sphere.npz: not a readable .npz"):
        load_neus(neus_copy)


def test_llff_errors(llff_scene):
    (llff_scene / "images_8" / "image002.png").unlink()
    with pytest.raises(ValueError, match="images_8: 2 images but .*poses_bounds.npy holds 3"):
        load_llff(llff_scene)
    with pytest.raises(ValueError, match="images_4: folder not found"):
        load_llff(llff_scene, downscale=4)
    iio.imwrite(llff_scene / "images_8" / "image002.png", np.zeros((12, 16, 3), np.uint8))
    raw = np.load(llff_scene / "poses_bounds.npy")
    raw[:, 4] = 200  # full-size H no longer 8 x 12
    np.save(llff_scene / "poses_bounds.npy", raw)
    with pytest.raises(ValueError, match="image000.png: image is 12x16 but .*poses_bounds.npy"):
        load_llff(llff_scene)
    np.save(llff_scene / "poses_bounds.npy", raw[:, :15])
    with pytest.raises(ValueError, match=r"poses_bounds.npy: expected an \[n_images, 17\]"):
        load_llff(llff_scene)


def test_empty_and_missing_folders(tmp_path):
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path}: cannot tell the scene format")):
        load_scene(tmp_path)
    with pytest.raises(ValueError, match="nowhere: scene folder not found"):
        load_scene(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="cameras_sphere.npz: file not found"):
        load_neus(tmp_path)
    (tmp_path / "image").mkdir()
    (tmp_path / "cameras_sphere.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="image: no .png/.jpg images found"):
        load_neus(tmp_path)

