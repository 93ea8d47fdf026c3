"""The occupancy-grid NeRF pipeline (nerfacc's vanilla NeRF, instant-ngp's empty-space skipping):
rays are marched through the model's OccupancyGrid into packed samples of constant step, only
in occupied cells; the one field sees the flat batch of sample points; samples behind an opaque
front are dropped before the field runs with gradients; ``composite_density`` composites the
packed samples.

Early termination is nerfacc's design: a no-grad density pass over the marched samples gives
each sample's transmittance T; the samples with T > ``early_stop_eps`` go on to the graded
pass (fastfield.occupancy.termination states the bound on what dropping the others changes).

Rays are marched with unit directions, so the step size and the grid's threshold are in world
units whatever the camera's ray convention; depth is reported in units of the ray's own
direction (nerf-pytorch's, like the hierarchical pipeline).
"""
import math
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.memory import memory_budget
from ..core.types import MarchedSamples
from ..occupancy import OccupancyGrid, compact_samples, termination_mask
from .memory import bytes_per_point
from .samples import RayBundle, RenderContext

# (points [N, 3], unit view directions [N, 3]) -> (raw density [N], raw rgb [N, 3])
RadianceFn = Callable[[Tensor, Tensor], Tuple[Tensor, Tensor]]
# Per marched sample while rendering: t_start, t_end (float32), ray id (int64), the midpoint,
# its density, the kept copy and the compositing buffers; a generous round number.
_BYTES_PER_MARCHED_SAMPLE = 96


def raw_density(field: nn.Module, points: Tensor) -> Tensor:
    """The field's raw density [N] at points [N, 3]: ``field.density`` when it has one (no
    view-dependent layers), else the first output of ``field(points, any unit direction)``."""
    if hasattr(field, "density"):
        return field.density(points).reshape(-1)
    directions = torch.zeros_like(points)
    directions[:, 2] = 1.0
    return field(points, directions)[0].reshape(-1)


class OccupancyNeRFPipeline:
    """Renders rays through one radiance field, marched through an occupancy grid.

    Args:
        field: the radiance callable (NeRFField's signature).
        grid: the model's OccupancyGrid (its ``step_size`` is the render step, world units).
        cone_angle: instant-ngp's step growth (0: constant steps).
        early_stop_eps: transmittance below which samples are dropped before the graded pass
            (0: no termination pass).
        module: the nn.Module holding the field (memory estimates), if any.

    ``capacity`` (attribute, None by default): while gradients are on, the sample buffer of the
    synchronisation-free variant (``march_rays(capacity=...)``; rays that do not fit are
    dropped and counted in the output's ``dropped_rays``); None marches exactly (one host
    synchronisation for the sample count, one for the kept count). Without gradients (render,
    render_image) marching is exact and the field is evaluated ``sample_chunk`` samples at a
    time (None: from the device's memory budget), so memory is bounded by samples, not rays.

    Returns of a call: rgb [n_rays, 3], depth and acc [n_rays]; and 0-d tensors ``samples``
    (marched samples), ``samples_kept`` (those the graded pass composited) and
    ``dropped_rays`` (rays that did not fit the capacity).
    """

    unit_directions = False   # any rays: directions are normalised here
    keeps_graph = False

    def __init__(self, field: RadianceFn, grid: OccupancyGrid, cone_angle: float = 0.0,
                 early_stop_eps: float = 1e-4, module: Optional[nn.Module] = None):
        if not early_stop_eps >= 0:
            raise ValueError(f"early_stop_eps must be >= 0, got {early_stop_eps!r}")
        self.field, self.grid = field, grid
        self.cone_angle, self.early_stop_eps = float(cone_angle), float(early_stop_eps)
        self.module = module
        self.capacity: Optional[int] = None
        self.sample_chunk: Optional[int] = None

    # -- memory -------------------------------------------------------------------------------
    def points_per_ray(self) -> int:
        """Samples of a ray through the whole outer box, every cell occupied (an upper bound)."""
        box = self.grid.aabb.double()
        diagonal = float((box[3:] - box[:3]).norm()) * 2 ** (self.grid.levels - 1)
        return int(math.ceil(diagonal / self.grid.step_size)) + 1

    def bytes_per_ray(self) -> int:
        """What a ray's marched samples cost while rendering (the field's activations are
        bounded by ``sample_chunk`` instead)."""
        return self.points_per_ray() * _BYTES_PER_MARCHED_SAMPLE

    def _sample_chunk(self, device: torch.device) -> int:
        if self.sample_chunk is not None:
            return self.sample_chunk
        return max(4096, memory_budget(device) // bytes_per_point(self.module, False))

    def _evaluate(self, fn, n: int, *inputs: Tensor):
        """``fn(*inputs)`` over the sample dimension, in chunks of samples when rendering."""
        chunk = n if torch.is_grad_enabled() else self._sample_chunk(inputs[0].device)
        if n <= chunk:
            return fn(*inputs)
        parts = [fn(*(x[i:i + chunk] for x in inputs)) for i in range(0, n, chunk)]
        if isinstance(parts[0], tuple):
            return tuple(torch.cat(values) for values in zip(*parts))
        return torch.cat(parts)

    # -- the grid -----------------------------------------------------------------------------
    def density(self, points: Tensor) -> Tensor:
        """The activated density sigma = ReLU(raw) [N] at points [N, 3] (what the grid holds)."""
        return F.relu(raw_density(self.field, points))

    def update_grid(self, step: int, generator: Optional[torch.Generator] = None) -> bool:
        """``grid.update(step, self.density)``: refresh the grid from the field every
        ``update_every`` steps, without a host-device synchronisation."""
        return self.grid.update(step, self.density, generator=generator)

    # -- rendering ----------------------------------------------------------------------------
    def march(self, rays: RayBundle, ctx: RenderContext, capacity: Optional[int] = None
              ) -> Tuple[MarchedSamples, Tensor, Tensor]:
        """(packed samples in world units along unit directions, the unit directions
        [n_rays, 3], |d| [n_rays]); ``capacity`` as ``march_rays`` takes it."""
        norm = rays.directions.norm(dim=-1)
        directions = rays.directions / norm[:, None]
        u = None
        if ctx.perturb:
            u = torch.rand(norm.shape, generator=ctx.generator, device=norm.device,
                           dtype=norm.dtype)
        samples = ctx.ops.march_rays(rays.origins, directions, rays.near * norm,
                                     rays.far * norm, self.grid, self.grid.step_size,
                                     cone_angle=self.cone_angle, u=u, capacity=capacity)
        return samples, directions, norm

    def _points(self, rays: RayBundle, directions: Tensor, samples: MarchedSamples) -> Tensor:
        t_mid = 0.5 * (samples.t_starts + samples.t_ends)
        ids = samples.ray_indices
        return rays.origins[ids] + directions[ids] * t_mid[:, None]

    def __call__(self, rays: RayBundle, ctx: RenderContext) -> Dict[str, Tensor]:
        capacity = self.capacity if torch.is_grad_enabled() else None
        samples, directions, norm = self.march(rays, ctx, capacity)
        kept = samples
        if self.early_stop_eps > 0:
            with torch.no_grad():
                points = self._points(rays, directions, samples)
                sigma = self._evaluate(self.density, points.shape[0], points)
                keep = termination_mask(sigma, samples.t_ends - samples.t_starts, samples,
                                        self.early_stop_eps)
            kept = compact_samples(samples, keep, capacity)
        points = self._points(rays, directions, kept)
        ids = kept.ray_indices
        raw_sigma, raw_rgb = self._evaluate(self.field, points.shape[0], points,
                                            rays.viewdirs[ids])
        t_mid = 0.5 * (kept.t_starts + kept.t_ends)
        result = ctx.ops.composite_density(F.relu(raw_sigma.reshape(-1)),
                                           torch.sigmoid(raw_rgb.reshape(-1, 3)),
                                           kept.t_ends - kept.t_starts, t_mid / norm[ids],
                                           kept.ray_offsets, ctx.background)
        return {"rgb": result.rgb, "depth": result.depth, "acc": result.acc,
                "samples": samples.n_valid, "samples_kept": kept.n_valid,
                "dropped_rays": samples.n_dropped}
