"""The radial-tangential lens model (OpenCV's, COLMAP's OPENCV / RADIAL / SIMPLE_RADIAL,
nerfstudio's perspective cameras), undone on load so the training pipeline sees pinholes.

Normalised image coordinates (x, y) = ((u - cx) / fx, (v - cy) / fy) map to distorted ones

    r2 = x^2 + y^2,  radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3
    xd = x radial + 2 p1 x y + p2 (r2 + 2 x^2)
    yd = y radial + p1 (r2 + 2 y^2) + 2 p2 x y

with (u, v) continuous pixel coordinates whose pixel corners are integers (COLMAP, nerfstudio):
pixel index i covers [i, i + 1).
"""
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

COEFFICIENTS = ("k1", "k2", "k3", "p1", "p2")


def distort(x: np.ndarray, y: np.ndarray, coefficients: Sequence[float]):
    """Distorted normalised coordinates (xd, yd) of ideal ones; ``coefficients`` are
    (k1, k2, k3, p1, p2)."""
    k1, k2, k3, p1, p2 = coefficients
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
    yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
    return xd, yd


def undistort_image(image: np.ndarray, intrinsics: Sequence[float],
                    coefficients: Sequence[float]) -> np.ndarray:
    """The image a pinhole camera with the same intrinsics would have taken.

    Each output pixel centre is pushed through ``distort`` and the input is sampled there
    bilinearly; samples that fall outside the input take the nearest border pixel.

    Args:
        image: [H, W] or [H, W, C], uint8 or float.
        intrinsics: (fx, fy, cx, cy) in pixels, pixel corners at integers.
        coefficients: (k1, k2, k3, p1, p2).
    Returns:
        Same shape and dtype as ``image``.
    """
    height, width = image.shape[:2]
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    v, u = np.meshgrid(np.arange(height, dtype=np.float64) + 0.5,
                       np.arange(width, dtype=np.float64) + 0.5, indexing="ij")
    xd, yd = distort((u - cx) / fx, (v - cy) / fy, coefficients)
    # Source position in pixel-index units (centre of pixel i at i), then grid_sample's [-1, 1]
    # with align_corners=True (-1 and 1 are the centres of the first and last pixels).
    col, row = xd * fx + cx - 0.5, yd * fy + cy - 0.5
    grid = np.stack([2.0 * col / max(width - 1, 1) - 1.0, 2.0 * row / max(height - 1, 1) - 1.0],
                    axis=-1)
    planar = image[..., None] if image.ndim == 2 else image
    source = torch.from_numpy(np.ascontiguousarray(planar, dtype=np.float32)).permute(2, 0, 1)
    sampled = F.grid_sample(source[None], torch.from_numpy(grid).float()[None], mode="bilinear",
                            padding_mode="border", align_corners=True)[0].permute(1, 2, 0).numpy()
    sampled = sampled.reshape(image.shape)
    if image.dtype == np.uint8:
        return np.round(sampled).clip(0, 255).astype(np.uint8)
    return sampled.astype(image.dtype)
