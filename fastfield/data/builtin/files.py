"""The built-in scene's files: four textured primitives with an exact SDF (shapes.py), rendered
by fastfield itself (renderer.py), written in Blender and NeuS format into a cache folder and
loaded back through the real loaders.

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
from typing import Callable

import imageio.v3 as iio
import numpy as np
import torch
from torch import Tensor

from ...core.atomic import atomic_path
from ...core.checks import int_at_least
from ...core.images import to_uint8
from ..blender import load_blender
from ..camera import Camera
from ..neus import load_neus
from ..paths import homogeneous, pose_from_axes, to_convention
from .renderer import render_views
from .shapes import AMBIENT, LIGHT_DIRECTION, BuiltinShapes

GENERATOR_VERSION = 1  # bump when the shapes, shading or cameras change: invalidates caches
SCALE_MAT = np.array([[1.7, 0.0, 0.0, 0.3],
                      [0.0, 1.7, 0.0, -0.2],
                      [0.0, 0.0, 1.7, 0.5],
                      [0.0, 0.0, 0.0, 1.0]])
CAMERA_DISTANCE = 2.5        # normalised units; 4.25 in world units, so Blender near/far 2/6 fit
CAMERA_ANGLE_X = 0.65        # radians: the objects (<= 0.8 from the origin) just fit the view
CAMERA_Z_RANGE = (-0.3, 0.95)  # view directions: mostly the upper hemisphere, some below
NEUS_BACKGROUND = (0.25, 0.28, 0.32)


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
        int_at_least(None, name, value, low)
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
        cameras = Camera.from_numpy(c2w, intrinsics, resolution, resolution, "opengl",
                                    torch.float64)
        colour, alpha = render_views(shapes, cameras)
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
