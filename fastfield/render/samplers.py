"""Samplers: where along each ray a pipeline evaluates its fields.

A sampler is any callable ``sampler(rays, ctx, previous) -> RaySamples`` with an ``n_samples``
attribute (samples it adds per ray, for memory estimates): ``rays`` a RayBundle, ``ctx`` the
RenderContext (ops, perturbation, generator), ``previous`` the FieldPass of the pass before
(None for the first). It may return padded or packed samples (see RaySamples); what a sampler
needs of a field (NeuS's up-sampling reads the SDF, an occupancy grid the density) it is given
when it is built, as a plain callable. Samplers draw every random number from ctx.generator
and call the ops only through ctx.ops.
"""
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

from .samples import FieldPass, RayBundle, RaySamples, RenderContext, gaps

# nerf-pytorch's "infinite" length of the last sample, so rays end opaque.
LAST_DELTA = 1e10


class StratifiedSampler:
    """nerf-pytorch's coarse samples: ``n_samples`` stratified between near and far (linear in
    depth or, with ``lindisp``, in disparity), jittered per sample when perturbing; deltas are
    the gaps to the next sample with ``last_delta`` for the last."""

    def __init__(self, n_samples: int, lindisp: bool = False, last_delta: float = LAST_DELTA):
        self.n_samples, self.lindisp, self.last_delta = n_samples, lindisp, last_delta

    def __call__(self, rays: RayBundle, ctx: RenderContext,
                 previous: Optional[FieldPass] = None) -> RaySamples:
        t = ctx.ops.stratified_samples(rays.near, rays.far, self.n_samples, lindisp=self.lindisp,
                                       jitter="per_sample" if ctx.perturb else "none",
                                       generator=ctx.generator)
        return RaySamples(t, gaps(t, self.last_delta))


class HierarchicalSampler:
    """nerf-pytorch's fine samples: ``n_samples`` drawn from the previous pass's weights
    (``sample_pdf`` over the midpoints of its samples with weights[:, 1:-1], random quantiles
    when perturbing), detached and merged in order with the previous samples. Needs a padded
    previous pass."""

    def __init__(self, n_samples: int, last_delta: float = LAST_DELTA):
        self.n_samples, self.last_delta = n_samples, last_delta

    def __call__(self, rays: RayBundle, ctx: RenderContext,
                 previous: Optional[FieldPass] = None) -> RaySamples:
        if previous is None or previous.samples.packed:
            raise ValueError("HierarchicalSampler refines a previous pass of padded samples")
        t = previous.samples.t
        t_mid = 0.5 * (t[:, 1:] + t[:, :-1])
        t_fine = ctx.ops.sample_pdf(t_mid, previous.weights[:, 1:-1].detach(), self.n_samples,
                                    det=not ctx.perturb, generator=ctx.generator)
        t_all = ctx.ops.merge_sorted(t, t_fine).merged
        return RaySamples(t_all, gaps(t_all, self.last_delta))


SdfFn = Callable[[Tensor], Tuple[Tensor, Tensor]]  # points [N, 3] -> (sdf [N], feature [N, F])


class NeuSSampler:
    """NeuS's samples inside the unit sphere: ``n_samples`` uniform between near and far (one
    shift per ray when perturbing), then ``up_sample_steps`` NeuS up-sampling steps adding
    ``n_importance`` samples in all where the SDF (``sdf_fn``, evaluated without gradients at
    the samples themselves) crosses zero, with fixed inv_s = 64 * 2^i. Deltas are the section
    lengths, ``base_distance`` (NeuS: 2 / n_samples) for the last one."""

    def __init__(self, n_samples: int, n_importance: int, up_sample_steps: int, sdf_fn: SdfFn,
                 base_distance: float):
        self.base_samples, self.n_importance = n_samples, n_importance
        self.steps, self.sdf_fn, self.base_distance = up_sample_steps, sdf_fn, base_distance
        self.n_samples = n_samples + n_importance

    def _sdf(self, rays: RayBundle, t: Tensor) -> Tensor:
        points = rays.origins[:, None] + rays.directions[:, None] * t[..., None]
        return self.sdf_fn(points.reshape(-1, 3))[0].reshape(t.shape[0], -1)

    def __call__(self, rays: RayBundle, ctx: RenderContext,
                 previous: Optional[FieldPass] = None) -> RaySamples:
        ops = ctx.ops
        t = ops.stratified_samples(rays.near, rays.far, self.base_samples,
                                   jitter="per_ray" if ctx.perturb else "none",
                                   generator=ctx.generator)
        if self.n_importance > 0:
            with torch.no_grad():
                sdf = self._sdf(rays, t)
                for i in range(self.steps):
                    new_t = ops.neus_upsample(rays.origins, rays.directions, t, sdf,
                                              self.n_importance // self.steps, 64.0 * 2 ** i)
                    merged = ops.merge_sorted(t, new_t)
                    if i + 1 < self.steps:  # the SDF at the new samples feeds the next step
                        sdf = torch.cat([sdf, self._sdf(rays, new_t)], -1).gather(1, merged.index)
                    t = merged.merged
        return RaySamples(t, gaps(t, self.base_distance))


class InverseSphereSampler:
    """NeuS's background samples beyond far, uniform in inverse depth:
    far / flip(stratified(1e-3, 1 - 1/(n + 1))) + ``offset`` (NeuS: 1 / n_samples of the inside
    pass; jittered per sample, the nerf-pytorch way, when perturbing). Inside samples end
    before far + offset, so inside and outside samples concatenate in order. Deltas are the
    gaps to the next sample, ``last_delta`` for the last."""

    def __init__(self, n_samples: int, offset: float, last_delta: float):
        self.n_samples, self.offset, self.last_delta = n_samples, offset, last_delta

    def __call__(self, rays: RayBundle, ctx: RenderContext,
                 previous: Optional[FieldPass] = None) -> RaySamples:
        far, n = rays.far, self.n_samples
        lo = torch.full_like(far, 1e-3)
        hi = torch.full_like(far, 1.0 - 1.0 / (n + 1.0))
        s = ctx.ops.stratified_samples(lo, hi, n, jitter="per_sample" if ctx.perturb else "none",
                                       generator=ctx.generator)
        t = far[:, None] / torch.flip(s, dims=[-1]) + self.offset
        return RaySamples(t, gaps(t, self.last_delta))
