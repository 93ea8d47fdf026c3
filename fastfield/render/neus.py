"""The NeuS pipeline (NeuS ``render``): samples inside the unit sphere from the inside sampler
(NeuSSampler: uniform, then up-sampled where the SDF crosses zero), the NeRF++ background
evaluated over the sorted union of inside and outside samples, the SDF and colour fields at
the section midpoints, and ``composite_sdf``.

The inside samples may be packed when there is no background model (``composite_sdf`` takes
packed samples without one): depth and normal are per-ray sums of the samples' layout, so a
packed inside sampler needs no change here.
"""
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..fields.sdf import sdf_and_gradient
from .samples import RayBundle, RaySamples, RenderContext, gaps

SdfFn = Callable[[Tensor], Tuple[Tensor, Tensor]]          # points -> (sdf [N], feature [N, F])
ColorFn = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]  # (x, normal, dir, feature) -> rgb
RadianceFn = Callable[[Tensor, Tensor], Tuple[Tensor, Tensor]]


class NeuSPipeline:
    """Renders rays of the normalised scene (unit directions, near/far from the unit sphere).

    Args:
        sdf_fn, color_fn: the SDF and colour fields (SDFField's and ColorField's signatures).
        inv_s_fn: () -> NeuS's inv_s, a 0-d tensor (the trained variance).
        inside: the sampler of the sections inside the sphere (NeuSSampler).
        background_fn, outside: the NeRF++ background field (BackgroundField's signature: world
            points) and its sampler (InverseSphereSampler), or None for no background model.
        base_distance: the length of the last section (NeuS: 2 / n_samples, near and far being
            2 apart on the unit sphere).
        module: the nn.Module holding the fields (for memory estimates), if any.

    Returns of a call: rgb [n_rays, 3], acc and depth [n_rays], normal [n_rays, 3] (world
    space, weighted inside the sphere), s_val (1 / inv_s) and, with gradients on, the eikonal
    term (points with |x| < 1.2).
    """

    unit_directions = True   # NeuS's rays: unit directions
    keeps_graph = True       # normals need d sdf / d x even without gradients

    def __init__(self, sdf_fn: SdfFn, color_fn: ColorFn, inv_s_fn: Callable[[], Tensor],
                 inside, base_distance: float, background_fn: Optional[RadianceFn] = None,
                 outside=None, module: Optional[nn.Module] = None):
        self.sdf_fn, self.color_fn, self.inv_s_fn = sdf_fn, color_fn, inv_s_fn
        self.inside, self.base_distance = inside, base_distance
        self.background_fn = background_fn
        self.outside = outside if background_fn is not None else None
        self.module = module

    def points_per_ray(self) -> int:
        return self.inside.n_samples + (self.outside.n_samples if self.outside else 0)

    def _background(self, rays: RayBundle, t: Tensor) -> Tuple[Tensor, Tensor]:
        """NeuS ``render_core_outside``: alpha and colour [n_rays, n(, 3)] of the background
        field at the midpoints of the sections starting at t [n_rays, n]."""
        n_rays, n = t.shape
        dists = gaps(t, self.base_distance)
        mid = t + 0.5 * dists
        points = rays.origins[:, None] + rays.directions[:, None] * mid[..., None]
        density, rgb = self.background_fn(points.reshape(-1, 3),
                                          rays.directions[:, None].expand(n_rays, n, 3)
                                          .reshape(-1, 3))
        alpha = 1.0 - torch.exp(-F.softplus(density.reshape(n_rays, n)) * dists)
        return alpha, torch.sigmoid(rgb).reshape(n_rays, n, 3)

    def __call__(self, rays: RayBundle, ctx: RenderContext) -> Dict[str, Tensor]:
        samples: RaySamples = self.inside(rays, ctx, None)
        t, dists = samples.t, samples.deltas
        bg_alpha = bg_rgb = None
        if self.outside is not None:
            if samples.packed:
                raise ValueError("the NeuS pipeline blends a background model with padded "
                                 "inside samples only (composite_sdf's packed layout has none)")
            t_out = self.outside(rays, ctx, None).t
            # Outside samples start beyond every inside one: the union is already sorted (NeuS
            # sorts it; the sort would not move anything).
            bg_alpha, bg_rgb = self._background(rays, torch.cat([t, t_out], -1))
        mid = t + 0.5 * dists
        ray_ids = samples.ray_ids() if samples.packed else None
        if ray_ids is not None:
            points = rays.origins[ray_ids] + rays.directions[ray_ids] * mid[:, None]
        else:
            points = (rays.origins[:, None] + rays.directions[:, None] * mid[..., None])
            points = points.reshape(-1, 3)
        dirs = samples.per_sample(rays.directions, ray_ids).reshape(-1, 3)
        sdf, feature, gradient = sdf_and_gradient(self.sdf_fn, points,
                                                  create_graph=torch.is_grad_enabled())
        rgb = self.color_fn(points, gradient, dirs, feature).reshape(*t.shape, 3)
        cos = (dirs * gradient).sum(-1).reshape(t.shape)
        radius = points.detach().norm(dim=-1).reshape(t.shape)
        inside = (radius < 1.0).to(sdf.dtype)
        inv_s = self.inv_s_fn()
        cos, ratio = annealed_cos(cos, ctx.cos_anneal_ratio)
        out = ctx.ops.composite_sdf(sdf.reshape(t.shape), cos, dists, inv_s, rgb,
                                    ratio, inside if bg_alpha is not None else None,
                                    bg_alpha, bg_rgb, samples.ray_offsets)
        color = out.rgb
        if ctx.background is not None:
            color = color + (1.0 - out.acc)[:, None] * ctx.background
        weights_in = out.weights if samples.packed else out.weights[:, :t.shape[1]]
        normal = samples.sum_per_ray(gradient.reshape(*t.shape, 3)
                                     * (weights_in * inside)[..., None], ray_ids)
        result = {"rgb": color, "acc": out.acc,
                  "depth": samples.sum_per_ray(weights_in * mid, ray_ids),
                  "normal": normal, "s_val": 1.0 / inv_s.detach()}
        if torch.is_grad_enabled():
            relax = (radius < 1.2).to(sdf.dtype)
            error = (gradient.norm(dim=-1).reshape(t.shape) - 1.0) ** 2
            result["eikonal"] = (relax * error).sum() / (relax.sum() + 1e-5)
        return result


def annealed_cos(cos: Tensor, cos_anneal_ratio) -> Tuple[Tensor, float]:
    """(cos, ratio) to hand composite_sdf. A float ratio passes through (the kernels anneal).
    A 0-d tensor ratio (a training step whose schedule lives on the device, so a CUDA graph
    replays it) is applied here, NeuS's formula in PyTorch, and the kernels get ratio 1:
    with r = 1 they use -relu(-c), which is c itself for the annealed c <= 0.
    cos: [n_rays, n] or [n_samples] (packed)."""
    if not isinstance(cos_anneal_ratio, Tensor):
        return cos, cos_anneal_ratio
    ratio = cos_anneal_ratio.to(cos.dtype)
    annealed = -(F.relu(-cos * 0.5 + 0.5) * (1.0 - ratio) + F.relu(-cos) * ratio)
    return annealed, 1.0
