"""OccupancyGrid: what update marks, its moving maximum and threshold, the cells it draws, the bit
order the kernels read, synchronisation-free updates, checkpoints, bad arguments."""
import io
import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import fastfield
from fastfield import OccupancyGrid
from fastfield.core.packing import pack_bits

BOX = (-1.5, -1.5, -1.5, 1.5, 1.5, 1.5)
RADIUS = 0.8


def ball(points):
    """An analytic field: density 50 inside the ball of radius 0.8 at the origin, 0 outside."""
    return 50.0 * (points.norm(dim=-1) < RADIUS).float()


def cell_centres(grid, level):
    index = torch.stack(torch.meshgrid(*[torch.arange(r) for r in grid.resolution],
                                       indexing="ij"), -1).float()
    cell = torch.tensor(grid.resolution).float()
    size = (grid.aabb[3:] - grid.aabb[:3]) * 2 ** level / cell
    lower = (grid.aabb[:3] + grid.aabb[3:]) * 0.5 - (grid.aabb[3:] - grid.aabb[:3]) * 2 ** level / 2
    return lower + (index + 0.5) * size, float(size.norm()) / 2  # centres, half diagonal


@pytest.mark.parametrize("levels,resolution", [(1, 24), (2, (16, 16, 20))])
def test_update_marks_the_support_of_a_ball_and_nothing_else(device, levels, resolution):
    grid = OccupancyGrid(BOX, resolution, levels=levels).to(device)
    generator = torch.Generator(device).manual_seed(0)
    states = []
    for step in range(0, 512, 16):  # warm-up (every cell) up to 256, then drawn subsets
        assert grid.update(step, ball, generator=generator)
        assert not grid.update(step + 1, ball, generator=generator)  # only every 16 steps
        if step in (240, 496):  # the end of the warm-up, and after 16 drawn updates
            states.append(grid.occupancy().cpu())
    # Cells wholly inside the ball (centre within RADIUS - half a cell diagonal) are occupied,
    # cells wholly outside are not; cells the sphere cuts may be either.
    for occupancy in states:
        for level in range(levels):
            centres, half_diagonal = cell_centres(grid.cpu(), level)
            distance = centres.norm(dim=-1)
            inside, outside = distance < RADIUS - half_diagonal, distance > RADIUS + half_diagonal
            assert inside.any() and outside.any() and (~inside & ~outside).any()
            assert occupancy[level][inside].all(), level
            assert not occupancy[level][outside].any(), level


def test_moving_maximum_and_threshold():
    grid = OccupancyGrid(BOX, 8, step_size=0.01, warmup_steps=100)
    old = torch.rand(1, 8, 8, 8, generator=torch.Generator().manual_seed(0)) * 4
    grid.density.copy_(old)
    grid.update(0, lambda x: torch.full((x.shape[0],), 2.0))  # warm-up: every cell drawn
    assert torch.equal(grid.density, torch.maximum(old * 0.95, torch.tensor(2.0)))
    # min(threshold / step_size, mean): here 0.01 / 0.01 = 1 is below the mean ...
    assert bool((grid.density.mean() > 1.0)) and torch.equal(grid.occupancy(), grid.density > 1.0)
    # ... and here the mean is lower: 0.01 / 1e-4 = 100.
    grid = OccupancyGrid(BOX, 8, step_size=1e-4)
    grid.update(0, lambda x: 60.0 * (x[:, 0] > 0).float())
    assert torch.equal(grid.occupancy(), grid.density > grid.density.mean())
    assert grid.occupancy().float().mean() == 0.5


def test_after_warmup_cells_are_drawn_uniformly_plus_among_the_occupied():
    grid = OccupancyGrid(BOX, 16, levels=2, warmup_steps=0)
    generator = torch.Generator().manual_seed(3)
    n = grid.cells_per_level
    occupied = torch.zeros(2, n, dtype=torch.bool)
    occupied[0, [5, 77, 300, 4095]] = True  # level 1 has none: its second half is uniform
    grid.bitfield.copy_(pack_bits(occupied))
    cells = grid._draw_cells(16, generator)
    assert cells.shape == (2, 2 * (n // 4)) and cells.min() >= 0 and cells.max() < n
    among = cells[0, n // 4:]
    assert set(among.tolist()) == {5, 77, 300, 4095}
    counts = torch.bincount(among, minlength=n)[[5, 77, 300, 4095]].float()
    assert (counts / counts.mean() - 1).abs().max() < 0.2  # 1024 draws over 4 cells
    for half in (cells[0, :n // 4], cells[1]):  # uniform: every part of the level
        assert torch.bincount(half // (n // 8), minlength=8).min() > 0.5 * half.numel() / 8


def test_bit_order_is_what_the_kernels_read():
    """One occupied cell (level 1, i, j, k): bit n & 7 of byte n >> 3 with n its flat index,
    and march_rays samples exactly that cell."""
    grid = OccupancyGrid(BOX, (4, 8, 12), levels=2)
    level, i, j, k = 1, 3, 5, 7
    n = level * 4 * 8 * 12 + (i * 8 + j) * 12 + k
    occupancy = torch.zeros(2, 4, 8, 12, dtype=torch.bool)
    occupancy[level, i, j, k] = True
    grid.bitfield.copy_(pack_bits(occupancy))
    expected = torch.zeros_like(grid.bitfield)
    expected[n >> 3] = 1 << (n & 7)
    assert torch.equal(grid.bitfield, expected) and torch.equal(grid.occupancy(), occupancy)
    centre = grid.cell_points(torch.tensor([[0], [(i * 8 + j) * 12 + k]]),
                              torch.full((2, 1, 3), 0.5))[level, 0]
    origins = torch.stack([centre - torch.tensor([10.0, 0, 0]), centre + torch.tensor([0, 9, 0])])
    directions = torch.tensor([[1.0, 0, 0], [0, -1.0, 0]])
    out = fastfield.march_rays(origins, directions, 0.0, 20.0, grid, 0.01)
    points = origins[out.ray_indices] + ((out.t_starts + out.t_ends) / 2)[:, None] * directions[
        out.ray_indices]
    size = (grid.aabb[3:] - grid.aabb[:3]) * 2 / torch.tensor([4.0, 8, 12])
    assert out.ray_offsets.diff().tolist() == [round(float(size[0]) / 0.01),
                                               round(float(size[1]) / 0.01)]
    assert ((points - centre).abs() <= size / 2 + 1e-5).all()


class NoSynchronisation(TorchDispatchMode):
    """Fails on the operators that make the host wait for the device: .item(), bool(), int()
    (aten._local_scalar_dense), nonzero, masked_select, and indexing with a boolean mask (which
    calls nonzero below the dispatcher). .tolist() and .numpy() bypass the dispatcher: the
    fullgraph compile test below refuses those."""
    FORBIDDEN = ("aten._local_scalar_dense", "aten.nonzero", "aten.masked_select",
                 "aten.equal", "aten.is_nonzero")
    INDEXING = ("aten.index", "aten.index_put", "aten.index_put_", "aten._index_put_impl_")

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func.overloadpacket)
        masks = name in self.INDEXING and any(
            isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)
            for i in (args[1] or ()))
        if name in self.FORBIDDEN or masks:
            raise AssertionError(f"synchronising operator {name}")
        return func(*args, **(kwargs or {}))


def test_the_detector_catches_synchronisations():
    x = torch.rand(10)
    y = torch.zeros(10)
    for sync in (lambda: x.sum().item(), lambda: x[x > 0.5], lambda: bool(x.any()),
                 lambda: y.__setitem__(x > 0.5, 1.0), lambda: x.nonzero()):
        with pytest.raises(AssertionError, match="synchronising operator"):
            with NoSynchronisation():
                sync()


def test_update_is_synchronisation_free():
    grid = OccupancyGrid(BOX, 16, levels=2, warmup_steps=32)
    generator = torch.Generator().manual_seed(0)
    with NoSynchronisation():
        for step in (0, 16, 32, 48):  # warm-up and drawn subsets
            grid.update(step, ball, generator=generator)
    assert grid.occupancy().any()


def test_update_compiles_fullgraph():
    """torch.compile(fullgraph=True) refuses graph breaks, .item() and data-dependent shapes."""
    grid = OccupancyGrid(BOX, 8, levels=2, warmup_steps=0)
    reference = OccupancyGrid(BOX, 8, levels=2, warmup_steps=0)
    update = torch.compile(grid.update, fullgraph=True, backend="eager")
    torch.manual_seed(4)
    update(16, ball)
    torch.manual_seed(4)
    reference.update(16, ball)
    assert torch.equal(grid.density, reference.density)
    assert torch.equal(grid.bitfield, reference.bitfield)


def test_cuda_update_makes_no_synchronisation(cuda):
    grid = OccupancyGrid(BOX, 32, levels=2, warmup_steps=16).to(cuda)
    grid.update(0, ball)
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step in (16, 32):
            grid.update(step, ball)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_density_fn_is_called_in_chunks():
    grid = OccupancyGrid(BOX, (8, 12, 12), levels=2, chunk=300)
    sizes = []
    grid.update(0, lambda x: (sizes.append(x.shape[0]), ball(x))[1])
    assert max(sizes) == 300 and sum(sizes) == 2 * 8 * 12 * 12
    with pytest.raises(ValueError, match=r"density_fn must return one density per point"):
        grid.update(16, lambda x: ball(x)[:-1])


def test_state_dict_round_trip_keeps_the_grid():
    grid = OccupancyGrid(BOX, (8, 8, 12), levels=2)
    grid.update(0, ball, generator=torch.Generator().manual_seed(1))
    buffer = io.BytesIO()
    torch.save(grid.state_dict(), buffer)
    buffer.seek(0)
    restored = OccupancyGrid(BOX, (8, 8, 12), levels=2)
    assert not torch.equal(restored.bitfield, grid.bitfield)
    restored.load_state_dict(torch.load(buffer))
    for name in ("aabb", "density", "bitfield"):
        assert torch.equal(getattr(restored, name), getattr(grid, name)), name
    o = torch.randn(100, 3) * 3
    a = fastfield.march_rays(o, -o, 0.0, 10.0, grid, 0.02)
    b = fastfield.march_rays(o, -o, 0.0, 10.0, restored, 0.02)
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and 0 < int(a.n_valid)
    with pytest.raises(RuntimeError, match="size mismatch"):
        OccupancyGrid(BOX, 8, levels=2).load_state_dict(grid.state_dict())


def test_bad_arguments():
    cases = [
        (dict(aabb=(0, 0, 0, 1, 1)), "aabb must be 6 finite numbers"),
        (dict(aabb=(0, 0, 0, 1, math.nan, 1)), "aabb must be 6 finite numbers"),
        (dict(aabb=(0, 0, 0, 0, 1, 1)), r"aabb must have min < max"),
        (dict(resolution=0), "resolution must be >= 1"),
        (dict(resolution=(4, 4)), "resolution must be an int or 3 ints"),
        (dict(resolution=(4, 6, 8), levels=2), "multiple of 4"),
        (dict(levels=0), "levels must be >= 1"),
        (dict(levels=17), "levels must be <= 16"),
        (dict(step_size=0.0), "step_size must be a positive finite number"),
        (dict(step_size=-1), "step_size must be a positive finite number"),
        (dict(threshold=math.inf), "threshold must be a positive finite number"),
        (dict(decay=1.5), r"decay must be in \[0, 1\]"),
    ]
    for changes, message in cases:
        kwargs = {"aabb": BOX, "resolution": 8, **changes}
        with pytest.raises(ValueError, match=message):
            OccupancyGrid(**kwargs)
    with pytest.raises(TypeError, match="resolution must be an int"):
        OccupancyGrid(BOX, 8.5)
    with pytest.raises(ValueError, match="step must be >= 0"):
        OccupancyGrid(BOX, 8).update(-16, ball)
