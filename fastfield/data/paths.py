"""Camera paths for videos: an orbit for 360-degree scenes, a spiral for forward-facing ones.

Poses are built in float64 numpy and returned as float32 ``Camera``s.
"""
from typing import Sequence

import numpy as np

from .camera import Camera


def normalize(v: np.ndarray) -> np.ndarray:
    """Unit vectors along the last axis."""
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def pose_from_axes(back: np.ndarray, up: np.ndarray, position: np.ndarray) -> np.ndarray:
    """OpenGL camera-to-world [..., 3, 4] whose +z axis is ``back`` and y axis is near ``up``.

    nerf-pytorch's ``viewmatrix``: x = normalize(up x back), y = normalize(back x x). The camera
    looks down -back. Arguments are [..., 3] and broadcast.
    """
    back, up, position = np.broadcast_arrays(normalize(np.asarray(back, dtype=np.float64)),
                                             np.asarray(up, dtype=np.float64),
                                             np.asarray(position, dtype=np.float64))
    right = normalize(np.cross(up, back))
    true_up = normalize(np.cross(back, right))
    return np.stack([right, true_up, back, position], axis=-1)


def homogeneous(c2w: np.ndarray) -> np.ndarray:
    """[..., 3, 4] poses -> [..., 4, 4] with the row (0, 0, 0, 1)."""
    bottom = np.broadcast_to(np.array([0.0, 0.0, 0.0, 1.0]), c2w.shape[:-2] + (1, 4))
    return np.concatenate([c2w, bottom], axis=-2)


def to_convention(c2w_opengl: np.ndarray, convention: str) -> np.ndarray:
    """OpenGL poses [..., 3, 4] in ``convention`` ("opencv" flips the camera's y and z axes)."""
    if convention == "opengl":
        return c2w_opengl
    if convention == "opencv":
        return c2w_opengl * np.array([1.0, -1.0, -1.0, 1.0])
    raise ValueError(f"convention must be 'opengl' or 'opencv', got {convention!r}")


def orbit_path(center: Sequence[float], radius: float, elevation_deg: float, n_frames: int,
               intrinsics: Sequence[float], height: int, width: int, convention: str = "opengl",
               up: Sequence[float] = (0.0, 0.0, 1.0),
               front: Sequence[float] = (0.0, 1.0, 0.0)) -> Camera:
    """Cameras circling ``center`` at ``radius``, ``elevation_deg`` above the plane normal to
    ``up``, looking at the centre with no roll.

    Azimuths are linspace(-180, 180, n_frames + 1)[:-1] degrees; azimuth 0 lies towards ``front``.
    With the defaults, ``orbit_path(0, 4, 30, 40, ...)`` is nerf-pytorch's Blender render path
    ``pose_spherical(azimuth, -30, 4)``.

    Args:
        center, up, front: [3] world points/directions. intrinsics: (fx, fy, cx, cy).
    Returns:
        Camera with ``n_frames`` cameras.
    """
    center = np.asarray(center, dtype=np.float64)
    up = normalize(np.asarray(up, dtype=np.float64))
    front = np.asarray(front, dtype=np.float64)
    front = front - np.dot(front, up) * up
    if np.linalg.norm(front) < 1e-6:  # front along up: any horizontal direction will do
        front = np.eye(3)[np.argmin(np.abs(up))]
        front = front - np.dot(front, up) * up
    front = normalize(front)
    side = np.cross(front, up)
    azimuth = np.deg2rad(np.linspace(-180.0, 180.0, n_frames + 1)[:-1])[:, None]
    elevation = np.deg2rad(elevation_deg)
    back = np.cos(elevation) * (np.sin(azimuth) * side + np.cos(azimuth) * front) \
        + np.sin(elevation) * up
    c2w = pose_from_axes(back, up, center + radius * back)
    return Camera.from_numpy(to_convention(c2w, convention), intrinsics, height, width, convention)


def spiral_path(c2w_average: np.ndarray, up: Sequence[float], radii: Sequence[float],
                focus_depth: float, n_frames: int, intrinsics: Sequence[float], height: int,
                width: int, n_rotations: float = 2.0, zrate: float = 0.5,
                convention: str = "opengl") -> Camera:
    """nerf-pytorch's ``render_path_spiral`` for forward-facing (LLFF) scenes.

    Frame k at angle theta_k = linspace(0, 2 pi n_rotations, n_frames + 1)[k] sits at
    ``c2w_average @ (radii * (cos theta, -sin theta, -sin(zrate theta)), 1)`` and looks at the
    point ``focus_depth`` in front of the average camera.

    Args:
        c2w_average: [3, 4] average camera (OpenGL). up: [3]. radii: [3] per-axis amplitude
            in the average camera's frame. intrinsics: (fx, fy, cx, cy).
    Returns:
        Camera with ``n_frames`` cameras.
    """
    c2w_average = np.asarray(c2w_average, dtype=np.float64)[:3, :4]
    theta = np.linspace(0.0, 2.0 * np.pi * n_rotations, n_frames + 1)[:-1, None]
    offsets = np.concatenate([np.cos(theta), -np.sin(theta), -np.sin(theta * zrate),
                              np.ones_like(theta)], axis=1) * np.append(radii, 1.0)
    positions = offsets @ c2w_average.T
    focus = c2w_average @ np.array([0.0, 0.0, -focus_depth, 1.0])
    c2w = pose_from_axes(positions - focus, up, positions)
    return Camera.from_numpy(to_convention(c2w, convention), intrinsics, height, width, convention)


def orbit_of_cameras(c2w: np.ndarray, convention: str, n_frames: int,
                     intrinsics: Sequence[float], height: int, width: int,
                     center: Sequence[float] = (0.0, 0.0, 0.0)) -> Camera:
    """An orbit around ``center`` at the cameras' mean distance and elevation, "up" the
    cameras' mean up axis (+y in OpenGL, -y in OpenCV), starting on the side they are on.

    Args:
        c2w: [n, 3, 4] the scene's cameras in ``convention``. intrinsics: (fx, fy, cx, cy).
    Returns:
        Camera with ``n_frames`` cameras in ``convention``.
    """
    center = np.asarray(center, dtype=np.float64)
    offsets = c2w[:, :, 3] - center
    distances = np.linalg.norm(offsets, axis=1)
    up = normalize((c2w[:, :, 1] if convention == "opengl" else -c2w[:, :, 1]).mean(0))
    elevation = np.degrees(np.arcsin(np.clip(offsets @ up / distances, -1.0, 1.0))).mean()
    return orbit_path(center, distances.mean(), elevation, n_frames, intrinsics, height, width,
                      convention, up=up, front=offsets.mean(0))
