"""nerfstudio ``transforms.json`` scenes: what ``fastfield process`` writes, and what
nerfstudio's ns-process-data, instant-ngp's colmap2nerf and phone capture apps export.

The format (nerfstudio's): per frame a camera-to-world ``transform_matrix`` (4x4, OpenGL
convention: x right, y up, the camera looks down -z), ``file_path`` and optionally ``mask_path``
(relative to the folder); intrinsics ``fl_x fl_y cx cy w h`` in pixels (pixel corners at
integers, so the centre of pixel i is at i + 0.5) with ``camera_model`` and its distortion
``k1 k2 k3 p1 p2``, at the top level (one shared camera) or per frame. ``fastfield process``
adds keys that nerfstudio ignores:

    depth_range      [closest, farthest] depth of the sparse points the cameras see
    aabb             [[min x, y, z], [max x, y, z]]: the box holding the points and cameras
    forward_facing   true when every camera looks the same way at a scene in front (LLFF-like)
    applied_transform, applied_scale   how COLMAP's world was mapped to this frame

and ``cameras_sphere.npz`` beside it, whose ``scale_mat_0`` maps NeuS's unit sphere onto the
region of interest (in this file's frame).
"""
from pathlib import Path

import numpy as np
import torch

from ..core.checks import int_at_least
from ._io import (as_array, read_image, read_json, read_npz, require_dir, require_downscale,
                  require_file, require_key, shrink)
from .camera import Camera
from .distortion import COEFFICIENTS, undistort_image
from .llff import forward_facing_frame, ray_bounds, spiral_render_path
from .paths import homogeneous, orbit_of_cameras
from .scene import Scene, Split

# Perspective models with the radial-tangential distortion of fastfield.data.distortion.
SUPPORTED_MODELS = ("PINHOLE", "SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV")
TRANSFORMS, SPHERE_FILE = "transforms.json", "cameras_sphere.npz"
ORBIT_FRAMES = 60


def load_nerfstudio(path, downscale: int = 1, llffhold: int = 8, ndc=None,
                    use_masks: bool = True, unit_sphere: bool = False) -> Scene:
    """Load ``path/transforms.json`` and the images (and masks) it lists.

    Frames are sorted by ``file_path``. Distorted cameras are undistorted on load
    (``distortion.undistort_image``, same intrinsics), so every camera is a pinhole; integer
    pixel indices are pixel centres (cx, cy are shifted by -0.5 from the file's).

    Args:
        downscale: images at 1 / downscale: ``images_{downscale}/<name>`` (and
            ``masks_{downscale}/<name>``) where present, nerfstudio's layout; otherwise the
            full images shrunk on load (``_io.shrink``). Intrinsics are divided by it.
        llffhold: test = val = frames 0, llffhold, 2 llffhold, ... (LLFF's convention, every
            8th); train = the rest. With ``unit_sphere`` they stay in train, as NeuS (and
            ``load_neus``) validates on training views.
        ndc: None: NDC when the file marks the capture ``forward_facing``. True: LLFF's
            forward-facing frame (``llff.forward_facing_frame`` with ``depth_range`` as the
            bounds) and NDC, as for LLFF scenes. False: the file's frame.
        use_masks: read every frame's ``mask_path`` (all frames have one or none does).
        unit_sphere: for NeuS: cameras in the unit-sphere frame of ``cameras_sphere.npz``
            (``scale_mat_0``); bounds "sphere" and ``Scene.scale_mat`` maps back to this file's
            frame.
    Returns:
        Scene of kind "nerfstudio". Without NDC or the unit sphere, near/far are nerf-pytorch's
        LLFF rule on ``depth_range`` (0.9 x closest, farthest) and ``Scene.aabb`` is ``aabb``;
        a file without ``depth_range`` gets 0.1x and 4x the largest camera distance from the
        cameras' centroid.
    """
    path = require_dir(path, f"a scene with {TRANSFORMS}")
    factor = require_downscale(downscale)
    llffhold = int_at_least(None, "llffhold", llffhold, 2)  # every llffhold-th frame held out
    if unit_sphere and ndc:
        raise ValueError("ndc and unit_sphere exclude each other: NeuS renders in the unit "
                         "sphere, not in NDC")
    json_path = path / TRANSFORMS
    meta = read_json(json_path)
    frames = require_key(meta, "frames", str(json_path))
    if not isinstance(frames, list) or len(frames) < 2:
        raise ValueError(f"{json_path}: 'frames' must list at least 2 frames")
    where = [f"{json_path}: frame {i}" for i in range(len(frames))]
    files = [_relative_path(frames[i], "file_path", where[i]) for i in range(len(frames))]
    order = sorted(range(len(frames)), key=lambda i: files[i])

    cameras = [_frame_camera(meta, frames[i], where[i]) for i in order]
    full_hw = cameras[0]["hw"]
    for i, camera in zip(order, cameras):
        if camera["hw"] != full_hw:
            raise ValueError(f"{where[i]}: image size {camera['hw'][0]}x{camera['hw'][1]} "
                             f"(h x w) differs from {full_hw[0]}x{full_hw[1]} of the first "
                             f"frame; fastfield needs one image size")
    c2w = np.stack([as_array(require_key(frames[i], "transform_matrix", where[i]), (4, 4),
                             f"{where[i]}: 'transform_matrix'")[:3] for i in order])
    has_mask = ["mask_path" in frames[i] for i in order]
    if use_masks and any(has_mask) and not all(has_mask):
        first = order[has_mask.index(False)]
        raise ValueError(f"{where[first]} has no 'mask_path' but other frames do (give every "
                         f"frame a mask, or set use_masks false)")

    images, masks, intrinsics = [], [], []
    for i, camera in zip(order, cameras):
        image_path = path / files[i]
        image = _read_downscaled(image_path, path / f"images_{factor}", factor, "rgb", full_hw)
        mask = None
        if use_masks and all(has_mask):
            mask_path = path / _relative_path(frames[i], "mask_path", where[i])
            mask = _read_downscaled(mask_path, path / f"masks_{factor}", factor, "first",
                                    full_hw)[..., 0].astype(np.float32) / 255.0
            if mask.shape != image.shape[:2]:
                raise ValueError(f"{mask_path}: mask is {mask.shape[0]}x{mask.shape[1]}, its "
                                 f"image {image.shape[0]}x{image.shape[1]}")
        scaled = camera["intrinsics"] / factor  # (fx, fy, cx, cy), pixel corners at integers
        if any(camera["distortion"]):
            image = undistort_image(image, scaled, camera["distortion"])
            mask = None if mask is None else undistort_image(mask, scaled, camera["distortion"])
        if images and image.shape != images[0].shape:
            raise ValueError(f"{image_path}: downscaled to {image.shape[0]}x{image.shape[1]}, "
                             f"the first frame to {images[0].shape[0]}x{images[0].shape[1]}")
        images.append(image)
        masks.append(mask)
        intrinsics.append(scaled - np.array([0.0, 0.0, 0.5, 0.5]))  # index = pixel centre
    height, width = images[0].shape[:2]
    intrinsics = np.stack(intrinsics)

    closest, farthest = _depth_range(meta, c2w, json_path)
    aabb = (as_array(meta["aabb"], (2, 3), f"{json_path}: 'aabb'") if "aabb" in meta else None)
    forward_facing = bool(meta.get("forward_facing", False))
    use_ndc = forward_facing and not unit_sphere if ndc is None else bool(ndc)
    scale_mat, bounds = None, "fixed"
    bounds_array = np.array([[closest, farthest]])
    if use_ndc:
        c2w, bounds_array = forward_facing_frame(c2w, bounds_array)
        aabb = None  # NDC renders in NDC, where no world box applies
    if unit_sphere:
        scale_mat = _sphere_scale_mat(path)
        c2w, aabb = _into_unit_sphere(c2w, aabb, scale_mat)
        near, far, ndc_params, bounds = 0.0, 0.0, None, "sphere"
    else:
        near, far, ndc_params = ray_bounds(bounds_array, use_ndc, height, width, intrinsics[0, 0])
    if forward_facing and not unit_sphere:
        render_path = spiral_render_path(c2w, bounds_array, intrinsics[0], height, width)
    else:
        center = (0.0, 0.0, 0.0) if aabb is None or unit_sphere else aabb.mean(0)
        render_path = orbit_of_cameras(c2w, "opengl", ORBIT_FRAMES, intrinsics[0], height, width,
                                       center)

    views = Split(torch.from_numpy(np.stack(images)),
                  Camera.from_numpy(c2w, intrinsics, height, width, "opengl"),
                  None if masks[0] is None else torch.from_numpy(np.stack(masks)),
                  [Path(files[i]).name for i in order])
    is_test = torch.zeros(len(views), dtype=torch.bool)
    is_test[::llffhold] = True
    test = views[is_test]
    train = views if unit_sphere else views[~is_test]
    return Scene(name=path.name, kind="nerfstudio",
                 splits={"train": train, "val": test, "test": test},
                 near=near, far=far, bounds=bounds, background=None, ndc=ndc_params,
                 scale_mat=None if scale_mat is None else torch.tensor(scale_mat,
                                                                       dtype=torch.float32),
                 render_path=render_path,
                 aabb=None if aabb is None else torch.tensor(aabb, dtype=torch.float32))


def _relative_path(frame, key: str, where: str) -> str:
    value = require_key(frame, key, where)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: {key!r} must be a file path, got {value!r}")
    return value


def _frame_camera(meta: dict, frame: dict, where: str) -> dict:
    """{"intrinsics": (fx, fy, cx, cy) float64, "hw": (h, w), "distortion": (k1, k2, k3, p1,
    p2)} of one frame: its own keys, else the file's top-level ones."""
    def value(key, default=None):
        source = frame if isinstance(frame, dict) and key in frame else meta
        if key not in source:
            if default is not None:
                return default
            raise ValueError(f"{where} has no {key!r} (and the file none at the top level)")
        return float(as_array(source[key], (), f"{where}: {key!r}"))

    model = frame.get("camera_model", meta.get("camera_model", "OPENCV")) \
        if isinstance(frame, dict) else None
    if model not in SUPPORTED_MODELS:
        raise ValueError(f"{where}: camera_model {model!r} is not supported; fastfield loads "
                         f"{', '.join(SUPPORTED_MODELS)} (undistorted on load): undistort "
                         f"the images first (e.g. fastfield process)")
    if value("k4", 0.0) != 0.0:
        raise ValueError(f"{where}: 'k4' is a fisheye coefficient; {model} uses "
                         f"{', '.join(COEFFICIENTS)}")
    intrinsics = np.array([value("fl_x"), value("fl_y"), value("cx"), value("cy")])
    hw = (value("h"), value("w"))
    if min(intrinsics[:2]) <= 0 or min(hw) < 1 or hw != tuple(map(round, hw)):
        raise ValueError(f"{where}: focal lengths must be positive and w, h positive integers")
    return {"intrinsics": intrinsics, "hw": (int(hw[0]), int(hw[1])),
            "distortion": tuple(value(key, 0.0) for key in COEFFICIENTS)}


def _read_downscaled(full_path: Path, folder: Path, factor: int, channels: str, full_hw):
    """One image (or mask) at 1 / factor: ``folder/<name>`` when that file exists, else the
    full-size file, checked against the frame's w, h, and shrunk."""
    small = folder / full_path.name
    if factor > 1 and small.is_file():
        image = read_image(small, channels)
        if any(abs(n * factor - full) > factor for n, full in zip(image.shape[:2], full_hw)):
            raise ValueError(f"{small}: image is {image.shape[0]}x{image.shape[1]}, expected "
                             f"{full_hw[0] // factor}x{full_hw[1] // factor} (1/{factor} of "
                             f"{full_hw[0]}x{full_hw[1]})")
        return image
    image = read_image(full_path, channels)
    if image.shape[:2] != tuple(full_hw):
        raise ValueError(f"{full_path}: image is {image.shape[0]}x{image.shape[1]}, "
                         f"transforms.json gives h x w = {full_hw[0]}x{full_hw[1]}")
    return shrink(image, factor, full_path)


def _depth_range(meta: dict, c2w: np.ndarray, json_path: Path):
    """(closest, farthest): the file's ``depth_range``, else from the camera spread."""
    if "depth_range" in meta:
        closest, farthest = as_array(meta["depth_range"], (2,), f"{json_path}: 'depth_range'")
        if not 0 < closest < farthest:
            raise ValueError(f"{json_path}: 'depth_range' must be [closest, farthest] with "
                             f"0 < closest < farthest, got {[closest, farthest]}")
        return float(closest), float(farthest)
    centres = c2w[:, :, 3]
    extent = float(np.linalg.norm(centres - centres.mean(0), axis=1).max()) or 1.0
    return 0.1 * extent, 4.0 * extent


def _sphere_scale_mat(path: Path) -> np.ndarray:
    """scale_mat_0 of cameras_sphere.npz: a similarity taking the unit sphere to the region of
    interest, in transforms.json's frame."""
    sphere_path = require_file(path / SPHERE_FILE, "NeuS's unit-sphere frame (scale_mat_0), as "
                               "fastfield process writes it")
    matrix = as_array(require_key(read_npz(sphere_path), "scale_mat_0", str(sphere_path)),
                      (4, 4), f"{sphere_path}: 'scale_mat_0'")
    linear = matrix[:3, :3]
    scale = np.cbrt(np.linalg.det(linear))
    similar = scale > 0 and np.allclose(linear.T @ linear, scale ** 2 * np.eye(3),
                                        atol=1e-6 * scale ** 2)
    if not similar or not np.allclose(matrix[3], [0, 0, 0, 1]):
        raise ValueError(f"{sphere_path}: 'scale_mat_0' must be a similarity (rotation, uniform "
                         f"scale, translation)")
    return matrix


def _into_unit_sphere(c2w: np.ndarray, aabb, scale_mat: np.ndarray):
    """Cameras [n, 3, 4] (and the aabb's corners' box) mapped by scale_mat^-1."""
    inverse = np.linalg.inv(scale_mat)
    moved = (inverse @ homogeneous(c2w))[:, :3]
    moved[:, :, :3] /= np.linalg.norm(moved[:, :, :3], axis=1, keepdims=True)  # unit axes
    if aabb is not None:
        corners = np.stack(np.meshgrid(*aabb.T, indexing="ij"), -1).reshape(-1, 3)
        corners = corners @ inverse[:3, :3].T + inverse[:3, 3]
        aabb = np.stack([corners.min(0), corners.max(0)])
    return moved, aabb
