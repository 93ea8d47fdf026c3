"""The built-in scene's renderer: sphere tracing of the exact SDF, supersampled pixels shaded
by BuiltinShapes.shade. Rays come from the reference twins (fastfield.reference), so generating
the scene never loads the kernels."""
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from ...reference.rays import generate_rays, near_far_sphere
from ..camera import Camera
from .shapes import BOUNDING_RADIUS, BuiltinShapes


def sphere_trace(shapes: BuiltinShapes, origins: Tensor, directions: Tensor,
                 tolerance: float = 1e-6, max_steps: int = 300) -> Tuple[Tensor, Tensor]:
    """First hit of rays with the surface of ``shapes``.

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
        distance = shapes.sdf(origins[active] + t[active, None] * directions[active])
        converged = distance < tolerance
        hit[active[converged]] = True
        stepped = t[active] + distance
        t[active] = torch.where(converged, t[active], stepped)
        active = active[~converged & (stepped < far[active])]
    return t, hit


def render_views(shapes: BuiltinShapes, cameras: Camera, scale_mat: Optional[np.ndarray] = None,
                 supersample: int = 2, rays_per_chunk: int = 1 << 19) -> Tuple[Tensor, Tensor]:
    """Render ``shapes`` from ``cameras`` with ``supersample`` x ``supersample`` rays per pixel.

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
        t, hit = sphere_trace(shapes, origins, directions)
        pixel = chunk.repeat(len(offsets))[hit]
        colour.index_add_(0, pixel, shapes.shade(origins[hit] + t[hit, None] * directions[hit]))
        alpha.index_add_(0, pixel, torch.ones(len(pixel), dtype=torch.float64))
    return (colour / len(offsets)).reshape(n, height, width, 3), \
        (alpha / len(offsets)).reshape(n, height, width)
