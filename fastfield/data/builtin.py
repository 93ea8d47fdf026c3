"""The built-in scene: four textured primitives with an exact SDF, rendered by fastfield itself.

It is the default scene of the README's main command and of CI: generated in a few seconds
with no download, written in both Blender and NeuS format, and loaded back through the real
loaders. Its surface is known exactly, which is what Chamfer distances are measured against.

Frames: the shapes live in the *normalised* frame (inside the unit sphere, z up). The
*world* frame of both written formats is ``SCALE_MAT @ normalised``: the Blender cameras are
world cameras, and the NeuS files hold world_mat_i = K [R | t] (world -> pixel) with
scale_mat_i = SCALE_MAT, so ``load_neus`` recovers cameras in the normalised frame.
"""
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Callable, Optional, Tuple

import imageio.v3 as iio
import numpy as np
import torch
from torch import Tensor

from ..core.atomic import atomic_path
from ..reference.rays import generate_rays, near_far_sphere
from ._io import to_uint8
from .blender import load_blender
from .camera import Camera
from .neus import load_neus
from .paths import homogeneous, pose_from_axes, to_convention

GENERATOR_VERSION = 1  # bump when the shapes, shading or cameras change: invalidates caches
SCALE_MAT = np.array([[1.7, 0.0, 0.0, 0.3],
                      [0.0, 1.7, 0.0, -0.2],
                      [0.0, 0.0, 1.7, 0.5],
                      [0.0, 0.0, 0.0, 1.0]])
CAMERA_DISTANCE = 2.5        # normalised units; 4.25 in world units, so Blender near/far 2/6 fit
CAMERA_ANGLE_X = 0.65        # radians: the objects (<= 0.8 from the origin) just fit the view
CAMERA_Z_RANGE = (-0.3, 0.95)  # view directions: mostly the upper hemisphere, some below
BOUNDING_RADIUS = 0.85       # every primitive lies inside this sphere (<= 0.8 from the origin)
LIGHT_DIRECTION = (0.5, -0.4, 0.77)
AMBIENT = 0.35
NEUS_BACKGROUND = (0.25, 0.28, 0.32)


class BuiltinShapes:
    """A rounded-box pedestal, a striped ball, a tilted ring (torus) and a pillar (capsule).

    All methods take and return tensors in the normalised frame, in the dtype of the input
    (use float64 for accuracy). The union's SDF is exact outside the objects and a lower bound
    of the distance inside (the min of exact SDFs), so sphere tracing never overshoots.
    """

    def __init__(self):
        self.box_center = (0.0, 0.0, -0.3)
        self.box_half_size = (0.45, 0.45, 0.1)
        self.box_rounding = 0.05
        self.ball_center, self.ball_radius = (-0.15, -0.12, 0.0), 0.25
        self.ring_center, self.ring_major, self.ring_minor = (0.2, 0.2, -0.02), 0.2, 0.07
        tilt = math.radians(65.0)  # ring axis tilted from z towards -y; it dips into the box
        # Columns: the ring's local x, y and axis in the normalised frame.
        self.ring_frame = ((1.0, 0.0, 0.0),
                           (0.0, math.cos(tilt), -math.sin(tilt)),
                           (0.0, math.sin(tilt), math.cos(tilt)))
        self.pillar_ends = ((0.22, -0.25, -0.2), (0.22, -0.25, 0.3))
        self.pillar_radius = 0.09

    def describe(self) -> dict:
        """The primitives and their parameters (normalised frame), for scene.json."""
        return {
            "frame": "normalised; world = scale_mat @ [x, 1]",
            "union_of": [
                {"name": "pedestal", "type": "rounded_box", "center": self.box_center,
                 "half_size": self.box_half_size, "rounding": self.box_rounding},
                {"name": "ball", "type": "sphere", "center": self.ball_center,
                 "radius": self.ball_radius},
                {"name": "ring", "type": "torus", "center": self.ring_center,
                 "major_radius": self.ring_major, "minor_radius": self.ring_minor,
                 "axis": [row[2] for row in self.ring_frame]},
                {"name": "pillar", "type": "capsule", "ends": self.pillar_ends,
                 "radius": self.pillar_radius},
            ]}

    def _const(self, value, like: Tensor) -> Tensor:
        return torch.as_tensor(value, dtype=like.dtype, device=like.device)

    def _ring_local(self, points: Tensor) -> Tensor:
        return (points - self._const(self.ring_center, points)) @ self._const(self.ring_frame,
                                                                               points)

    def primitive_sdfs(self, points: Tensor) -> Tensor:
        """[n, 3] -> [n, 4] exact signed distance to each primitive."""
        q = (points - self._const(self.box_center, points)).abs() \
            - self._const(self.box_half_size, points) + self.box_rounding
        box = q.clamp_min(0).norm(dim=-1) + q.amax(-1).clamp_max(0) - self.box_rounding
        ball = (points - self._const(self.ball_center, points)).norm(dim=-1) - self.ball_radius
        local = self._ring_local(points)
        ring = torch.stack([local[:, :2].norm(dim=-1) - self.ring_major, local[:, 2]], -1)
        ring = ring.norm(dim=-1) - self.ring_minor
        start, end = self._const(self.pillar_ends, points)
        along = ((points - start) @ (end - start) / (end - start).dot(end - start)).clamp(0, 1)
        pillar = (points - start - along[:, None] * (end - start)).norm(dim=-1) \
            - self.pillar_radius
        return torch.stack([box, ball, ring, pillar], -1)

    def sdf(self, points: Tensor) -> Tensor:
        """[n, 3] -> [n] signed distance to the union (negative inside)."""
        return self.primitive_sdfs(points).min(-1).values

    def normals(self, points: Tensor) -> Tensor:
        """[n, 3] -> [n, 3] unit SDF gradient (outward normal on the surface)."""
        with torch.enable_grad():
            points = points.detach().requires_grad_(True)
            (gradient,) = torch.autograd.grad(self.sdf(points).sum(), points)
        return gradient / gradient.norm(dim=-1, keepdim=True)

    def albedo(self, points: Tensor) -> Tensor:
        """[n, 3] surface points -> [n, 3] colour in [0, 1] of the nearest primitive: a checker
        pedestal, a striped ball, a ring whose green varies around it, a banded pillar."""
        nearest = self.primitive_sdfs(points).argmin(-1)
        cells = torch.floor(points / 0.15).sum(-1).remainder(2)[:, None]
        pedestal = torch.lerp(self._const((0.2, 0.35, 0.8), points),
                              self._const((0.88, 0.9, 0.95), points), cells)
        stripes = torch.floor(points[:, 2:] / 0.08).remainder(2)
        ball = torch.lerp(self._const((0.85, 0.2, 0.15), points),
                          self._const((0.98, 0.75, 0.3), points), stripes)
        local = self._ring_local(points)
        angle = torch.atan2(local[:, 1], local[:, 0])
        ring = torch.stack([torch.full_like(angle, 0.15), 0.55 + 0.3 * torch.cos(4 * angle),
                            0.35 + 0.15 * torch.sin(4 * angle)], -1)
        wave = 0.5 + 0.5 * torch.sin(points[:, 2] * 25.0)
        pillar = torch.stack([0.95 - 0.2 * wave, 0.85 - 0.35 * wave, torch.full_like(wave, 0.2)],
                             -1)
        colours = torch.stack([pedestal, ball, ring, pillar], 1)  # [n, 4, 3]
        return colours[torch.arange(len(points)), nearest]

    def shade(self, points: Tensor) -> Tensor:
        """[n, 3] surface points -> [n, 3] Lambertian colour under the fixed light + ambient."""
        light = self._const(LIGHT_DIRECTION, points)
        cosine = (self.normals(points) @ (light / light.norm())).clamp_min(0)
        return self.albedo(points) * (AMBIENT + (1 - AMBIENT) * cosine[:, None])

    def sphere_trace(self, origins: Tensor, directions: Tensor, tolerance: float = 1e-6,
                     max_steps: int = 300) -> Tuple[Tensor, Tensor]:
        """First hit of rays with the surface.

        Args:
            origins, directions: [n, 3]; directions of unit length.
        Returns:
            (t [n], hit [n] bool): hits satisfy 0 <= sdf(o + t d) < tolerance. Rays that graze
            the surface without converging in ``max_steps`` count as misses.
        """
        near, far, inside = near_far_sphere(origins, directions, BOUNDING_RADIUS, mode="exact")
        t = near.clone()
        hit = torch.zeros_like(inside)
        active = inside.nonzero()[:, 0]
        for _ in range(max_steps):
            if active.numel() == 0:
                break
            distance = self.sdf(origins[active] + t[active, None] * directions[active])
            converged = distance < tolerance
            hit[active[converged]] = True
            stepped = t[active] + distance
            t[active] = torch.where(converged, t[active], stepped)
            active = active[~converged & (stepped < far[active])]
        return t, hit

    def surface_points(self, n: int, generator: Optional[torch.Generator] = None,
                       dtype: torch.dtype = torch.float64) -> Tensor:
        """[n, 3] points on the union's surface, about uniform over its area.

        Uniform points of a thin band |sdf| < 0.005 are projected onto the surface along the
        normal (one step is exact for an exact SDF); the few that land off the union's surface
        near creases are dropped.
        """
        band, batch, found = 0.005, 1_000_000, []
        on_surface = 1e-9 if dtype == torch.float64 else 1e-5
        while sum(len(p) for p in found) < n:
            points = (torch.rand(batch, 3, generator=generator, dtype=dtype) * 2 - 1) \
                * BOUNDING_RADIUS
            points = points[self.sdf(points).abs() < band]
            for _ in range(3):
                points = points - self.sdf(points)[:, None] * self.normals(points)
            found.append(points[self.sdf(points).abs() < on_surface])
        return torch.cat(found)[:n]

    def render(self, cameras: Camera, scale_mat: Optional[np.ndarray] = None,
               supersample: int = 2, rays_per_chunk: int = 1 << 19) -> Tuple[Tensor, Tensor]:
        """Render ``cameras`` with ``supersample`` x ``supersample`` rays per pixel.

        Pixel (row, col) is centred on the ray that ``generate_rays`` gives with pixel_offset 0
        (the nerf-pytorch / NeuS convention); its sub-rays are spread evenly around it.

        Args:
            cameras: in the frame that ``scale_mat`` [4, 4] maps the normalised frame to
                (None: the normalised frame).
        Returns:
            (premultiplied colour [n, H, W, 3], alpha = covered fraction [n, H, W]), float64.
        """
        cameras = cameras.to(dtype=torch.float64)
        to_normalised = torch.from_numpy(np.eye(4) if scale_mat is None
                                         else np.linalg.inv(scale_mat))
        n, height, width = len(cameras), cameras.height, cameras.width
        grid = torch.stack(torch.meshgrid(torch.arange(n), torch.arange(height),
                                          torch.arange(width), indexing="ij"), -1).reshape(-1, 3)
        offsets = (torch.arange(supersample, dtype=torch.float64) + 0.5) / supersample - 0.5
        offsets = torch.cartesian_prod(offsets, offsets)  # [supersample^2, 2] (dx, dy)
        colour = torch.zeros(len(grid), 3, dtype=torch.float64)
        alpha = torch.zeros(len(grid), dtype=torch.float64)
        # Sub-pixel (dx, dy) = pixel offset 0 with the principal point moved by -(dx, dy).
        shifted = [cameras.intrinsics - torch.cat([shift.new_zeros(2), shift])
                   for shift in offsets]
        pixels_per_chunk = max(1, rays_per_chunk // len(offsets))
        for chunk in torch.split(torch.arange(len(grid)), pixels_per_chunk):
            rays = [generate_rays(cameras.c2w, intrinsics, grid[chunk],
                                  convention=cameras.convention) for intrinsics in shifted]
            origins = torch.cat([r.origins for r in rays]) @ to_normalised[:3, :3].T \
                + to_normalised[:3, 3]
            directions = torch.cat([r.directions for r in rays]) @ to_normalised[:3, :3].T
            directions = directions / directions.norm(dim=-1, keepdim=True)
            t, hit = self.sphere_trace(origins, directions)
            pixel = chunk.repeat(len(offsets))[hit]
            colour.index_add_(0, pixel, self.shade(origins[hit] + t[hit, None] * directions[hit]))
            alpha.index_add_(0, pixel, torch.ones(len(pixel), dtype=torch.float64))
        return (colour / len(offsets)).reshape(n, height, width, 3), \
            (alpha / len(offsets)).reshape(n, height, width)


# ----------------------------------------------------------------------------- files

def _view_directions(n: int, generator: torch.Generator, fibonacci: bool) -> np.ndarray:
    """[n, 3] unit directions with z in CAMERA_Z_RANGE: a Fibonacci lattice (even coverage,
    random twist) or uniformly random ones (held-out views)."""
    z_low, z_high = CAMERA_Z_RANGE
    if fibonacci:
        twist = float(torch.rand((), generator=generator, dtype=torch.float64)) * 2 * math.pi
        k = np.arange(n)
        z = z_high - (z_high - z_low) * (k + 0.5) / n
        azimuth = twist + k * math.pi * (3.0 - math.sqrt(5.0))  # golden angle
    else:
        u = torch.rand(n, 2, generator=generator, dtype=torch.float64).numpy()
        z = z_low + (z_high - z_low) * u[:, 0]
        azimuth = 2 * math.pi * u[:, 1]
    ring = np.sqrt(1.0 - z ** 2)
    return np.stack([ring * np.cos(azimuth), ring * np.sin(azimuth), z], -1)


class _FileWriter:
    """Writes files under ``root`` and records their paths relative to it.

    Each file goes through a temporary file in the same folder, so that a reader (or a
    concurrent generator) never sees a half-written file.
    """

    def __init__(self, root: Path):
        self.root, self.files = root, []

    def save(self, relative: str, write: Callable[[Path], None]):
        with atomic_path(self.root / relative) as temporary:
            write(temporary)
        self.files.append(relative)


def _scene_parameters(resolution: int, n_train: int, n_val: int, n_test: int, seed: int) -> dict:
    for name, value, low in (("resolution", resolution, 8), ("n_train", n_train, 1),
                             ("n_val", n_val, 1), ("n_test", n_test, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return {"version": GENERATOR_VERSION, "resolution": resolution, "n_train": n_train,
            "n_val": n_val, "n_test": n_test, "seed": int(seed)}


def write_builtin_scene(root, resolution: int = 64, n_train: int = 48, n_val: int = 8,
                        n_test: int = 8, seed: int = 0) -> dict:
    """Generate the built-in scene into ``root`` (skipped when ``root/scene.json`` records the
    same parameters and every file it lists exists).

    Writes ``blender/`` (transforms_{train,val,test}.json + RGBA PNGs, transparent background,
    world OpenGL cameras), ``neus/`` (the train views only: cameras_sphere.npz + image/*.png
    over NEUS_BACKGROUND + mask/*.png), ``surface.npz`` (20k surface points and normals,
    normalised frame, and scale_mat) and ``scene.json`` (parameters, shapes, files; last).
    Cameras look at the origin from CAMERA_DISTANCE: Fibonacci directions for train, random
    held-out directions for val and test.

    Returns:
        {"root", "blender", "neus", "surface", "scene"}: paths.
    """
    root = Path(root)
    params = _scene_parameters(resolution, n_train, n_val, n_test, seed)
    paths = {"root": root, "blender": root / "blender", "neus": root / "neus",
             "surface": root / "surface.npz", "scene": root / "scene.json"}
    if paths["scene"].is_file():
        try:
            recorded = json.loads(paths["scene"].read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            recorded = {}
        if recorded.get("params") == params and all(
                (root / name).is_file() for name in recorded.get("files", [None])):
            return paths

    shapes = BuiltinShapes()
    generator = torch.Generator().manual_seed(seed)
    directions = {"train": _view_directions(n_train, generator, fibonacci=True),
                  "val": _view_directions(n_val, generator, fibonacci=False),
                  "test": _view_directions(n_test, generator, fibonacci=False)}
    focal = 0.5 * resolution / math.tan(0.5 * CAMERA_ANGLE_X)
    intrinsics = (focal, focal, 0.5 * resolution, 0.5 * resolution)
    writer = _FileWriter(root)
    for split, views in directions.items():
        c2w = pose_from_axes(views, (0.0, 0.0, 1.0), CAMERA_DISTANCE * views)
        colour, alpha = shapes.render(Camera.from_numpy(c2w, intrinsics, resolution, resolution,
                                                        "opengl", torch.float64))
        # SCALE_MAT is a uniform scale plus a shift: rotations stay, positions move.
        c2w[:, :, 3] = c2w[:, :, 3] @ SCALE_MAT[:3, :3].T + SCALE_MAT[:3, 3]
        _write_blender_split(writer, split, c2w, colour, alpha)
        if split == "train":
            _write_neus(writer, c2w, intrinsics, colour, alpha)

    surface = shapes.surface_points(20_000, generator)
    writer.save("surface.npz", lambda p: np.savez(
        p, points=surface.numpy().astype(np.float32),
        normals=shapes.normals(surface).numpy().astype(np.float32), scale_mat=SCALE_MAT))
    record = {"params": params, "files": list(writer.files), "scale_mat": SCALE_MAT.tolist(),
              "shapes": shapes.describe(), "light_direction": LIGHT_DIRECTION,
              "ambient": AMBIENT, "neus_background": NEUS_BACKGROUND,
              "camera_distance_normalised": CAMERA_DISTANCE}
    writer.save("scene.json", lambda p: p.write_text(json.dumps(record, indent=2)))
    return paths


def _write_blender_split(writer: _FileWriter, split: str, c2w_world: np.ndarray,
                         colour: Tensor, alpha: Tensor):
    """``blender/{split}/r_i.png`` (RGBA, straight alpha) and ``transforms_{split}.json``.

    Args:
        c2w_world: [n, 3, 4] OpenGL. colour: [n, H, W, 3] premultiplied. alpha: [n, H, W].
    """
    straight = torch.where(alpha[..., None] > 0, colour / alpha[..., None].clamp_min(1e-12),
                           torch.zeros_like(colour))
    rgba = to_uint8(torch.cat([straight, alpha[..., None]], -1)).numpy()
    frames = []
    for i, image in enumerate(rgba):
        writer.save(f"blender/{split}/r_{i}.png", lambda p, image=image: iio.imwrite(p, image))
        frames.append({"file_path": f"./{split}/r_{i}",
                       "transform_matrix": homogeneous(c2w_world[i]).tolist()})
    meta = {"camera_angle_x": CAMERA_ANGLE_X, "frames": frames}
    writer.save(f"blender/transforms_{split}.json",
                lambda p: p.write_text(json.dumps(meta, indent=2)))


def _write_neus(writer: _FileWriter, c2w_world: np.ndarray, intrinsics, colour: Tensor,
                alpha: Tensor):
    """``neus/image/*.png`` over NEUS_BACKGROUND, ``neus/mask/*.png`` and cameras_sphere.npz
    with world_mat_i = K [R | t] (world -> pixel) and scale_mat_i = SCALE_MAT.

    Args: as ``_write_blender_split``; intrinsics: (fx, fy, cx, cy).
    """
    over_background = colour + torch.tensor(NEUS_BACKGROUND) * (1 - alpha[..., None])
    images, masks = to_uint8(over_background).numpy(), to_uint8(alpha).numpy()
    fx, fy, cx, cy = intrinsics
    K = np.array([[fx, 0, cx, 0], [0, fy, cy, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    cameras = {}
    for i in range(len(images)):
        writer.save(f"neus/image/{i:03d}.png", lambda p, image=images[i]: iio.imwrite(p, image))
        writer.save(f"neus/mask/{i:03d}.png", lambda p, mask=masks[i]: iio.imwrite(p, mask))
        w2c = np.linalg.inv(homogeneous(to_convention(c2w_world[i], "opencv")))
        cameras[f"world_mat_{i}"] = (K @ w2c).astype(np.float32)
        cameras[f"scale_mat_{i}"] = SCALE_MAT.astype(np.float32)
    writer.save("neus/cameras_sphere.npz", lambda p: np.savez(p, **cameras))


def default_cache_dir(params: dict) -> Path:
    """``$FASTFIELD_CACHE`` (or ~/.cache/fastfield) / builtin / <hash of the parameters>."""
    base = Path(os.environ.get("FASTFIELD_CACHE") or Path.home() / ".cache" / "fastfield")
    digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    return base / "builtin" / digest


def builtin_scene(root=None, kind: str = "blender", resolution: int = 64, n_train: int = 48,
                  n_val: int = 8, n_test: int = 8, seed: int = 0, **options):
    """The built-in scene, generated on first use (cached) and loaded with the real loader.

    Args:
        root: folder to generate into; default ``default_cache_dir``.
        kind: "blender" (``load_blender``, composited on white unless
            ``white_background=False``) or "neus" (``load_neus``; train views only, val/test
            every 8th of them).
        options: passed to the loader.
    Returns:
        Scene named "builtin".
    """
    loaders = {"blender": load_blender, "neus": load_neus}
    if kind not in loaders:
        raise ValueError(f"kind must be 'blender' or 'neus', got {kind!r}")
    params = _scene_parameters(resolution, n_train, n_val, n_test, seed)
    root = Path(root) if root is not None else default_cache_dir(params)
    paths = write_builtin_scene(root, resolution, n_train, n_val, n_test, seed)
    scene = loaders[kind](paths[kind], **options)
    scene.name = "builtin"
    return scene
