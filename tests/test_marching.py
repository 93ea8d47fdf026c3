"""march_rays: the kernels against the twin (bit for bit) and against the dense lattice they
thin out, on random, empty, full and cascaded grids, with special rays and both layouts."""
import math

import pytest
import torch

import fastfield
from fastfield import reference
from fastfield.core.packing import pack_bits
from marching_helpers import (F32, F64, as_lists, dense_steps, make_grid, make_rays,
                              occupied_at)

STEP = 0.05


def assert_same_samples(got, want):
    for name, a, b in zip(got._fields, got, want):
        assert a.dtype == b.dtype and a.shape == b.shape, (name, a.shape, b.shape)
        assert torch.equal(a.cpu(), b.cpu()), name


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("levels", [1, 3])
@pytest.mark.parametrize("cone_angle", [0.0, 0.04])
@pytest.mark.parametrize("jitter", [False, True])
def test_matches_twin_exactly(device, dtype, levels, cone_angle, jitter):
    grid = make_grid((8, 12, 16), levels, fraction=0.3, seed=levels, device=device)
    o, d, near, far = make_rays(300, device, dtype, seed=int(cone_angle * 100) + levels)
    u = torch.rand(300, generator=torch.Generator().manual_seed(5), dtype=dtype).to(device)
    u = u if jitter else None
    kwargs = dict(cone_angle=cone_angle, max_step=0.3, u=u)
    out = fastfield.march_rays(o, d, near, far, grid, STEP, **kwargs)
    assert out.t_starts.dtype == dtype and out.ray_offsets.shape == (301,)
    assert out.t_starts.shape[0] > 300  # the rays see something
    assert_same_samples(out, reference.march_rays(o, d, near, far, grid, STEP, **kwargs))
    capacity = int(out.n_valid) // 2
    fixed = fastfield.march_rays(o, d, near, far, grid, STEP, capacity=capacity, **kwargs)
    assert int(fixed.n_dropped) > 0
    assert_same_samples(fixed, reference.march_rays(o, d, near, far, grid, STEP,
                                                    capacity=capacity, **kwargs))


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("cone_angle", [0.0, 0.04])
def test_full_grid_gives_every_step_between_box_entry_and_exit(device, dtype, cone_angle):
    grid = make_grid(fraction=1.0, device=device)
    o, d, near, far = make_rays(80, device, dtype, seed=3)
    u = torch.rand(80, generator=torch.Generator().manual_seed(1), dtype=dtype).to(device)
    for jitter in (None, u):
        out = fastfield.march_rays(o, d, near, far, grid, STEP, cone_angle=cone_angle,
                                   max_step=0.3, u=jitter)
        dense = dense_steps(o, d, near, far, grid, STEP, cone_angle, 0.3, u=jitter)
        assert as_lists(out, 80) == [[(a.item(), b.item()) for a, b in ray] for ray in dense]
    # No jitter: contiguous steps that cover [t_enter, t_exit] exactly.
    for ray in as_lists(fastfield.march_rays(o, d, near, far, grid, STEP), 80):
        assert all(ray[i][1] == ray[i + 1][0] for i in range(len(ray) - 1))
    assert sum(len(ray) > 0 for ray in dense) > 40


@pytest.mark.parametrize("levels", [1, 2])
@pytest.mark.parametrize("cone_angle", [0.0, 0.04])
def test_random_grid_keeps_exactly_the_steps_whose_midpoint_cell_is_occupied(device, levels,
                                                                            cone_angle):
    """The DDA skips empty cells but never a step whose midpoint lies in an occupied one."""
    grid = make_grid((8, 8, 12), levels, fraction=0.25, seed=7, device=device)
    o, d, near, far = make_rays(150, device, F64, seed=11)
    full = make_grid((8, 8, 12), levels, fraction=1.0, device=device)
    dense = fastfield.march_rays(o, d, near, far, full, STEP, cone_angle=cone_angle)
    mid = (dense.t_starts + dense.t_ends) * 0.5
    points = o[dense.ray_indices] + mid[:, None] * d[dense.ray_indices]
    keep = occupied_at(grid, points)
    assert 0 < int(keep.sum()) < keep.shape[0]
    out = fastfield.march_rays(o, d, near, far, grid, STEP, cone_angle=cone_angle)
    assert torch.equal(out.t_starts, dense.t_starts[keep])
    assert torch.equal(out.t_ends, dense.t_ends[keep])
    assert torch.equal(out.ray_indices, dense.ray_indices[keep])


def test_empty_grid_gives_no_samples_and_background(device):
    grid = make_grid(fraction=0.0, device=device)
    o, d, near, far = make_rays(64, device, F32)
    for capacity in (None, 100):
        out = fastfield.march_rays(o, d, near, far, grid, STEP, capacity=capacity)
        assert int(out.n_valid) == 0 and int(out.n_dropped) == 0
        assert (out.t_ends == out.t_starts).all()  # padding only
        n = out.t_starts.shape[0]
        sigma = torch.full((n,), 5.0, device=device)
        composite = fastfield.composite_density(sigma, torch.rand(n, 3, device=device),
                                                out.t_ends - out.t_starts, out.t_starts,
                                                out.ray_offsets, (0.2, 0.4, 0.6))
        expected = torch.tensor([0.2, 0.4, 0.6], device=device).expand(64, 3)
        assert torch.equal(composite.rgb, expected) and (composite.acc == 0).all()


def test_special_rays(device):
    grid = make_grid((4, 4, 4), fraction=1.0, aabb=(0, 0, 0, 1, 1, 1), device=device)
    rays = [  # origin, direction, near, far, expected (t_enter, t_exit) or None
        ((-1, 0.5, 0.5), (1, 0, 0), 0.0, 8.0, (1.0, 2.0)),      # through, along x
        ((0.5, 0.5, 0.5), (0, 0, 1), 0.0, 8.0, (0.0, 0.5)),     # starts inside
        ((0.5, 0.5, 0.5), (0, 0, 1), 0.25, 0.375, (0.25, 0.375)),  # [near, far] inside the box
        ((-1, 2.0, 0.5), (1, 0, 0), 0.0, 8.0, None),            # misses
        ((2, 0.5, 0.5), (1, 0, 0), 0.0, 8.0, None),             # box behind
        ((-1, 0.5, 0.5), (1, 0, 0), 1.5, 1.5, None),            # near == far
        ((-1, 0.5, 0.5), (1, 0, 0), 1.6, 1.2, None),            # near > far
        ((0.5, 0.5, 0.5), (0, 0, 0), 0.0, math.inf, None),      # zero direction: no finite end
        ((math.nan, 0.5, 0.5), (1, 0, 0), 0.0, 8.0, None),      # NaN origin
        ((-1, 0.5, 0.5), (1, 0, 0), math.nan, 8.0, None),       # NaN near
    ]
    cols = [torch.tensor([r[i] for r in rays], dtype=F64, device=device) for i in range(4)]
    out = fastfield.march_rays(*cols, grid, 0.125)
    assert_same_samples(out, reference.march_rays(*cols, grid, 0.125))
    for ray, samples in zip(rays, as_lists(out, len(rays))):
        if ray[4] is None:
            assert samples == [], ray
            continue
        t_enter, t_exit = ray[4]
        n = math.ceil((t_exit - t_enter) / 0.125)
        assert samples == [(t_enter + k * 0.125, min(t_enter + (k + 1) * 0.125, t_exit))
                           for k in range(n)], ray


def test_cascades_mark_only_their_own_cells(device):
    """Level 0 empty and level 1 full: samples exactly where midpoints lie outside the level-0
    box, a gap of the box's width on a ray through its centre."""
    grid = make_grid((8, 8, 8), levels=2, fraction=0.0, aabb=(-1, -1, -1, 1, 1, 1), device=device)
    occupancy = grid.occupancy()
    occupancy[1] = True
    grid.bitfield.copy_(pack_bits(occupancy))
    o = torch.tensor([[-5.0, 0.01, 0.02]], dtype=F64, device=device)
    d = torch.tensor([[1.0, 0.0, 0.0]], dtype=F64, device=device)
    out = fastfield.march_rays(o, d, 0.0, 20.0, grid, 0.0625)
    mid = (out.t_starts + out.t_ends) * 0.5 - 5.0  # x of each midpoint
    assert (mid.abs() > 1).all() and mid.min() < -1.9 and mid.max() > 1.9
    assert out.t_starts.shape[0] == 2 * 16  # [-2, -1] and [1, 2] in steps of 1/16
    o, d, near, far = make_rays(200, device, F64, seed=4)
    out = fastfield.march_rays(o, d, near, far, grid, STEP)
    points = o[out.ray_indices] + ((out.t_starts + out.t_ends) * 0.5)[:, None] * d[out.ray_indices]
    assert (points.abs().amax(-1) > 1).all() and (points.abs().amax(-1) <= 2).all()
    assert_same_samples(out, reference.march_rays(o, d, near, far, grid, STEP))


def test_max_steps_bounds_every_ray(device):
    grid = make_grid(fraction=1.0, device=device)
    o, d, near, far = make_rays(50, device, F32, seed=2)
    full = fastfield.march_rays(o, d, near, far, grid, 1e-3)
    capped = fastfield.march_rays(o, d, near, far, grid, 1e-3, max_steps=100)
    counts = full.ray_offsets.diff()
    assert counts.max() > 100
    assert torch.equal(capped.ray_offsets.diff(), counts.clamp(max=100))
    assert_same_samples(capped, reference.march_rays(o, d, near, far, grid, 1e-3, max_steps=100))


def test_fixed_capacity_equals_exact_when_it_fits(device):
    grid = make_grid(levels=2, fraction=0.4, seed=3, device=device)
    o, d, near, far = make_rays(120, device, F32, seed=8)
    exact = fastfield.march_rays(o, d, near, far, grid, STEP)
    n = int(exact.n_valid)
    for capacity in (n, n + 57):
        fixed = fastfield.march_rays(o, d, near, far, grid, STEP, capacity=capacity)
        assert fixed.t_starts.shape == (capacity,) and int(fixed.n_valid) == n
        assert int(fixed.n_dropped) == 0
        assert torch.equal(fixed.ray_offsets[:-1], exact.ray_offsets[:-1])
        assert int(fixed.ray_offsets[-1]) == capacity
        for a, b in ((fixed.t_starts, exact.t_starts), (fixed.t_ends, exact.t_ends),
                     (fixed.ray_indices, exact.ray_indices)):
            assert torch.equal(a[:n], b)
        assert (fixed.t_starts[n:] == 0).all() and (fixed.t_ends[n:] == 0).all()
        assert (fixed.ray_indices[n:] == 119).all()
        # The packed compositing ops take the padded buffer as it is: same image.
        images = []
        for s in (exact, fixed):
            sigma = 3.0 + s.t_starts.sin()
            images.append(fastfield.composite_density(sigma, torch.sigmoid(s.t_starts)[:, None]
                                                      .expand(-1, 3).contiguous(),
                                                      s.t_ends - s.t_starts, s.t_starts,
                                                      s.ray_offsets, (1.0, 1.0, 1.0)))
        for a, b in zip(images[0][:3], images[1][:3]):
            assert torch.equal(a, b)


def test_fixed_capacity_drops_whole_rays_and_counts_them(device):
    grid = make_grid(fraction=0.5, seed=9, device=device)
    o, d, near, far = make_rays(90, device, F64, seed=6)
    exact = fastfield.march_rays(o, d, near, far, grid, STEP)
    counts = exact.ray_offsets.diff().tolist()
    per_ray = as_lists(exact, 90)
    for capacity in (0, 1, int(exact.n_valid) // 3, int(exact.n_valid) - 1):
        fixed = fastfield.march_rays(o, d, near, far, grid, STEP, capacity=capacity)
        # The documented rule, walked ray by ray: keep places while rays end within the
        # capacity; then empty ranges, except the last ray, which owns the rest.
        expected, end, fitting = [], 0, True
        for r, count in enumerate(counts):
            fitting = fitting and end + count <= capacity
            room = capacity - end if r == len(counts) - 1 else (count if fitting else 0)
            expected.append(per_ray[r] if count <= room else [])
            end += count if fitting else 0
        got = [[s for s in ray if s[1] > s[0]] for ray in as_lists(fixed, 90)]  # no padding
        assert got == expected
        dropped = sum(1 for r in range(90) if counts[r] > 0 and expected[r] == [])
        assert int(fixed.n_dropped) == dropped > 0
        assert int(fixed.n_valid) == sum(len(ray) for ray in expected)
