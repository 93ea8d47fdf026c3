"""Pure-PyTorch twins of importance sampling (see fastfield.ops.pdf)."""
from typing import Optional, Union

import torch
from torch import Tensor

from ..core.random import pdf_quantiles
from ..core.types import Merged
from .composite import neus_weights


def sample_pdf(bins: Tensor, weights: Tensor, n_samples: int, u: Optional[Tensor] = None,
               det: Union[bool, str] = False,
               generator: Optional[torch.Generator] = None) -> Tensor:
    """nerf-pytorch / NeuS ``sample_pdf`` with sorted quantiles, the CDF capped at 1;
    [n_rays, n_samples] ascending."""
    u = pdf_quantiles(bins.shape[0], n_samples, det, u, weights, generator)
    u = u.expand(bins.shape[0], n_samples).contiguous()
    weights = weights + 1e-5
    pdf = weights / torch.sum(weights, -1, keepdim=True)
    cdf = torch.cumsum(pdf, -1)
    cdf = torch.cat([torch.zeros_like(cdf[..., :1]), cdf], -1)
    # Capped at its exact total 1, so that u = 1 is past the end (the last bin edge, as in
    # nerf-pytorch) even where the sum rounds above 1 (fastfield/ops/pdf.py).
    cdf = cdf.clamp(max=1.0)
    inds = torch.searchsorted(cdf, u, right=True)
    below = torch.clamp(inds - 1, min=0)
    above = torch.clamp(inds, max=cdf.shape[-1] - 1)
    cdf_below, cdf_above = torch.gather(cdf, 1, below), torch.gather(cdf, 1, above)
    bins_below, bins_above = torch.gather(bins, 1, below), torch.gather(bins, 1, above)
    denom = cdf_above - cdf_below
    denom = torch.where(denom < 1e-5, torch.ones_like(denom), denom)
    frac = (u - cdf_below) / denom
    return bins_below + frac * (bins_above - bins_below)


def merge_sorted(a: Tensor, b: Tensor) -> Merged:
    """Merge two per-ray ascending sets; index points into cat([a, b], -1), a first on ties."""
    merged, index = torch.sort(torch.cat([a, b], -1), dim=-1, stable=True)
    return Merged(merged, index)


def neus_upsample(rays_o: Tensor, rays_d: Tensor, t: Tensor, sdf: Tensor, n_new: int,
                  inv_s: float) -> Tensor:
    """NeuS ``up_sample``: n_new new t [n_rays, n_new] ascending, from SDF values at t."""
    weights = neus_upsample_weights(rays_o, rays_d, t, sdf, inv_s)
    return sample_pdf(t, weights, n_new, det="midpoint").reshape(t.shape[0], n_new)


def neus_upsample_weights(rays_o: Tensor, rays_d: Tensor, t: Tensor, sdf: Tensor,
                          inv_s: float) -> Tensor:
    """The section weights [n_rays, n - 1] that NeuS ``up_sample`` passes to ``sample_pdf``."""
    pts = rays_o[:, None, :] + rays_d[:, None, :] * t[..., :, None]
    radius = torch.linalg.norm(pts, ord=2, dim=-1, keepdim=False)
    inside_sphere = (radius[:, :-1] < 1.0) | (radius[:, 1:] < 1.0)
    prev_sdf, next_sdf = sdf[:, :-1], sdf[:, 1:]
    prev_t, next_t = t[:, :-1], t[:, 1:]
    mid_sdf = (prev_sdf + next_sdf) * 0.5
    cos_val = (next_sdf - prev_sdf) / (next_t - prev_t + 1e-5)
    prev_cos_val = torch.cat([torch.zeros_like(cos_val[:, :1]), cos_val[:, :-1]], dim=-1)
    cos_val = torch.minimum(prev_cos_val, cos_val)
    cos_val = cos_val.clip(-1e3, 0.0) * inside_sphere
    dist = next_t - prev_t
    prev_esti_sdf = mid_sdf - cos_val * dist * 0.5
    next_esti_sdf = mid_sdf + cos_val * dist * 0.5
    prev_cdf = torch.sigmoid(prev_esti_sdf * inv_s)
    next_cdf = torch.sigmoid(next_esti_sdf * inv_s)
    alpha = (prev_cdf - next_cdf + 1e-5) / (prev_cdf + 1e-5)
    return neus_weights(alpha)
