"""Pure-PyTorch twins of the compositing ops (see fastfield.ops.composite)."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..core.types import DensityComposite, SdfComposite


def _packed_to_padded(values: Tensor, ray_offsets: Tensor):
    """values [n_samples, ...] -> ([n_rays, max_len, ...] zero-padded, mask [n_rays, max_len])."""
    counts = ray_offsets[1:] - ray_offsets[:-1]
    n_rays = counts.shape[0]
    max_len = int(counts.max()) if n_rays > 0 else 0
    ray_id = torch.repeat_interleave(torch.arange(n_rays, device=values.device), counts)
    pos = torch.arange(values.shape[0], device=values.device) - ray_offsets[:-1][ray_id]
    padded = values.new_zeros((n_rays, max_len) + values.shape[1:])
    padded[ray_id, pos] = values
    mask = torch.zeros((n_rays, max_len), dtype=torch.bool, device=values.device)
    mask[ray_id, pos] = True
    return padded, mask


def composite_density(sigma: Tensor, rgb: Tensor, deltas: Tensor, t: Optional[Tensor] = None,
                      ray_offsets: Optional[Tensor] = None,
                      background: Optional[Tensor] = None) -> DensityComposite:
    """nerf-pytorch ``raw2outputs`` on activated density: alpha = 1 - exp(-sigma * delta)."""
    if ray_offsets is not None:
        sigma_p, mask = _packed_to_padded(sigma, ray_offsets)
        out = composite_density(sigma_p, _packed_to_padded(rgb, ray_offsets)[0],
                                _packed_to_padded(deltas, ray_offsets)[0],
                                None if t is None else _packed_to_padded(t, ray_offsets)[0],
                                None, background)
        return out._replace(weights=out.weights[mask])
    alpha = 1.0 - torch.exp(-sigma * deltas)
    ones = torch.ones_like(alpha[:, :1])
    transmittance = torch.cumprod(torch.cat([ones, 1.0 - alpha], -1), -1)[:, :-1]
    weights = alpha * transmittance
    color = (weights[..., None] * rgb).sum(-2)
    acc = weights.sum(-1)
    depth = None if t is None else (weights * t).sum(-1)
    if background is not None:
        color = color + (1.0 - acc)[:, None] * background
    return DensityComposite(color, depth, acc, weights)


def _neus_alpha(sdf, cos, dists, inv_s, cos_anneal_ratio):
    """NeuS ``render_core``: alpha of each section from the SDF at its midpoint."""
    iter_cos = -(F.relu(-cos * 0.5 + 0.5) * (1.0 - cos_anneal_ratio)
                 + F.relu(-cos) * cos_anneal_ratio)
    next_sdf = sdf + iter_cos * dists * 0.5
    prev_sdf = sdf - iter_cos * dists * 0.5
    prev_cdf = torch.sigmoid(prev_sdf * inv_s)
    next_cdf = torch.sigmoid(next_sdf * inv_s)
    p = prev_cdf - next_cdf
    c = prev_cdf
    return ((p + 1e-5) / (c + 1e-5)).clip(0.0, 1.0)


def neus_weights(alpha: Tensor) -> Tensor:
    ones = torch.ones_like(alpha[:, :1])
    return alpha * torch.cumprod(torch.cat([ones, 1.0 - alpha + 1e-7], -1), -1)[:, :-1]


def composite_sdf(sdf: Tensor, cos: Tensor, dists: Tensor, inv_s: Tensor, rgb: Tensor,
                  cos_anneal_ratio: float, inside: Optional[Tensor] = None,
                  bg_alpha: Optional[Tensor] = None, bg_rgb: Optional[Tensor] = None,
                  ray_offsets: Optional[Tensor] = None) -> SdfComposite:
    """NeuS ``render_core`` from the SDF network's outputs (see ``fastfield.composite_sdf``)."""
    inv_s = torch.as_tensor(inv_s, dtype=sdf.dtype, device=sdf.device)
    if ray_offsets is not None:
        counts = ray_offsets[1:] - ray_offsets[:-1]
        if inv_s.dim() == 1:
            inv_s = torch.repeat_interleave(inv_s, counts)
        sdf_p, mask = _packed_to_padded(sdf, ray_offsets)
        inv_p = _packed_to_padded(inv_s, ray_offsets)[0] if inv_s.dim() == 1 else inv_s
        alpha = _neus_alpha(sdf_p, _packed_to_padded(cos, ray_offsets)[0],
                            _packed_to_padded(dists, ray_offsets)[0], inv_p, cos_anneal_ratio)
        alpha = alpha * mask  # padding composites as empty space
        weights = neus_weights(alpha)
        color = (weights[..., None] * _packed_to_padded(rgb, ray_offsets)[0]).sum(1)
        return SdfComposite(color, weights.sum(-1), weights[mask], alpha[mask])
    if inv_s.dim() == 1:
        inv_s = inv_s[:, None]
    alpha = _neus_alpha(sdf, cos, dists, inv_s, cos_anneal_ratio)
    color_in = rgb
    if bg_alpha is not None:
        n_in = sdf.shape[1]
        alpha = alpha * inside + bg_alpha[:, :n_in] * (1.0 - inside)
        alpha = torch.cat([alpha, bg_alpha[:, n_in:]], dim=-1)
        color_in = rgb * inside[:, :, None] + bg_rgb[:, :n_in] * (1.0 - inside)[:, :, None]
        color_in = torch.cat([color_in, bg_rgb[:, n_in:]], dim=1)
    weights = neus_weights(alpha)
    color = (color_in * weights[:, :, None]).sum(1)
    return SdfComposite(color, weights.sum(-1), weights, alpha)
