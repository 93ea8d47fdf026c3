"""OccupancyGrid: which cells of a box hold anything to see, kept up to date from the field's
density during training (instant-ngp's density grid, nerfacc's OccGridEstimator), for
``fastfield.march_rays`` to skip the rest."""
import math
import numbers
from typing import Callable, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ..core.checks import int_at_least
from ..core.packing import pack_bits, unpack_bits

DensityFn = Callable[[Tensor], Tensor]

__all__ = ["OccupancyGrid"]


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"OccupancyGrid: {name} must be a positive finite number, got {value!r}")
    return float(value)


def _box(aabb) -> Tensor:
    box = torch.as_tensor(aabb, dtype=torch.float64).detach().cpu()
    if box.shape != (6,) or not bool(torch.isfinite(box).all()):
        raise ValueError("OccupancyGrid: aabb must be 6 finite numbers (xmin, ymin, zmin, xmax, "
                         f"ymax, zmax), got {aabb!r}")
    if not bool((box[:3] < box[3:]).all()):
        raise ValueError(f"OccupancyGrid: aabb must have min < max on every axis, got "
                         f"{box.tolist()}")
    return box.float()


def _resolution(resolution, levels: int) -> Tuple[int, int, int]:
    if isinstance(resolution, numbers.Integral):
        values = [resolution] * 3
    elif isinstance(resolution, (Sequence, Tensor)):
        values = list(resolution)
    else:
        raise TypeError("OccupancyGrid: resolution must be an int or 3 ints, got "
                        f"{type(resolution).__name__}")
    if len(values) != 3:
        raise ValueError(f"OccupancyGrid: resolution must be an int or 3 ints, got {resolution!r}")
    values = [int_at_least("OccupancyGrid", "resolution", r, 1) for r in values]
    if levels > 1 and any(r % 4 for r in values):
        raise ValueError("OccupancyGrid: with levels > 1 the resolution must be a multiple of 4 "
                         "on every axis (each level's box on cell faces of the next), got "
                         f"{values}")
    return tuple(values)


class OccupancyGrid(nn.Module):
    """A binary occupancy bitfield plus the float density grid it is thresholded from, over the
    box ``aabb`` with optional cascades.

    Level 0 is the box itself, ``resolution`` cells per axis; level l (up to ``levels`` - 1)
    covers the box scaled by 2^l about its centre with as many cells (instant-ngp's cascades,
    for scenes that extend past the box). A point belongs to the finest level that contains it.
    The state is three buffers, saved with the model (state_dict, checkpoints): ``aabb``
    float32 [6], ``density`` float32 [levels, rx, ry, rz] (an exponential moving maximum of the
    field's density) and ``bitfield`` uint8 [ceil(levels rx ry rz / 8)], cell n (the flat index
    of ``density``) at bit n & 7 of byte n >> 3, least significant bit first
    (csrc/marching/marching.h reads the same bits). Until the first ``update`` every cell is
    occupied.

    ``update`` marks a cell occupied when its density exceeds min(threshold / step_size, the
    mean density of the grid): the threshold is stated, as in instant-ngp and nerfacc, in units
    of density times the render step size (the opacity 1 - exp(-0.01) ~ 1% of one step), so
    ``step_size`` must be the step the renderer marches with.

    Args:
        aabb: (xmin, ymin, zmin, xmax, ymax, zmax) with min < max.
        resolution: cells per axis, an int or (rx, ry, rz); multiples of 4 when levels > 1.
        levels: cascade levels (1: the box only).
        step_size: the render step size; default: the box diagonal / 1024.
        threshold: density x step size above which a cell is occupied (0.01).
        decay: the moving maximum's decay per update (0.95).
        warmup_steps: updates before this step evaluate every cell (256).
        update_every: ``update`` acts only when step % update_every == 0 (16).
        chunk: points per call of the density function (bounds its memory).
    """

    def __init__(self, aabb: Union[Sequence[float], Tensor],
                 resolution: Union[int, Sequence[int]] = 128, levels: int = 1,
                 step_size: Optional[float] = None, threshold: float = 0.01, decay: float = 0.95,
                 warmup_steps: int = 256, update_every: int = 16, chunk: int = 1 << 17):
        super().__init__()
        box = _box(aabb)
        self.levels = int_at_least("OccupancyGrid", "levels", levels, 1)
        if self.levels > 16:
            raise ValueError(f"OccupancyGrid: levels must be <= 16, got {levels}")
        self.resolution = _resolution(resolution, self.levels)
        diagonal = float((box[3:] - box[:3]).norm())
        self.step_size = _positive("step_size", diagonal / 1024 if step_size is None else step_size)
        self.threshold = _positive("threshold", threshold)
        if not (isinstance(decay, numbers.Real) and 0.0 <= decay <= 1.0):
            raise ValueError(f"OccupancyGrid: decay must be in [0, 1], got {decay!r}")
        self.decay = float(decay)
        self.warmup_steps = int_at_least("OccupancyGrid", "warmup_steps", warmup_steps, 0)
        self.update_every = int_at_least("OccupancyGrid", "update_every", update_every, 1)
        self.chunk = int_at_least("OccupancyGrid", "chunk", chunk, 1)
        self.cells_per_level = math.prod(self.resolution)
        self.register_buffer("aabb", box)
        self.register_buffer("density", torch.zeros(self.levels, *self.resolution))
        self.register_buffer("bitfield", pack_bits(torch.ones(self.levels * self.cells_per_level,
                                                              dtype=torch.bool)))

    def extra_repr(self) -> str:
        return (f"aabb={self.aabb.tolist()}, resolution={self.resolution}, levels={self.levels}, "
                f"step_size={self.step_size:.4g}, threshold={self.threshold}")

    def occupancy(self) -> Tensor:
        """The bitfield unpacked: bool [levels, rx, ry, rz]."""
        n = self.levels * self.cells_per_level
        return unpack_bits(self.bitfield, n).view(self.levels, *self.resolution)

    def cell_points(self, cells: Tensor, jitter: Tensor) -> Tensor:
        """World positions [levels, m, 3] of points in cells: ``cells`` [levels, m] flat indices
        within each level, ``jitter`` [levels, m, 3] in [0, 1) the position inside the cell
        (0.5: its centre)."""
        ry, rz = self.resolution[1], self.resolution[2]
        index = torch.stack([cells // (ry * rz), (cells // rz) % ry, cells % rz], -1)
        half_res = torch.tensor(self.resolution, dtype=torch.float32, device=cells.device) * 0.5
        scale = 2.0 ** torch.arange(self.levels, dtype=torch.float32, device=cells.device)
        centre = (self.aabb[:3] + self.aabb[3:]) * 0.5
        half = (self.aabb[3:] - self.aabb[:3]) * 0.5
        return centre + ((index + jitter) / half_res - 1) * scale[:, None, None] * half

    def _draw_cells(self, step: int, generator: Optional[torch.Generator]) -> Tensor:
        """Flat cell indices [levels, m] to evaluate: every cell during the warm-up, then a
        quarter of the cells uniformly plus as many drawn among the occupied ones."""
        n, device = self.cells_per_level, self.density.device
        if step < self.warmup_steps:
            return torch.arange(n, device=device).expand(self.levels, n)
        m = max(n // 4, 1)
        uniform = torch.randint(n, (2, self.levels, m), generator=generator, device=device)
        # Uniform ranks among each level's occupied cells, mapped to cells through a table
        # filled by one scatter (rank of an occupied cell -> the cell): fixed sizes throughout,
        # no nonzero() whose size the host would have to learn, no search.
        occupied = self.occupancy().view(self.levels, n)
        rank = occupied.long().cumsum(1) - 1
        total = rank[:, -1:] + 1
        cell_of_rank = torch.zeros(self.levels, n + 1, dtype=torch.long, device=device)
        cell_of_rank.scatter_(1, torch.where(occupied, rank, n),
                              torch.arange(n, device=device).expand(self.levels, n))
        u = torch.rand(self.levels, m, generator=generator, dtype=torch.float64, device=device)
        drawn = (u * total).long().clamp(max=n - 1)
        drawn = torch.where(total > 0, cell_of_rank.gather(1, drawn), uniform[1])
        return torch.cat([uniform[0], drawn], 1)

    def _evaluate(self, density_fn: DensityFn, points: Tensor) -> Tensor:
        values = []
        for chunk in points.split(self.chunk):
            sigma = density_fn(chunk)
            if not isinstance(sigma, Tensor) or sigma.numel() != chunk.shape[0]:
                raise ValueError("OccupancyGrid.update: density_fn must return one density per "
                                 f"point ([{chunk.shape[0]}] or [{chunk.shape[0]}, 1]), got "
                                 f"{getattr(sigma, 'shape', type(sigma).__name__)}")
            values.append(sigma.reshape(-1).float())
        return torch.cat(values)

    @torch.no_grad()
    def update(self, step: int, density_fn: DensityFn,
               generator: Optional[torch.Generator] = None) -> bool:
        """Refresh the grid from the field when step % update_every == 0; returns whether it did.

        One jittered point per drawn cell goes through ``density_fn`` (points [m, 3] float32 in
        world coordinates -> the activated density sigma >= 0, [m] or [m, 1]), ``chunk`` points
        per call. Each drawn cell's density becomes max(decay x density, new) (the largest when a
        cell is drawn twice; undrawn cells keep theirs), then the bitfield is rebuilt from the
        threshold. All on the grid's device without a host-device synchronisation (fixed-size
        draws, scatter with fixed shapes, no .item() or nonzero()), so a training step that
        calls it stays asynchronous.
        """
        step = int_at_least("OccupancyGrid.update", "step", step, 0)
        if step % self.update_every != 0:
            return False
        cells = self._draw_cells(step, generator)
        jitter = torch.rand(*cells.shape, 3, generator=generator, device=cells.device)
        sigma = self._evaluate(density_fn, self.cell_points(cells, jitter).reshape(-1, 3))
        level_start = torch.arange(self.levels, device=cells.device)[:, None] * self.cells_per_level
        flat = (cells + level_start).reshape(-1)
        density = self.density.view(-1)
        fresh = torch.full_like(density, -math.inf).scatter_reduce_(0, flat, sigma, "amax")
        drawn = fresh > -math.inf
        density.copy_(torch.where(drawn, torch.maximum(density * self.decay, fresh), density))
        threshold = density.mean().clamp(max=self.threshold / self.step_size)
        self.bitfield.copy_(pack_bits(density > threshold))
        return True
