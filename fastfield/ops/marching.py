"""Ray marching through an occupancy grid into packed samples (instant-ngp / nerfacc style
empty-space skipping)."""
import math
from typing import Optional, Union

import torch
from torch import Tensor

from ..core.checks import int_at_least
from ..core.packing import DEFAULT_MAX_STEPS, exclusive_offsets, fixed_capacity_layout
from ..core.types import MarchedSamples
from ._common import check_kernel, float_inputs, per_ray, require_tensor

__all__ = ["march_rays"]


def _grid_arguments(op: str, grid, like: Tensor):
    """(bitfield, aabb, resolution, levels) of an occupancy grid (``fastfield.OccupancyGrid``, or
    any object with those four attributes), the box in the dtype of ``like``."""
    for name in ("bitfield", "aabb", "resolution", "levels"):
        if not hasattr(grid, name):
            raise TypeError(f"fastfield.{op}: grid must be an OccupancyGrid (or have bitfield, "
                            f"aabb, resolution and levels), got {type(grid).__name__}")
    require_tensor(op, "grid.bitfield", grid.bitfield)
    aabb = grid.aabb
    if not isinstance(aabb, Tensor):
        aabb = torch.tensor(aabb, dtype=like.dtype, device=like.device)
    resolution = [int(r) for r in grid.resolution]
    return grid.bitfield, aabb.to(like.dtype), resolution, int(grid.levels)


def march_rays(origins: Tensor, directions: Tensor, near: Union[float, Tensor],
               far: Union[float, Tensor], grid, step_size: float, cone_angle: float = 0.0,
               max_step: float = math.inf, u: Optional[Tensor] = None,
               capacity: Optional[int] = None,
               max_steps: int = DEFAULT_MAX_STEPS) -> MarchedSamples:
    """March rays through an occupancy grid: packed samples of constant step, only in occupied
    cells (empty space is skipped cell by cell, DDA).

    Each ray x(t) = o + t d is marched over [near, far] cut to the grid's outermost box (t >= 0)
    on the steps t_0 = t_enter + u dt(t_enter), then t_k = t_0 + k step_size (cone_angle = 0),
    or t_{k+1} = t_k + dt(t_k) with dt(t) = clamp(t cone_angle, step_size, max_step)
    (instant-ngp's cone growth, for scenes that extend far past the box). Step k becomes the
    sample [t_k, min(t_{k+1}, t_exit)] when the grid cell of its midpoint is occupied, at the
    finest cascade level that contains the midpoint. The grid only removes steps: with a full
    grid the samples are every step, contiguous, covering [t_enter, t_exit]. csrc/marching/
    marching.h states every operation; ``fastfield.reference.march_rays`` performs the same
    ones and gives the same t values bit for bit.

    Two variants, one layout:

    - ``capacity=None`` (exact): count the samples per ray, scan, then fill. Allocating the
      output needs the total on the host: one device synchronisation per call.
    - ``capacity=n`` (fixed, synchronisation-free, ``torch.compile(fullgraph=True)``-able): the
      outputs have n slots. Rays keep their places while they fit; from the first ray that does
      not, rays are dropped (written as no samples) and counted in ``n_dropped``, a device
      tensor for the caller to report (never silently: a dropped ray composites to background).
      Slots past the samples are padding of zero length (t_start = t_end = 0) owned by the last
      ray, so ``ray_offsets[-1] == capacity`` and the packed compositing ops take the buffers as
      they are; padding composites to nothing. ``n_valid`` counts the real samples.

    Args:
        origins, directions: [n_rays, 3], float32/float64, one dtype and device.
        near, far: [n_rays] tensors or floats (e.g. 0 and inf to march the whole box).
        grid: ``fastfield.OccupancyGrid`` (bitfield, aabb, resolution, levels).
        step_size: the constant step, in units of t (> 0).
        cone_angle: >= 0; 0 for constant steps.
        max_step: upper bound of the cone-grown step (>= step_size).
        u: [n_rays] jitter in [0, 1) of the first step (training), or None.
        capacity: None for the exact variant, else the number of sample slots.
        max_steps: at most this many lattice steps per ray (a bound on work for any input).

    Returns:
        MarchedSamples(t_starts, t_ends [n_samples] in the dtype of origins, ray_indices int64
        [n_samples], ray_offsets int64 [n_rays + 1], n_valid and n_dropped 0-d int64).

    Rays with NaN coordinates or bounds, rays that miss the box and rays with near >= far get no
    samples. Not differentiable: a backward through t raises RuntimeError.
    """
    op = "march_rays"
    require_tensor(op, "origins", origins)
    require_tensor(op, "directions", directions)
    n_rays = origins.shape[0] if origins.dim() >= 1 else 0
    near, far = per_ray(op, "near", near, n_rays, origins), per_ray(op, "far", far, n_rays, origins)
    origins, directions, near, far, u = float_inputs(op, origins, directions, near, far, u)
    bitfield, aabb, resolution, levels = _grid_arguments(op, grid, origins)
    max_steps = int_at_least(op, "max_steps", max_steps, 1)
    check_kernel("march_rays_count", origins)
    args = (origins, directions, near, far, u, bitfield, aabb, resolution, levels,
            float(step_size), float(cone_angle), float(max_step), max_steps)
    counts = torch.ops.fastfield.march_rays_count(*args)
    if capacity is None:
        offsets = exclusive_offsets(counts)
        total = int(offsets[-1])  # the exact variant's one synchronisation
        samples = torch.ops.fastfield.march_rays_fill(*args, offsets, total)
        zero = counts.new_zeros(())
        return MarchedSamples(*samples, offsets, offsets[-1], zero)
    capacity = int_at_least(op, "capacity", capacity, 0) if n_rays > 0 else 0  # no rays: no slots
    layout = fixed_capacity_layout(counts, capacity)
    samples = torch.ops.fastfield.march_rays_fill(*args, layout.ray_offsets, capacity)
    return MarchedSamples(*samples, layout.ray_offsets, layout.n_valid, layout.n_dropped)


@torch.library.register_fake("fastfield::march_rays_count")
def _march_rays_count_fake(origins, directions, near, far, u, bitfield, aabb, resolution, levels,
                           step_size, cone_angle, max_step, max_steps):
    return origins.new_empty(origins.shape[0], dtype=torch.long)


@torch.library.register_fake("fastfield::march_rays_fill")
def _march_rays_fill_fake(origins, directions, near, far, u, bitfield, aabb, resolution, levels,
                          step_size, cone_angle, max_step, max_steps, ray_offsets, capacity):
    return (origins.new_empty(capacity), origins.new_empty(capacity),
            origins.new_empty(capacity, dtype=torch.long))
