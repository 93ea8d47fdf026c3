"""The built-in scene: its analytic surface, its renders, both file formats and the cache.

The two formats are checked against each other and against the analytic surface: rays of the
same pixel from the loaded Blender (world) and NeuS (normalised) cameras must hit the same
surface point, and re-rendering the loaded cameras must give back the stored PNGs.
"""
import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from fastfield.data import BuiltinShapes, builtin_scene, load_blender, load_neus, \
    write_builtin_scene
from fastfield.data.builtin import (CAMERA_DISTANCE, NEUS_BACKGROUND, SCALE_MAT, render_views,
                                    sphere_trace)
from fastfield.reference import generate_rays, near_far_sphere

RESOLUTION = 32
SHAPES = BuiltinShapes()


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return write_builtin_scene(tmp_path_factory.mktemp("builtin"), resolution=RESOLUTION,
                               n_train=8, n_val=2, n_test=2, seed=3)


@pytest.fixture(scope="module")
def blender(paths):
    return load_blender(paths["blender"])


@pytest.fixture(scope="module")
def neus(paths):
    return load_neus(paths["neus"])


def rays_in_normalised_frame(camera, pixels, scale_mat=None):
    """Unit rays [n, 3] in the normalised frame for pixels (cam, row, col) of a loaded camera."""
    camera = camera.to(dtype=torch.float64)
    origins, directions = generate_rays(camera.c2w, camera.intrinsics, pixels,
                                        convention=camera.convention)
    if scale_mat is not None:
        inverse = torch.from_numpy(np.linalg.inv(scale_mat))
        origins = origins @ inverse[:3, :3].T + inverse[:3, 3]
        directions = directions @ inverse[:3, :3].T
    return origins, directions / directions.norm(dim=-1, keepdim=True)


def pixel_grid(n_cams, size, per_side):
    ticks = torch.linspace(0, size - 1, per_side).round().long()
    return torch.cartesian_prod(torch.arange(n_cams), ticks, ticks)


# ----------------------------------------------------------------------------- formats

def test_both_formats_load(blender, neus):
    assert {k: len(v) for k, v in blender.splits.items()} == {"train": 8, "val": 2, "test": 2}
    assert blender.split("train").images.shape == (8, RESOLUTION, RESOLUTION, 3)
    assert blender.background == (1.0, 1.0, 1.0) and blender.bounds == "fixed"
    assert len(neus.split("train")) == 8 and neus.split("test").names == ["000.png"]
    assert neus.bounds == "sphere" and neus.split("train").cameras.convention == "opencv"
    np.testing.assert_allclose(neus.scale_mat.numpy(), SCALE_MAT, rtol=1e-6)
    coverage = blender.split("train").masks.mean((1, 2))
    assert ((coverage > 0.1) & (coverage < 0.8)).all()  # the object is in view, not clipped


def test_world_cameras_agree(blender, neus):
    world, normalised = blender.split("train").cameras, neus.split("train").cameras
    positions = normalised.c2w[:, :, 3].double() @ torch.from_numpy(SCALE_MAT[:3, :3]).T \
        + torch.from_numpy(SCALE_MAT[:3, 3])
    torch.testing.assert_close(positions.float(), world.c2w[:, :, 3], atol=1e-4, rtol=0)
    torch.testing.assert_close(normalised.c2w[:, :, :3] * torch.tensor([1.0, -1.0, -1.0]),
                               world.c2w[:, :, :3], atol=1e-5, rtol=0)
    torch.testing.assert_close(normalised.intrinsics, world.intrinsics, atol=1e-3, rtol=0)
    distances = normalised.c2w[:, :, 3].norm(dim=-1)
    torch.testing.assert_close(distances, torch.full_like(distances, CAMERA_DISTANCE))


def test_same_pixel_hits_the_same_surface_point(blender, neus):
    pixels = pixel_grid(8, RESOLUTION, 7)
    from_blender = rays_in_normalised_frame(blender.split("train").cameras, pixels, SCALE_MAT)
    from_neus = rays_in_normalised_frame(neus.split("train").cameras, pixels)
    t_blender, hit_blender = sphere_trace(SHAPES, *from_blender)
    t_neus, hit_neus = sphere_trace(SHAPES, *from_neus)
    assert (hit_blender == hit_neus).float().mean() >= 0.99  # a grazing ray may differ
    both = hit_blender & hit_neus
    assert both.sum() > 0.1 * len(pixels)
    points_blender = from_blender[0] + t_blender[:, None] * from_blender[1]
    points_neus = from_neus[0] + t_neus[:, None] * from_neus[1]
    assert (points_blender[both] - points_neus[both]).norm(dim=-1).max() < 1e-4


def test_centre_pixel_ray_passes_through_the_look_at_point(blender, neus):
    centre = torch.tensor([[i, RESOLUTION // 2, RESOLUTION // 2] for i in range(8)])
    for camera, scale_mat in ((blender.split("train").cameras, SCALE_MAT),
                              (neus.split("train").cameras, None)):
        origins, directions = rays_in_normalised_frame(camera, centre, scale_mat)
        closest = origins - (origins * directions).sum(-1, keepdim=True) * directions
        assert closest.norm(dim=-1).max() < 1e-5


def test_stored_images_and_masks_reproduce(paths, blender, neus):
    val = blender.split("val")
    colour, alpha = render_views(SHAPES, val.cameras, scale_mat=SCALE_MAT)
    over_white = (colour + (1 - alpha[..., None])) * 255
    error = (val.images.double() - over_white).abs()
    assert (error <= 1.0).double().mean() > 0.99 and error.mean() < 0.5
    assert ((val.masks.double() - alpha).abs() <= 0.5 / 255 + 1e-6).double().mean() > 0.99
    raw = iio.imread(paths["blender"] / "val" / "r_1.png")
    np.testing.assert_array_equal(val.masks[1].numpy(), raw[..., 3] / np.float32(255))

    train = neus.split("train")[:3]
    colour, alpha = render_views(SHAPES, train.cameras)
    over_background = (colour + torch.tensor(NEUS_BACKGROUND) * (1 - alpha[..., None])) * 255
    error = (train.images.double() - over_background).abs()
    assert (error <= 1.0).double().mean() > 0.99 and error.mean() < 0.5
    torch.testing.assert_close(train.masks, blender.split("train").masks[:3], atol=1e-6, rtol=0)


def test_held_out_views_are_new_directions(blender):
    train = blender.split("train").cameras.c2w[:, :, 2]
    for split in ("val", "test"):
        held_out = blender.split(split).cameras.c2w[:, :, 2]
        cosines = held_out @ train.T
        assert cosines.max() < np.cos(np.radians(1.0))


# ----------------------------------------------------------------------------- analytic surface

def test_sdf_gradient_has_unit_length_outside():
    generator = torch.Generator().manual_seed(1)
    points = torch.rand(20000, 3, generator=generator, dtype=torch.float64) * 2 - 1
    distances = SHAPES.primitive_sdfs(points).sort(-1).values
    # Away from the surface and from ties between primitives (where the union has creases).
    points = points[(distances[:, 0] > 1e-3) & (distances[:, 1] - distances[:, 0] > 1e-3)]
    h = 1e-6
    gradient = torch.stack([(SHAPES.sdf(points + h * e) - SHAPES.sdf(points - h * e)) / (2 * h)
                            for e in torch.eye(3, dtype=torch.float64)], -1)
    assert len(points) > 5000
    assert (gradient.norm(dim=-1) - 1).abs().max() < 1e-5


def test_sdf_matches_distance_to_dense_surface_samples():
    generator = torch.Generator().manual_seed(2)
    cloud = SHAPES.surface_points(100_000, generator)
    queries = torch.rand(300, 3, generator=generator, dtype=torch.float64) * 1.6 - 0.8
    nearest = torch.cdist(queries, cloud).min(-1).values
    sdf = SHAPES.sdf(queries)
    assert (sdf.abs() <= nearest + 1e-9).all()  # never more than the true distance
    outside = sdf > 0
    assert outside.sum() > 150 and (~outside).sum() > 10
    assert (nearest[outside] - sdf[outside]).max() < 0.01  # exact outside, up to sample spacing
    assert SHAPES.sdf(torch.tensor([[0.0, 0.0, -0.3], [0.0, 0.0, 0.95]],
                                   dtype=torch.float64)).sign().tolist() == [-1.0, 1.0]


def test_sphere_tracing_finds_the_first_surface_crossing(blender):
    pixels = pixel_grid(2, RESOLUTION, RESOLUTION)
    origins, directions = rays_in_normalised_frame(blender.split("train").cameras[:2], pixels,
                                                   SCALE_MAT)
    t, hit = sphere_trace(SHAPES, origins, directions)
    hit_sdf = SHAPES.sdf(origins[hit] + t[hit, None] * directions[hit])
    assert hit.sum() > 100 and (hit_sdf.abs() < 1e-4).all()
    # A dense march finds no crossing before the hit, and none at all along the misses.
    near, far, _ = near_far_sphere(origins, directions, 1.0, mode="exact")
    fractions = torch.linspace(0, 1, 800, dtype=torch.float64)
    end = torch.where(hit, t, far)
    steps = near[:, None] + (end - near)[:, None] * fractions
    marched = SHAPES.sdf((origins[:, None] + steps[..., None] * directions[:, None])
                         .reshape(-1, 3)).reshape(steps.shape)
    assert marched[hit, :-1].min() > 0
    assert marched[~hit].min() > -1e-3


def test_surface_points_lie_on_the_surface_uniformly():
    points = SHAPES.surface_points(40_000, torch.Generator().manual_seed(4))
    assert points.shape == (40_000, 3) and SHAPES.sdf(points).abs().max() < 1e-9
    assert torch.equal(points[:10], SHAPES.surface_points(10, torch.Generator().manual_seed(4)))
    on = SHAPES.primitive_sdfs(points).argmin(-1)
    assert (torch.bincount(on, minlength=4) > 1000).all()
    ball = points[on == 1]
    centre = torch.tensor(SHAPES.ball_center, dtype=torch.float64)
    torch.testing.assert_close(SHAPES.normals(ball), (ball - centre) / SHAPES.ball_radius)
    # Archimedes: uniform points on a sphere are uniform in height. The ball shows from the
    # pedestal's top up to its pole.
    pedestal_top = SHAPES.box_center[2] + SHAPES.box_half_size[2]
    height = ball[:, 2] - centre[2]
    assert height.min() > pedestal_top - centre[2] - 1e-6
    expected = SHAPES.ball_radius / (SHAPES.ball_radius - (pedestal_top - centre[2]))
    assert abs((height > 0).double().mean().item() - expected) < 0.025


def test_surface_file_and_record(paths):
    with np.load(paths["surface"]) as surface:
        points = torch.from_numpy(surface["points"]).double()
        np.testing.assert_array_equal(surface["scale_mat"], SCALE_MAT)
    assert len(points) == 20_000 and SHAPES.sdf(points).abs().max() < 1e-5
    record = json.loads(paths["scene"].read_text())
    assert record["params"]["resolution"] == RESOLUTION and record["params"]["seed"] == 3
    assert all((paths["root"] / name).is_file() for name in record["files"])


# ----------------------------------------------------------------------------- cache

def test_cache_skips_regeneration_until_parameters_or_files_change(tmp_path):
    options = dict(resolution=16, n_train=3, n_val=1, n_test=1)
    paths = write_builtin_scene(tmp_path, **options)
    image = paths["blender"] / "train" / "r_0.png"
    stamps = image.stat().st_mtime_ns, paths["scene"].stat().st_mtime_ns
    assert write_builtin_scene(tmp_path, **options) == paths
    assert (image.stat().st_mtime_ns, paths["scene"].stat().st_mtime_ns) == stamps
    image.unlink()
    write_builtin_scene(tmp_path, **options)
    assert image.is_file()
    write_builtin_scene(tmp_path, **options, seed=5)
    assert json.loads(paths["scene"].read_text())["params"]["seed"] == 5


def test_builtin_scene_defaults_use_the_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTFIELD_CACHE", str(tmp_path))
    scene = builtin_scene()
    assert scene.name == "builtin" and scene.kind == "blender"
    assert {k: len(v) for k, v in scene.splits.items()} == {"train": 48, "val": 8, "test": 8}
    assert scene.split("train").images.shape[1:] == (64, 64, 3)
    (record,) = (tmp_path / "builtin").glob("*/scene.json")
    stamp = record.stat().st_mtime_ns
    neus = builtin_scene(kind="neus")
    assert neus.kind == "neus" and len(neus.split("train")) == 48
    assert record.stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="kind"):
        builtin_scene(kind="llff")
