"""Mesh extraction, PLY files, surface sampling and the Chamfer distance (fastfield.mesh).

Every expected value comes from geometry known independently of the code under test: an
analytic sphere, the built-in scene's exact SDF and surface samples, a brute-force numpy
Chamfer, a NeuS network's zero set found by bisection along rays.
"""
import math

import numpy as np
import pytest
import torch
from torch import nn

from fastfield.core.atomic import atomic_path
from fastfield.data.builtin import SCALE_MAT, BuiltinShapes
from fastfield.mesh import (chamfer_distance, extract_mesh, outward_fraction, read_ply,
                            sample_mesh_points, vertex_normals, write_ply)
from fastfield.fields import NeuS, NeuSConfig, SDFConfig


class SphereSDF(nn.Module):
    """|x - center| - radius as a module with an ``sdf`` method and a parameter, so that it
    goes through extract_mesh like a NeuS SDF network (device and dtype from parameters)."""

    def __init__(self, center=(0.1, -0.2, 0.05), radius=0.6):
        super().__init__()
        self.center = nn.Parameter(torch.tensor(center))
        self.radius = radius

    def sdf(self, points):
        return (points - self.center).norm(dim=-1) - self.radius


@pytest.fixture(scope="module")
def builtin_surface():
    """[8000, 3] exact surface points of the built-in scene (normalised frame, float64)."""
    return BuiltinShapes().surface_points(8000, torch.Generator().manual_seed(0))


def grid_spacing(resolution, bound=1.0):
    return 2.0 * bound / (resolution - 1)


def euler_characteristic(vertices, faces):
    """V - E + F over the vertices faces use: 2 for a closed surface of genus 0."""
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    n_edges = len(np.unique(edges, axis=0))
    return len(np.unique(faces)) - n_edges + len(faces)


def enclosed_volume(vertices, faces):
    """Signed volume by the divergence theorem: positive when the faces wind outward."""
    v = vertices.astype(np.float64)
    v0, v1, v2 = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
    return float(np.einsum("ij,ij->i", v0, np.cross(v1, v2)).sum() / 6.0)


def affine(points, matrix):
    return points @ matrix[:3, :3].T + matrix[:3, 3]


# ----------------------------------------------------------------------------- extraction

def test_sphere_mesh_lies_on_the_sphere_and_faces_outward():
    sphere = SphereSDF()
    resolution = 40
    vertices, faces = extract_mesh(sphere, resolution=resolution)
    assert vertices.dtype == np.float32 and vertices.shape[1] == 3
    assert faces.dtype == np.int64 and faces.shape[1] == 3
    center = sphere.center.detach().numpy()
    radius_error = np.abs(np.linalg.norm(vertices - center, axis=1) - sphere.radius)
    assert radius_error.max() < 0.05 * grid_spacing(resolution)
    assert euler_characteristic(vertices, faces) == 2
    assert enclosed_volume(vertices, faces) == pytest.approx(4 / 3 * math.pi * 0.6 ** 3, rel=0.01)
    assert outward_fraction(vertices, faces, sphere) == 1.0
    radial = (vertices - center) / np.linalg.norm(vertices - center, axis=1, keepdims=True)
    assert (vertex_normals(vertices, faces) * radial).sum(1).min() > 0.99


def test_level_extracts_an_offset_surface():
    sphere = SphereSDF()
    vertices, _ = extract_mesh(sphere, resolution=40, level=0.1)
    radii = np.linalg.norm(vertices - sphere.center.detach().numpy(), axis=1)
    np.testing.assert_allclose(radii, sphere.radius + 0.1, atol=0.05 * grid_spacing(40))


def test_builtin_scene_mesh_matches_the_exact_surface(builtin_surface):
    shapes = BuiltinShapes()
    resolution = 64
    spacing = grid_spacing(resolution)
    vertices, faces = extract_mesh(shapes, resolution=resolution)
    on_surface = shapes.sdf(torch.from_numpy(vertices).double()).abs()
    assert on_surface.max().item() < 0.5 * spacing
    truth, exact_sample = builtin_surface[:4000], builtin_surface[4000:]
    # Two exact samplings of 4000 points are this far apart: the floor a mesh can reach.
    floor = chamfer_distance(exact_sample, truth)
    measured = chamfer_distance(
        sample_mesh_points(vertices, faces, 4000, torch.Generator().manual_seed(1)), truth)
    for side in ("mean", "a_to_b", "b_to_a"):
        assert measured[side] < floor[side] + 0.05 * spacing, (side, measured, floor)
    assert outward_fraction(vertices, faces, shapes) > 0.99
    assert enclosed_volume(vertices, faces) > 0


def test_scale_mat_maps_the_mesh_to_world_coordinates(builtin_surface):
    shapes = BuiltinShapes()
    resolution = 32
    spacing = grid_spacing(resolution)
    normalised, faces = extract_mesh(shapes, resolution=resolution)
    world, world_faces = extract_mesh(shapes, resolution=resolution,
                                      scale_mat=torch.from_numpy(SCALE_MAT))
    np.testing.assert_array_equal(world_faces, faces)
    np.testing.assert_allclose(world, affine(normalised.astype(np.float64), SCALE_MAT),
                               atol=1e-5)
    # The analytic surface mapped to world: a uniform scale s scales distances by s.
    scale = SCALE_MAT[0, 0]
    world_sdf = scale * shapes.sdf(torch.from_numpy(affine(world.astype(np.float64),
                                                           np.linalg.inv(SCALE_MAT))))
    assert world_sdf.abs().max().item() < 0.5 * scale * spacing
    truth_world = affine(builtin_surface.numpy(), SCALE_MAT)
    mapped = chamfer_distance(world, truth_world)["a_to_b"]
    assert mapped < scale * spacing
    assert chamfer_distance(normalised, truth_world)["a_to_b"] > 5 * mapped  # not mapped
    assert outward_fraction(world, world_faces, shapes, scale_mat=SCALE_MAT) > 0.99


def test_reflecting_scale_mat_keeps_normals_outward():
    sphere = SphereSDF()
    mirror = np.diag([-2.0, 1.0, 1.0, 1.0])
    vertices, faces = extract_mesh(sphere, resolution=24, scale_mat=mirror)
    assert enclosed_volume(vertices, faces) > 0
    assert outward_fraction(vertices, faces, sphere, scale_mat=mirror) == 1.0


@pytest.mark.parametrize("make_sdf", [SphereSDF, BuiltinShapes], ids=["module", "analytic"])
def test_chunk_size_does_not_change_the_mesh(make_sdf):
    sdf = make_sdf()
    resolution = 33
    reference_vertices, reference_faces = extract_mesh(sdf, resolution=resolution)
    for chunk in (997, 4096, resolution ** 3):
        vertices, faces = extract_mesh(sdf, resolution=resolution, chunk=chunk)
        np.testing.assert_array_equal(vertices, reference_vertices)
        np.testing.assert_array_equal(faces, reference_faces)


def test_untrained_neus_mesh_is_its_initial_closed_surface():
    """NeuS's geometric initialisation makes sdf ~ |x| - 0.5: a closed surface around the
    origin, at radius 0.5 give or take what the random hidden layers add per direction."""
    torch.manual_seed(0)
    model = NeuS(NeuSConfig(sdf=SDFConfig(depth=4, width=128, skips=(2,), feature_dim=16),
                            n_outside=0))
    resolution = 40
    spacing = grid_spacing(resolution)
    vertices, faces = extract_mesh(model, resolution=resolution)
    assert euler_characteristic(vertices, faces) == 2
    assert enclosed_volume(vertices, faces) > 0
    assert outward_fraction(vertices, faces, model) == 1.0
    radii = np.linalg.norm(vertices, axis=1)
    assert abs(radii.mean() - 0.5) < 0.1 and radii.min() > 0.25 and radii.max() < 0.8
    with torch.no_grad():
        on_zero_set = model.sdf_network(torch.from_numpy(vertices))[0].abs()
    assert on_zero_set.max().item() < 0.1 * spacing
    # The zero set found independently: bisection along rays from the (inside) origin.
    directions = torch.randn(500, 3, generator=torch.Generator().manual_seed(2))
    directions = directions / directions.norm(dim=1, keepdim=True)
    low, high = torch.zeros(500), torch.ones(500)
    with torch.no_grad():
        assert (model.sdf_network(directions)[0] > 0).all()  # the root lies within radius 1
        for _ in range(20):  # to 1e-6
            middle = (low + high) / 2
            outside = model.sdf_network(middle[:, None] * directions)[0] > 0
            high, low = torch.where(outside, middle, high), torch.where(outside, low, middle)
    surface = (low + high)[:, None] / 2 * directions
    assert chamfer_distance(surface, vertices)["a_to_b"] < 0.5 * spacing


def test_extract_mesh_errors():
    with pytest.raises(ValueError, match="never crosses"):
        extract_mesh(SphereSDF(radius=2.0), resolution=8)
    with pytest.raises(ValueError, match="not finite"):
        extract_mesh(lambda points: points[:, 0] / 0.0, resolution=8)
    with pytest.raises(TypeError, match="SDF model"):
        extract_mesh(nn.Linear(3, 1), resolution=8)
    with pytest.raises(ValueError, match="resolution"):
        extract_mesh(SphereSDF(), resolution=1)
    with pytest.raises(ValueError, match="scale_mat"):
        extract_mesh(SphereSDF(), resolution=8, scale_mat=np.eye(3))


# ----------------------------------------------------------------------------- sampling

def test_sample_mesh_points_is_uniform_over_area():
    # Two triangles of areas 1 and 3 in the z = 0 plane: a quarter of the points on the first.
    vertices = np.array([[0, 0, 0], [2, 0, 0], [0, 1, 0], [3, 0, 0], [6, 0, 0], [3, 2, 0]],
                        dtype=np.float64)
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    n = 20000
    points = sample_mesh_points(vertices, faces, n, torch.Generator().manual_seed(0)).numpy()
    assert points.shape == (n, 3) and np.all(points[:, 2] == 0)
    first = points[:, 0] < 2.5
    assert abs(first.mean() - 0.25) < 4 * math.sqrt(0.25 * 0.75 / n)
    # Inside each triangle: x / 2 + y <= 1 for the first, (x - 3) / 3 + y / 2 <= 1 (x >= 3)
    # for the second.
    assert np.all((points[:, :2] >= 0).all(1))
    assert np.all(points[first, 0] / 2 + points[first, 1] <= 1 + 1e-12)
    rest = points[~first]
    assert np.all(rest[:, 0] >= 3) and np.all((rest[:, 0] - 3) / 3 + rest[:, 1] / 2 <= 1 + 1e-12)
    # Uniform within a triangle: the mean is its centroid.
    np.testing.assert_allclose(points[first, :2].mean(0), [2 / 3, 1 / 3], atol=0.03)
    again = sample_mesh_points(vertices, faces, n, torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_array_equal(points, again)
    with pytest.raises(ValueError, match="no area"):
        sample_mesh_points(vertices[:3], np.array([[0, 0, 1]]), 10)


# ----------------------------------------------------------------------------- Chamfer

def brute_force_chamfer(a, b):
    distance = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    a_to_b, b_to_a = distance.min(1).mean(), distance.min(0).mean()
    return {"mean": (a_to_b + b_to_a) / 2, "a_to_b": a_to_b, "b_to_a": b_to_a}


def test_chamfer_matches_brute_force_in_every_chunking():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 3)), rng.normal(size=(170, 3)) + 0.3
    expected = brute_force_chamfer(a, b)
    for chunk in (1, 64, 4096):
        result = chamfer_distance(a, b, chunk=chunk)
        for side in expected:
            assert result[side] == pytest.approx(expected[side], rel=1e-12)
    swapped = chamfer_distance(torch.from_numpy(b).float(), torch.from_numpy(a).float())
    assert swapped["a_to_b"] == pytest.approx(expected["b_to_a"], rel=1e-6)


def test_chamfer_of_identical_and_translated_clouds():
    grid = np.stack(np.meshgrid(*[np.arange(6.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    assert chamfer_distance(grid, grid, chunk=50) == {"mean": 0.0, "a_to_b": 0.0, "b_to_a": 0.0}
    # Points 1 apart moved by 0.1: each one's nearest neighbour is its own translate.
    shift = 0.1 * np.array([2.0, -1.0, 2.0]) / 3.0
    result = chamfer_distance(grid, grid + shift, chunk=50)
    for side in result:
        assert result[side] == pytest.approx(0.1, rel=1e-12)


def test_chamfer_rejects_bad_clouds():
    with pytest.raises(ValueError, match="non-empty"):
        chamfer_distance(np.zeros((0, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"\[n, 3\]"):
        chamfer_distance(np.zeros((4, 2)), np.zeros((4, 3)))


# ----------------------------------------------------------------------------- PLY

def parse_ply_header(data: bytes):
    """The header lines and where the binary body starts, as a standard PLY reader sees it."""
    end = data.index(b"end_header\n") + len(b"end_header\n")
    return data[:end].decode("ascii").splitlines(), end


@pytest.mark.parametrize("with_normals", [False, True])
def test_ply_round_trip_and_header(tmp_path, with_normals):
    vertices, faces = extract_mesh(SphereSDF(), resolution=12)
    normals = vertex_normals(vertices, faces) if with_normals else None
    path = write_ply(tmp_path / "mesh.ply", vertices, faces, normals)
    read_vertices, read_faces, read_normals = read_ply(path)
    np.testing.assert_array_equal(read_vertices, vertices)
    np.testing.assert_array_equal(read_faces, faces)
    if with_normals:
        np.testing.assert_array_equal(read_normals, normals)
    else:
        assert read_normals is None

    data = path.read_bytes()
    lines, body = parse_ply_header(data)
    assert lines[0] == "ply" and lines[1] == "format binary_little_endian 1.0"
    properties = ["x", "y", "z"] + (["nx", "ny", "nz"] if with_normals else [])
    expected = [f"element vertex {len(vertices)}", *[f"property float {p}" for p in properties],
                f"element face {len(faces)}", "property list uchar int vertex_indices",
                "end_header"]
    assert [line for line in lines[2:] if not line.startswith("comment")] == expected
    # float32 per property per vertex; per face a uchar count (3) and three int32 indices.
    assert len(data) == body + len(vertices) * 4 * len(properties) + len(faces) * 13
    first_face = np.frombuffer(data, np.dtype("<i4"), count=3,
                               offset=body + len(vertices) * 4 * len(properties) + 1)
    assert data[body + len(vertices) * 4 * len(properties)] == 3
    np.testing.assert_array_equal(first_face, faces[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mesh.ply"]


def test_ply_write_is_atomic(tmp_path):
    path = tmp_path / "mesh.ply"
    write_ply(path, np.zeros((3, 3)), np.array([[0, 1, 2]]))
    before = path.read_bytes()
    with pytest.raises(RuntimeError):
        with atomic_path(path) as temporary:
            temporary.write_bytes(b"half a file")
            raise RuntimeError("interrupted")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["mesh.ply"]
    with pytest.raises(ValueError, match="index vertices"):
        write_ply(path, np.zeros((3, 3)), np.array([[0, 1, 3]]))
    assert path.read_bytes() == before


def test_read_ply_rejects_other_files(tmp_path):
    not_ply = tmp_path / "a.ply"
    not_ply.write_bytes(b"solid cube\n")
    with pytest.raises(ValueError, match="not a PLY"):
        read_ply(not_ply)
    ascii_ply = tmp_path / "b.ply"
    ascii_ply.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 0\nproperty float x\n"
                          b"end_header\n")
    with pytest.raises(ValueError, match="binary_little_endian"):
        read_ply(ascii_ply)
    path = write_ply(tmp_path / "c.ply", np.zeros((3, 3)), np.array([[0, 1, 2]]))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match="truncated"):
        read_ply(path)
