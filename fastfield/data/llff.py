"""LLFF forward-facing scenes, loaded as nerf-pytorch's ``load_llff_data`` + ``run_nerf`` do.

Written from the math: poses_bounds.npy rows are a 3x5 matrix (camera-to-world in [down, right,
back] axis order | [H, W, focal] at full resolution) followed by the near/far depth bounds.
"""
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .scene import Scene, Split
from ._io import (list_images, read_images, require_dir, require_downscale, require_file,
                  shrink)
from .camera import Camera
from .paths import homogeneous, normalize, pose_from_axes, spiral_path

SPIRAL_FRAMES, SPIRAL_ROTATIONS, SPIRAL_ZRATE = 120, 2, 0.5
SPHERIFY_FRAMES = 120


def load_llff(path, downscale: int = 8, recenter: bool = True, bd_factor: float = 0.75,
              spherify: bool = False, llffhold: int = 8, ndc: bool = True,
              path_zflat: bool = False) -> Scene:
    """Load ``path/poses_bounds.npy`` and its images (sorted by name) at 1/``downscale`` of the
    full resolution.

    Steps (nerf-pytorch): axes reordered to [right, up, back] (OpenGL); translations and depth
    bounds scaled by 1 / (min bound * bd_factor); poses recentred on their average pose;
    optionally spherified. H, W come from the images, focal = hwf focal / downscale (checked
    against the image size), principal point (W/2, H/2).

    Args:
        downscale: the release's ``images_{downscale}/`` folder (``images/`` for 1; nerf-pytorch's
            ``factor``, 8 by default). Without that folder, the images of the nearest finer
            folder whose factor divides it are shrunk on load (``_io.shrink``), as
            nerf-pytorch's ``_minify`` would have written them.
        llffhold: test = val = images 0, llffhold, 2 llffhold, ...; train = the rest. With 0, the
            test view is the one closest to the average pose.
        ndc: near/far 0/1 and ``Scene.ndc`` = {"H", "W", "focal", "near": 1.0}; without,
            near/far = 0.9 min bound / max bound (after scaling).
        path_zflat: flat spiral (60 frames, 1 rotation) pushed back by 0.1 close depth.
    Returns:
        Scene with the nerf-pytorch spiral (120 frames, 2 rotations) or, with ``spherify``, the
        spherified circle as ``render_path``.
    """
    path = require_dir(path, "an LLFF scene with poses_bounds.npy")
    factor = require_downscale(downscale)
    poses_path = require_file(path / "poses_bounds.npy", "the LLFF poses and depth bounds")
    raw = _read_poses_bounds(poses_path)
    files, images = _read_downscaled_images(path, factor, poses_path.name)
    if len(files) != len(raw):
        raise ValueError(f"{files[0].parent}: {len(files)} images but {poses_path} holds "
                         f"{len(raw)} poses")
    height, width = images.shape[1:3]

    poses = raw[:, :15].reshape(-1, 3, 5)
    full_height, full_width, full_focal = poses[0, :, 4]
    if abs(full_height / factor - height) > 1 or abs(full_width / factor - width) > 1:
        raise ValueError(f"{files[0]}: image is {height}x{width} but {poses_path} gives "
                         f"{full_height:g}x{full_width:g} at full size, i.e. "
                         f"{full_height / factor:g}x{full_width / factor:g} at downscale "
                         f"{factor}")
    focal = full_focal / factor
    intrinsics = (focal, focal, 0.5 * width, 0.5 * height)

    # [down, right, back, position] -> [right, up, back, position]
    c2w = np.concatenate([poses[:, :, 1:2], -poses[:, :, 0:1], poses[:, :, 2:4]], axis=2)
    c2w, bounds = forward_facing_frame(c2w, raw[:, 15:], bd_factor, recenter)
    if spherify:
        c2w, bounds, render_c2w = spherify_poses(c2w, bounds)
        render_path = Camera.from_numpy(render_c2w, intrinsics, height, width, "opengl")
    else:
        render_path = spiral_render_path(c2w, bounds, intrinsics, height, width, path_zflat)

    views = Split(torch.from_numpy(images),
                  Camera.from_numpy(c2w, intrinsics, height, width, "opengl"), None,
                  [f.name for f in files])
    if llffhold > 0:
        test_ids = torch.arange(0, len(views), llffhold)
    else:
        distances = np.sum((c2w[:, :, 3] - average_pose(c2w)[:, 3]) ** 2, axis=1)
        test_ids = torch.tensor([int(np.argmin(distances))])
    is_test = torch.zeros(len(views), dtype=torch.bool)
    is_test[test_ids] = True
    train, test = views[~is_test], views[test_ids]
    near, far, ndc_params = ray_bounds(bounds, ndc, height, width, focal)
    return Scene(name=path.name, kind="llff", splits={"train": train, "val": test, "test": test},
                 near=near, far=far, bounds="fixed", background=None, ndc=ndc_params,
                 scale_mat=None, render_path=render_path)


def _read_downscaled_images(path: Path, factor: int, poses_name: str):
    """(files, uint8 [n, H, W, 3]) of ``images_{factor}/``, or of the finest-but-nearest folder
    ``images_{m}/`` (m dividing factor; ``images/`` is m = 1) shrunk by factor / m."""
    def folder(m):
        return path / ("images" if m == 1 else f"images_{m}")

    present = [m for m in range(factor, 0, -1) if factor % m == 0 and folder(m).is_dir()]
    if not present:
        raise ValueError(f"{folder(factor)}: folder not found (expected the images of "
                         f"{poses_name} downsampled by {factor}, or a finer images_N/ folder "
                         f"whose N divides {factor})")
    files = list_images(folder(present[0]), f"the images of {poses_name}")
    images = np.stack([shrink(image, factor // present[0], files[0])
                       for image in read_images(files, "rgb")])
    return files, images


def forward_facing_frame(c2w: np.ndarray, bounds: np.ndarray, bd_factor: Optional[float] = 0.75,
                         recenter: bool = True):
    """nerf-pytorch's frame for forward-facing scenes: positions and depth bounds scaled by
    1 / (min bound * bd_factor), so the closest depth becomes 1 / bd_factor (NDC's near plane
    is at 1), then the poses recentred so the average pose is the identity.

    Args:
        c2w: [n, 3, 4] OpenGL. bounds: [n, 2] (or [1, 2]) near/far depths.
    Returns:
        (c2w [n, 3, 4], bounds [n, 2]), new arrays.
    """
    c2w, bounds = np.array(c2w, dtype=np.float64), np.array(bounds, dtype=np.float64)
    scale = 1.0 if bd_factor is None else 1.0 / (bounds.min() * bd_factor)
    c2w[:, :, 3] *= scale
    bounds *= scale
    if recenter:
        c2w = _apply(np.linalg.inv(homogeneous(average_pose(c2w))), c2w)
    return c2w, bounds


def ray_bounds(bounds: np.ndarray, ndc: bool, height: int, width: int, focal: float):
    """(near, far, Scene.ndc) of a forward-facing scene: NDC 0/1 with near plane 1, else
    nerf-pytorch's 0.9 x closest depth and the farthest depth."""
    if ndc:
        return 0.0, 1.0, {"H": int(height), "W": int(width), "focal": float(focal), "near": 1.0}
    return float(bounds.min() * 0.9), float(bounds.max()), None


def _read_poses_bounds(poses_path: Path) -> np.ndarray:
    """[n, 17] float64 rows of poses_bounds.npy."""
    try:
        raw = np.load(poses_path, allow_pickle=False)
    except Exception as error:  # numpy raises ValueError, OSError, EOFError, ... for bad files
        raise ValueError(f"{poses_path}: not a readable .npy file ({error})") from None
    if raw.ndim != 2 or raw.shape[0] == 0 or raw.shape[1] != 17:
        raise ValueError(f"{poses_path}: expected an [n_images, 17] array (3x5 pose | hwf "
                         f"flattened, near, far), got shape {list(raw.shape)}")
    raw = raw.astype(np.float64)
    if not np.isfinite(raw).all() or (raw[:, 15:] <= 0).any():
        raise ValueError(f"{poses_path}: poses must be finite and depth bounds positive")
    return raw


def _apply(transform: np.ndarray, c2w: np.ndarray) -> np.ndarray:
    """``transform`` [4, 4] @ every pose [n, 3, 4] -> [n, 3, 4]."""
    return (transform @ homogeneous(c2w))[:, :3, :]


def average_pose(c2w: np.ndarray) -> np.ndarray:
    """nerf-pytorch ``poses_avg``: [3, 4] at the mean position, looking along the summed back
    axes, with y near the summed up axes. c2w: [n, 3, 4]."""
    return pose_from_axes(c2w[:, :, 2].sum(0), c2w[:, :, 1].sum(0), c2w[:, :, 3].mean(0))


def spiral_render_path(c2w, bounds, intrinsics, height, width,
                       path_zflat: bool = False) -> Camera:
    """nerf-pytorch's spiral render path around the average pose."""
    average = average_pose(c2w)
    up = normalize(c2w[:, :, 1].sum(0))
    close_depth, inf_depth = bounds.min() * 0.9, bounds.max() * 5.0
    # Focus where the disparity is 3/4 of the way from the far (infinite) to the close depth.
    dt = 0.75
    focus_depth = 1.0 / ((1.0 - dt) / close_depth + dt / inf_depth)
    radii = np.percentile(np.abs(c2w[:, :, 3]), 90, axis=0)
    n_frames, n_rotations = SPIRAL_FRAMES, SPIRAL_ROTATIONS
    if path_zflat:
        average[:, 3] += -close_depth * 0.1 * average[:, 2]
        radii[2] = 0.0
        n_frames, n_rotations = SPIRAL_FRAMES // 2, 1
    return spiral_path(average, up, radii, focus_depth, n_frames, intrinsics, height, width,
                       n_rotations=n_rotations, zrate=SPIRAL_ZRATE)


def spherify_poses(c2w: np.ndarray, bounds: np.ndarray):
    """nerf-pytorch ``spherify_poses`` for inward-facing captures.

    Moves the point closest to all optical axes to the origin, turns the mean camera offset into
    +z, scales the cameras' RMS distance to 1.

    Args:
        c2w: [n, 3, 4]. bounds: [n, 2].
    Returns:
        (c2w [n, 3, 4], bounds [n, 2] scaled, render poses [120, 3, 4] on a circle at the cameras'
        mean height, looking at the origin).
    """
    axes, origins = c2w[:, :, 2], c2w[:, :, 3]
    # Least-squares point nearest every axis line: sum_i (I - d d^T)(p - o_i) = 0.
    projectors = np.eye(3) - axes[:, :, None] * axes[:, None, :]
    offsets = -projectors @ origins[:, :, None]
    lhs = (projectors.transpose(0, 2, 1) @ projectors).mean(0)
    center = -np.linalg.inv(lhs) @ offsets.mean(0)[:, 0]

    up = normalize((origins - center).mean(0))
    x_axis = normalize(np.cross([0.1, 0.2, 0.3], up))
    y_axis = normalize(np.cross(up, x_axis))
    frame = np.stack([x_axis, y_axis, up, center], axis=1)
    c2w = _apply(np.linalg.inv(homogeneous(frame)), c2w)
    radius = np.sqrt(np.mean(np.sum(c2w[:, :, 3] ** 2, axis=1)))
    c2w[:, :, 3] /= radius
    bounds = bounds / radius

    height = c2w[:, 2, 3].mean()
    circle_radius = np.sqrt(1.0 - height ** 2)
    theta = np.linspace(0.0, 2.0 * np.pi, SPHERIFY_FRAMES)[:, None]
    positions = np.concatenate([circle_radius * np.cos(theta), circle_radius * np.sin(theta),
                                np.full_like(theta, height)], axis=1)
    render_c2w = pose_from_axes(positions, (0.0, 0.0, 1.0), positions)
    return c2w, bounds, render_c2w
