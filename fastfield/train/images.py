"""The 8-bit views of rendered outputs (colour, depth, NeuS normals) that validation images,
evaluation images and videos share."""
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

import imageio.v3 as iio
import numpy as np
import torch
from torch import Tensor

from ..core.images import to_uint8 as _tensor_to_uint8

ArrayLike = Union[np.ndarray, Tensor]


def to_uint8(image: ArrayLike) -> np.ndarray:
    """Values in [0, 1] (any shape, tensor or array) -> uint8 numpy, clamped and rounded."""
    return _tensor_to_uint8(torch.as_tensor(image).detach().cpu()).numpy()


def depth_to_uint8(depth: ArrayLike, acc: ArrayLike, near: Optional[float] = None,
                   far: Optional[float] = None) -> np.ndarray:
    """A rendered depth map as a grey image: near is white, far dark, empty space black.

    ``depth`` is the expected termination depth sum(w t), which acc < 1 pulls towards 0, so
    it is divided by acc first (the depth of what the ray hit). Depths map linearly from
    [near, far] to [1, 0]; without a range the 1st and 99th percentiles over the pixels with
    acc > 0.5 are used (give near/far for a video, so frames share one scale). The grey value
    is scaled by acc, so partly covered pixels fade to black.

    Args:
        depth, acc: [H, W] (tensors or arrays).
    Returns:
        [H, W, 3] uint8.
    """
    depth = torch.as_tensor(depth).detach().cpu().double().numpy()
    acc = torch.as_tensor(acc).detach().cpu().double().numpy().clip(0.0, 1.0)
    if depth.shape != acc.shape or depth.ndim != 2:
        raise ValueError(f"depth and acc must both be [H, W], got {list(depth.shape)} and "
                         f"{list(acc.shape)}")
    hit_depth = depth / np.maximum(acc, 1e-6)
    if near is None or far is None:
        covered = hit_depth[acc > 0.5]
        low, high = np.percentile(covered, [1.0, 99.0]) if covered.size else (0.0, 1.0)
        near = low if near is None else near
        far = high if far is None else far
    closeness = ((far - hit_depth) / max(far - near, 1e-12)).clip(0.0, 1.0) * acc
    return to_uint8(np.repeat(closeness[..., None], 3, axis=-1))


def normal_to_uint8(normal: ArrayLike, c2w: Optional[ArrayLike] = None) -> np.ndarray:
    """NeuS normals as colours: (n + 1) / 2 per channel, as NeuS's validation images show them.

    With ``c2w`` ([3, 3] or [3, 4] camera-to-world) the world normals are rotated into that
    camera's frame first (NeuS does so); the accumulated normal of empty space is 0, i.e.
    mid grey.

    Args:
        normal: [H, W, 3] (``render_image(...)["normal"]`` of a NeuS model).
    Returns:
        [H, W, 3] uint8.
    """
    normal = torch.as_tensor(normal).detach().cpu().double()
    if normal.dim() != 3 or normal.shape[-1] != 3:
        raise ValueError(f"normal must be [H, W, 3], got {list(normal.shape)}")
    if c2w is not None:
        rotation = torch.as_tensor(c2w).detach().cpu().double()[:3, :3]
        normal = normal @ rotation  # rows: R^T n, world -> camera
    return to_uint8(normal * 0.5 + 0.5)


def view_panels(out: Dict[str, Tensor], c2w: Tensor) -> Dict[str, np.ndarray]:
    """The PNG-ready uint8 [H, W, 3] images of one rendered view: rgb, depth (grey, near
    bright) and, for NeuS, normals in the camera's frame (as NeuS shows them); ``c2w`` [3, 4]
    is the view's camera."""
    panels = {"rgb": to_uint8(out["rgb"]), "depth": depth_to_uint8(out["depth"], out["acc"])}
    if "normal" in out:
        panels["normal"] = normal_to_uint8(out["normal"], c2w)
    return panels


def write_side_by_side(path, images: Sequence[np.ndarray]) -> Path:
    """[H, W, 3] uint8 images side by side in one PNG at ``path`` (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.concatenate(list(images), axis=1))
    return path
