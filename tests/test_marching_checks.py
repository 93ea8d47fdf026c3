"""march_rays: bad input, the kernels' guards with value checks off, opcheck, torch.compile,
no autograd, and CUDA against CPU."""
import math
import types

import pytest
import torch

import fastfield
from fastfield import reference
from fastfield.core.packing import exclusive_offsets, fixed_capacity_layout
from fastfield.ops import marching  # noqa: F401  (loads the kernels, registers the fake functions)
from marching_helpers import F32, F64, make_grid, make_rays

STEP = 0.05


def raw_args(grid, o, d, near, far, u=None, step=STEP, cone=0.0, max_step=math.inf,
             max_steps=1 << 16):
    return (o, d, near, far, u, grid.bitfield, grid.aabb.to(o.dtype), list(grid.resolution),
            grid.levels, step, cone, max_step, max_steps)


def test_bad_input(device):
    grid = make_grid(device=device)
    o, d, near, far = make_rays(10, device, F32)
    march = fastfield.march_rays
    fields = dict(bitfield=grid.bitfield, aabb=grid.aabb, resolution=(8, 12, 16), levels=1)

    def grid_with(**changes):
        return types.SimpleNamespace(**{**fields, **changes})

    with pytest.raises(ValueError, match=r"march_rays_count: bitfield must be "
                                         r"\[ceil\(levels \* rx \* ry \* rz / 8\)\] = \[192\]"):
        march(o, d, near, far, grid_with(bitfield=grid.bitfield[:-1]), STEP)
    with pytest.raises(TypeError, match="bitfield must be uint8"):
        march(o, d, near, far, grid_with(bitfield=grid.bitfield.int()), STEP)
    with pytest.raises(ValueError, match=r"bitfield must be .* got \[192, 1\]"):
        march(o, d, near, far, grid_with(bitfield=grid.bitfield[:, None]), STEP)
    with pytest.raises(ValueError, match=r"resolution must be 3 ints"):
        march(o, d, near, far, grid_with(resolution=(8, 12)), STEP)
    with pytest.raises(ValueError, match="multiple of 4"):
        march(o, d, near, far, grid_with(resolution=(6, 8, 8), levels=2), STEP)
    with pytest.raises(TypeError, match="grid must be an OccupancyGrid"):
        march(o, d, near, far, grid.bitfield, STEP)
    for step in (0.0, -0.1, math.nan, math.inf):
        with pytest.raises(ValueError, match="step_size must be a positive finite number"):
            march(o, d, near, far, grid, step)
    with pytest.raises(ValueError, match="cone_angle must be a finite number >= 0"):
        march(o, d, near, far, grid, STEP, cone_angle=-0.1)
    with pytest.raises(ValueError, match="max_step must be >= step_size"):
        march(o, d, near, far, grid, STEP, max_step=0.01)
    with pytest.raises(ValueError, match="max_steps must be >= 1"):
        march(o, d, near, far, grid, STEP, max_steps=0)
    with pytest.raises(ValueError, match=r"max_steps must be in \[1, 16777216\]"):
        march(o, d, near, far, grid, STEP, max_steps=1 << 25)
    with pytest.raises(ValueError, match="capacity must be >= 0"):
        march(o, d, near, far, grid, STEP, capacity=-1)
    with pytest.raises(ValueError, match=r"origins must be \[n_rays, 3\]"):
        march(o[:, :2], d, near, far, grid, STEP)
    with pytest.raises(ValueError, match=r"near must be \[n_rays\]"):
        march(o, d, near[:3], far, grid, STEP)
    with pytest.raises(ValueError, match=r"u must be \[n_rays\]"):
        march(o, d, near, far, grid, STEP, u=near[:3])
    with pytest.raises(TypeError, match="directions must have the dtype of origins"):
        march(o, d.double(), near, far, grid, STEP)
    with pytest.raises(TypeError, match="origins must be float32 or float64"):
        march(o.long(), d.long(), near, far, grid, STEP)
    flat = grid_with(aabb=torch.tensor([0.0, 0, 0, 1, 0, 1], device=device))
    if device.type == "cpu":  # a value check: on CUDA it would cost a synchronisation
        with pytest.raises(ValueError, match=r"aabb must have min < max on every axis, got "
                                             r"aabb\[1\] = 0 and aabb\[4\] = 0"):
            march(o, d, near, far, flat, STEP)
    with pytest.raises(ValueError, match="aabb must have min < max"):
        fastfield.OccupancyGrid((0, 0, 0, 1, -1, 1))


def test_fill_checks_its_offsets():
    grid = make_grid()
    o, d, near, far = make_rays(4, "cpu", F32)
    fill = torch.ops.fastfield.march_rays_fill
    args = raw_args(grid, o, d, near, far)
    with pytest.raises(ValueError, match=r"ray_offsets\[-1\] must equal the number of samples"):
        fill(*args, torch.tensor([0, 1, 2, 3, 4]), 5)
    with pytest.raises(ValueError, match="ray_offsets must be non-decreasing"):
        fill(*args, torch.tensor([0, 3, 2, 3, 4]), 4)
    with pytest.raises(ValueError, match=r"ray_offsets must be \[n_rays \+ 1\]"):
        fill(*args, torch.tensor([0, 1, 4]), 4)
    with pytest.raises(TypeError, match="ray_offsets must be int64"):
        fill(*args, torch.tensor([0, 1, 2, 3, 4], dtype=torch.int32), 4)


def test_unchecked_kernels_stay_in_bounds_and_terminate(unchecked_values):
    """With value checks off (CUDA's default), invalid offsets, boxes and rays must neither read
    nor write out of bounds nor loop without end."""
    o, d, near, far = make_rays(40, "cpu", F64, seed=1)
    o[0] = math.nan
    d[1] = 0.0
    far[2] = math.inf
    o[3] = 1e30
    for box in ((0, 0, 0, 1, 0, 1), (1, 1, 1, -1, -1, -1), (0, 0, 0, math.inf, 1, 1),
                (math.nan, 0, 0, 1, 1, 1)):
        grid = types.SimpleNamespace(bitfield=torch.full((24,), 255, dtype=torch.uint8),
                                     aabb=torch.tensor(box, dtype=F64), resolution=(4, 4, 4),
                                     levels=3)
        args = raw_args(grid, o, d, near, far, max_steps=5000)
        counts = torch.ops.fastfield.march_rays_count(*args)
        assert (counts >= 0).all() and (counts <= 5000).all()
        for offsets in (exclusive_offsets(counts), torch.tensor([0, 5, 2] + [-7] * 37 + [1 << 40]),
                        torch.zeros(41, dtype=torch.long)):
            capacity = 100
            starts, ends, ids = torch.ops.fastfield.march_rays_fill(*args, offsets, capacity)
            assert starts.shape == (100,) and ((ids >= 0) & (ids < 40)).all()
    # NaN rays get no samples, also unchecked.
    grid = make_grid(fraction=1.0)
    counts = torch.ops.fastfield.march_rays_count(*raw_args(grid, o, d, near, far))
    assert counts[0] == 0 and counts[3] == 0


def test_opcheck(device):
    grid = make_grid(levels=2, resolution=(8, 8, 8), fraction=0.5, device=device)
    o, d, near, far = make_rays(20, device, F64, seed=3)
    u = torch.rand(20, dtype=F64, device=device)
    args = raw_args(grid, o, d, near, far, u=u, cone=0.02, max_step=0.2)
    torch.library.opcheck(torch.ops.fastfield.march_rays_count, args)
    counts = torch.ops.fastfield.march_rays_count(*args)
    offsets = exclusive_offsets(counts)
    torch.library.opcheck(torch.ops.fastfield.march_rays_fill,
                          args + (offsets, int(offsets[-1])))
    small = fixed_capacity_layout(counts, 7)  # rays dropped, padding
    torch.library.opcheck(torch.ops.fastfield.march_rays_fill, args + (small.ray_offsets, 7))


def test_torch_compile_fullgraph_fixed_capacity():
    grid = make_grid(levels=2, resolution=(8, 8, 8), fraction=0.5)
    o, d, near, far = make_rays(64, "cpu", F32, seed=5)

    def render(o, d, u):
        s = fastfield.march_rays(o, d, near, far, grid, STEP, u=u, capacity=900)
        sigma = torch.ones_like(s.t_starts)
        rgb = torch.sigmoid(s.t_starts)[:, None].expand(-1, 3).contiguous()
        out = fastfield.composite_density(sigma, rgb, s.t_ends - s.t_starts, None, s.ray_offsets)
        return out.rgb, s.n_dropped

    u = torch.rand(64)
    compiled = torch.compile(render, fullgraph=True, backend="eager")
    got, want = compiled(o, d, u), render(o, d, u)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_not_differentiable():
    grid = make_grid(fraction=1.0)
    o, d, near, far = make_rays(8, "cpu", F64)
    o.requires_grad_()
    out = fastfield.march_rays(o, d, near, far, grid, STEP)
    with pytest.raises(RuntimeError, match="not implemented"):
        out.t_starts.sum().backward()


def test_cuda_matches_cpu_and_twin(cuda):
    for levels, cone in ((1, 0.0), (3, 0.03)):
        grid = make_grid(levels=levels, fraction=0.3, seed=levels)
        for dtype in (F32, F64):
            o, d, near, far = make_rays(4000, "cpu", dtype, seed=levels)
            u = torch.rand(4000, dtype=dtype)
            cpu = fastfield.march_rays(o, d, near, far, grid, STEP, cone_angle=cone, u=u)
            on_gpu = [x.to(cuda) for x in (o, d, near, far, u)]
            gpu = fastfield.march_rays(*on_gpu[:4], grid.to(cuda), STEP, cone_angle=cone,
                                       u=on_gpu[4])
            twin = reference.march_rays(*on_gpu[:4], grid, STEP, cone_angle=cone, u=on_gpu[4])
            for a, b, c in zip(gpu, cpu, twin):
                assert torch.equal(a.cpu(), b) and torch.equal(c.cpu(), b)
            grid = grid.cpu()


def test_cuda_fixed_capacity_makes_no_synchronisation(cuda):
    grid = make_grid(levels=2, resolution=(8, 8, 8), fraction=0.5, device=cuda)
    o, d, near, far = make_rays(256, cuda, F32, seed=5)
    fastfield.march_rays(o, d, near, far, grid, STEP, capacity=4096)  # warm-up: kernels load
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = fastfield.march_rays(o, d, near, far, grid, STEP, capacity=4096)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert int(out.n_valid) > 0
