"""Pure-PyTorch twin of march_rays (see fastfield.ops.marching).

It performs the walk of csrc/marching/marching.h operation for operation, in the same order and
dtype, every ray at once: each pass of the loop is one step of every ray still marching (a
sample, or a skip over an empty cell). Its t values are therefore the kernels' bit for bit, in
float32 as in float64; the passes number the most steps plus skips of any ray.
"""
import math
from typing import Optional, Union

import torch
from torch import Tensor

from ..core.checks import per_ray
from ..core.packing import (DEFAULT_MAX_STEPS, exclusive_offsets, fixed_capacity_layout,
                            unpack_bits)
from ..core.types import MarchedSamples
from .rays import near_far_aabb


class _Grid:
    """The grid geometry in the rays' dtype: centre and half size of the level-0 box, res / 2,
    and the unpacked bits [levels * rx * ry * rz]."""

    def __init__(self, grid, like: Tensor):
        aabb = torch.as_tensor(grid.aabb).to(like.device, like.dtype)
        self.res = [int(r) for r in grid.resolution]
        self.levels = int(grid.levels)
        self.centre = (aabb[:3] + aabb[3:]) * 0.5
        self.half = (aabb[3:] - aabb[:3]) * 0.5
        self.inv_half = 1 / self.half
        self.half_res = torch.tensor(self.res, dtype=like.dtype, device=like.device) * 0.5
        self.inv_half_res = 1 / self.half_res
        self.bits = unpack_bits(grid.bitfield, self.levels * math.prod(self.res))

    def cell(self, x: Tensor):
        """(occupied [n] bool, index [n, 3] int64, scale [n]) of the points x [n, 3]."""
        q = (x - self.centre) * self.inv_half
        extent = torch.zeros_like(q[:, 0])
        for k in range(3):
            a = torch.where(q[:, k] < 0, -q[:, k], q[:, k])
            extent = torch.where(a > extent, a, extent)
        scale = torch.ones_like(extent)
        inv_scale = torch.ones_like(extent)
        level = torch.zeros_like(extent, dtype=torch.long)
        for _ in range(self.levels - 1):  # the finest level whose box holds the point
            grow = extent > scale
            scale = torch.where(grow, scale * 2, scale)
            inv_scale = torch.where(grow, inv_scale * 0.5, inv_scale)
            level = level + grow.long()
        g = (q * inv_scale[:, None] + 1) * self.half_res
        index = []
        for k in range(3):
            inside = (g[:, k] >= 0) & (g[:, k] < self.res[k])
            i = torch.where(inside, g[:, k], torch.zeros_like(g[:, k])).long()
            index.append(torch.where(g[:, k] >= self.res[k], self.res[k] - 1, i))
        n = level
        for k in range(3):
            n = n * self.res[k] + index[k]
        return self.bits[n], torch.stack(index, -1), scale

    def exit(self, origins: Tensor, directions: Tensor, inv_d: Tensor, index: Tensor,
             scale: Tensor) -> Tensor:
        """t where each ray leaves its cell (+inf for rays that move along no axis)."""
        exit = torch.full_like(scale, math.inf)
        for k in range(3):
            d = directions[:, k]
            face = (index[:, k] + (d > 0).long()).to(scale.dtype)
            x = ((face * self.inv_half_res[k] - 1) * scale) * self.half[k] + self.centre[k]
            t = (x - origins[:, k]) * inv_d[:, k]
            exit = torch.where((d != 0) & (t < exit), t, exit)
        return exit


def _pack(t_starts, t_ends, emitted, capacity: Optional[int]) -> MarchedSamples:
    """Rows [n_rays, n_passes] of per-pass values and emitted flags -> the packed layout."""
    n_rays = emitted.shape[0]
    counts = emitted.sum(1)
    ray_ids = torch.arange(n_rays, device=emitted.device)[:, None].expand_as(emitted)
    starts, ends, ids = t_starts[emitted], t_ends[emitted], ray_ids[emitted]
    if capacity is None:
        offsets = exclusive_offsets(counts)
        zero = counts.new_zeros(())
        return MarchedSamples(starts, ends, ids, offsets, offsets[-1], zero)
    capacity = capacity if n_rays > 0 else 0
    layout = fixed_capacity_layout(counts, capacity)
    slots = torch.arange(capacity, device=emitted.device)
    owner = torch.searchsorted(layout.ray_offsets[1:], slots, right=True)
    out_ids = owner.clamp(max=max(n_rays - 1, 0))
    out_starts = starts.new_zeros(capacity)
    out_ends = starts.new_zeros(capacity)
    keep = layout.kept[ids]
    rank = torch.arange(ids.shape[0], device=ids.device) - exclusive_offsets(counts)[ids]
    where = layout.ray_offsets[ids] + rank
    out_starts[where[keep]] = starts[keep]
    out_ends[where[keep]] = ends[keep]
    return MarchedSamples(out_starts, out_ends, out_ids, layout.ray_offsets, layout.n_valid,
                          layout.n_dropped)


def march_rays(origins: Tensor, directions: Tensor, near: Union[float, Tensor],
               far: Union[float, Tensor], grid, step_size: float, cone_angle: float = 0.0,
               max_step: float = math.inf, u: Optional[Tensor] = None,
               capacity: Optional[int] = None,
               max_steps: int = DEFAULT_MAX_STEPS) -> MarchedSamples:
    """Packed samples of constant step in occupied cells. See ``fastfield.march_rays``."""
    n_rays, dtype, device = origins.shape[0], origins.dtype, origins.device
    near = per_ray("march_rays", "near", near, n_rays, origins)
    far = per_ray("march_rays", "far", far, n_rays, origins)
    g = _Grid(grid, origins)
    step = torch.tensor(step_size, dtype=dtype, device=device)
    inv_step, inv_d = 1 / step, 1 / directions
    cone_angle_t = torch.tensor(cone_angle, dtype=dtype, device=device)
    max_step_t = torch.tensor(max_step, dtype=dtype, device=device)
    cone = cone_angle > 0

    def cone_step(t):
        dt = t * cone_angle_t
        return torch.where(dt < step, step, torch.where(dt > max_step_t, max_step_t, dt))

    outer = 2.0 ** (g.levels - 1)
    box = near_far_aabb(origins, directions,
                        torch.cat([g.centre - g.half * outer, g.centre + g.half * outer]))
    t_enter = torch.where(box.near < near, near, box.near)
    t_exit = torch.where(far < box.far, far, box.far)
    marching = (box.hit & (near == near) & (far == far) & (t_enter < t_exit)
                & torch.isfinite(t_exit - t_enter))
    t_0 = t_enter if u is None else t_enter + u * (cone_step(t_enter) if cone else step)
    k = torch.zeros(n_rays, dtype=torch.long, device=device)
    t = t_0.clone()
    marching = marching & (t < t_exit)
    passes = []
    while bool(marching.any()):
        t_next = t + cone_step(t) if cone else t_0 + (k + 1).to(dtype) * step
        t_end = torch.where(t_next < t_exit, t_next, t_exit)
        mid = (t + t_end) * 0.5
        occupied, index, scale = g.cell(origins + mid[:, None] * directions)
        passes.append((t, t_end, marching & occupied))
        t_b = g.exit(origins, directions, inv_d, index, scale)
        if cone:
            k_new, t_new = k + 1, t_next
            skipping = marching & ~occupied
            while True:  # on to the step that contains t_b
                after = t_new + cone_step(t_new)
                skipping = skipping & (k_new < max_steps) & (t_new < t_exit) & (after <= t_b)
                if not bool(skipping.any()):
                    break
                t_new = torch.where(skipping, after, t_new)
                k_new = k_new + skipping.long()
        else:
            v = (t_b - t_0) * inv_step
            in_range = (v >= 0) & (v < max_steps)
            target = torch.where(in_range, v, torch.zeros_like(v)).floor().long()
            target = torch.where(v >= max_steps, max_steps, target)
            k_new = torch.where(occupied, k + 1, torch.maximum(target, k + 1))
            t_new = t_0 + k_new.to(dtype) * step
        k = torch.where(marching, k_new, k)
        t = torch.where(marching, t_new, t)
        marching = marching & (k < max_steps) & (t < t_exit)
    if not passes:
        empty = origins.new_zeros(n_rays, 0)
        return _pack(empty, empty, empty.bool(), capacity)
    rows = [torch.stack(column, 1) for column in zip(*passes)]
    return _pack(rows[0], rows[1], rows[2], capacity)
