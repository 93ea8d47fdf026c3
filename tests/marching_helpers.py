"""Grids and rays for the marching tests, and the dense-lattice statement of what march_rays
returns, computed here without the walk."""
import math

import torch

import fastfield
from fastfield.core.packing import pack_bits

F64, F32 = torch.float64, torch.float32
AABB = (-1.0, -0.5, -2.0, 1.5, 1.0, 0.5)  # dyadic: c -/+ h is the box exactly, in float32 too


def make_grid(resolution=(8, 12, 16), levels=1, fraction=0.3, seed=0, aabb=AABB, device="cpu"):
    """An OccupancyGrid whose bits are set at random (``fraction`` occupied; 1 full, 0 empty)."""
    grid = fastfield.OccupancyGrid(aabb, resolution, levels=levels).to(device)
    n = levels * math.prod(grid.resolution)
    bits = torch.rand(n, generator=torch.Generator().manual_seed(seed)) < fraction
    grid.bitfield.copy_(pack_bits(bits).to(device))
    return grid


def make_rays(n_rays, device, dtype=F64, seed=0, spread=3.0):
    """Random rays, most of them aimed into the box, with axis-parallel directions (+0 and -0),
    origins inside the box and zero-length intervals mixed in; near 0 or random, far 8."""
    g = torch.Generator().manual_seed(seed)
    origins = torch.randn(n_rays, 3, generator=g, dtype=F64) * spread
    target = torch.tensor(AABB[:3], dtype=F64) + torch.rand(n_rays, 3, generator=g, dtype=F64) * (
        torch.tensor(AABB[3:], dtype=F64) - torch.tensor(AABB[:3], dtype=F64))
    directions = target - origins  # aimed at a point of the box
    directions[::7, 0] = 0.0
    directions[1::7, 1] = -0.0
    origins[2::9] *= 0.1  # inside
    near = torch.where(torch.rand(n_rays, generator=g) < 0.5, 0.0,
                       torch.rand(n_rays, generator=g, dtype=F64))
    far = torch.full((n_rays,), 8.0, dtype=F64)
    far[3::11] = near[3::11]  # zero length
    return [x.to(device, dtype) for x in (origins, directions, near, far)]


def outer_box(grid, dtype, device):
    aabb = grid.aabb.to(device, dtype)
    centre, half = (aabb[:3] + aabb[3:]) * 0.5, (aabb[3:] - aabb[:3]) * 0.5
    outer = 2.0 ** (grid.levels - 1)
    return torch.cat([centre - half * outer, centre + half * outer])


def dense_steps(origins, directions, near, far, grid, step, cone_angle=0.0, max_step=math.inf,
                u=None):
    """Per ray, the list of every step (t_start, t_end) between the box entry and exit: the
    samples of a full grid, computed in the rays' dtype with the documented formulas."""
    box = fastfield.near_far_aabb(origins, directions, outer_box(grid, origins.dtype,
                                                                   origins.device))
    t_enter = torch.maximum(box.near, near)
    t_exit = torch.minimum(box.far, far)
    step_t = torch.tensor(step, dtype=origins.dtype, device=origins.device)
    rays = []
    for r in range(origins.shape[0]):
        if not (box.hit[r] and t_enter[r] < t_exit[r]):
            rays.append([])
            continue
        def dt(t):
            return (t * cone_angle).clamp(step, max_step) if cone_angle > 0 else step_t

        t_0 = t_enter[r] if u is None else t_enter[r] + u[r] * dt(t_enter[r])
        samples, k, t = [], 0, t_0
        while t < t_exit[r]:
            t_next = t + dt(t) if cone_angle > 0 else t_0 + (k + 1) * step_t
            samples.append((t, torch.minimum(t_next, t_exit[r])))
            k, t = k + 1, t_next
        rays.append(samples)
    return rays


def occupied_at(grid, points):
    """Whether each point [n, 3] lies in an occupied cell (the grid's documented lookup)."""
    aabb = grid.aabb.to(points.device, points.dtype)
    centre, half = (aabb[:3] + aabb[3:]) * 0.5, (aabb[3:] - aabb[:3]) * 0.5
    q = (points - centre) * (1 / half)
    extent = q.abs().amax(-1)
    level = torch.zeros_like(extent, dtype=torch.long)
    for level_index in range(1, grid.levels):
        level += extent > 2.0 ** (level_index - 1)
    inv_scale = 0.5 ** level.to(points.dtype)
    res = torch.tensor(grid.resolution, device=points.device)
    g = (q * inv_scale[:, None] + 1) * (res.to(points.dtype) * 0.5)
    index = torch.minimum(g.floor().clamp_min(0).long(), res - 1)
    occupancy = grid.occupancy()
    return occupancy[level, index[:, 0], index[:, 1], index[:, 2]]


def as_lists(samples, n_rays):
    """MarchedSamples -> per ray, the list of (t_start, t_end) as Python floats."""
    offsets = samples.ray_offsets.tolist()
    starts, ends = samples.t_starts.tolist(), samples.t_ends.tolist()
    return [list(zip(starts[offsets[r]:offsets[r + 1]], ends[offsets[r]:offsets[r + 1]]))
            for r in range(n_rays)]
