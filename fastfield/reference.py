"""Pure-PyTorch twins of every fastfield op.

Same argument names and return types as the kernels in ``fastfield.ops``. They are written the
way nerf-pytorch and NeuS write them (vectorised tensor code, autograd for gradients), so they
serve three purposes: the independent reference the tests compare against (evaluate them in
float64: they are then the more accurate side), the baseline the benchmarks time, and a
readable statement of what each kernel computes.
"""
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ._types import DensityComposite, Merged, NearFar, Rays, SdfComposite
from .ops._random import pdf_quantiles, uniform

__all__ = [
    "generate_rays", "ndc_rays", "near_far_sphere", "near_far_aabb", "stratified_samples",
    "sample_pdf", "merge_sorted", "composite_density", "composite_sdf", "neus_upsample",
]


# ----------------------------------------------------------------------------- rays

def generate_rays(c2w: Tensor, intrinsics: Tensor, pixels: Tensor, convention: str = "opengl",
                  pixel_offset: float = 0.0, normalize: bool = False) -> Rays:
    """Rays through pixels (camera, row, col). See ``fastfield.generate_rays``."""
    cam, row, col = pixels[:, 0], pixels[:, 1].to(c2w.dtype), pixels[:, 2].to(c2w.dtype)
    fx, fy, cx, cy = intrinsics[cam].unbind(-1)
    x = (col + pixel_offset - cx) / fx
    y = (row + pixel_offset - cy) / fy
    one = torch.ones_like(x)
    if convention == "opengl":
        dirs_cam = torch.stack([x, -y, -one], -1)
    elif convention == "opencv":
        dirs_cam = torch.stack([x, y, one], -1)
    else:
        raise ValueError(f"convention must be 'opengl' or 'opencv', got {convention!r}")
    pose = c2w[cam]
    directions = (pose[:, :3, :3] @ dirs_cam[:, :, None])[:, :, 0]
    if normalize:
        directions = directions / directions.norm(dim=-1, keepdim=True)
    return Rays(pose[:, :3, 3].clone(), directions)


def ndc_rays(origins: Tensor, directions: Tensor, H: int, W: int, focal: float,
             near: float = 1.0) -> Rays:
    """nerf-pytorch ``ndc_rays``: shift origins to the near plane, then project."""
    t = -(near + origins[:, 2]) / directions[:, 2]
    o = origins + t[:, None] * directions
    d = directions
    o0 = -1.0 / (W / (2.0 * focal)) * o[:, 0] / o[:, 2]
    o1 = -1.0 / (H / (2.0 * focal)) * o[:, 1] / o[:, 2]
    o2 = 1.0 + 2.0 * near / o[:, 2]
    d0 = -1.0 / (W / (2.0 * focal)) * (d[:, 0] / d[:, 2] - o[:, 0] / o[:, 2])
    d1 = -1.0 / (H / (2.0 * focal)) * (d[:, 1] / d[:, 2] - o[:, 1] / o[:, 2])
    d2 = -2.0 * near / o[:, 2]
    return Rays(torch.stack([o0, o1, o2], -1), torch.stack([d0, d1, d2], -1))


def near_far_sphere(origins: Tensor, directions: Tensor, radius: float = 1.0,
                    mode: str = "neus") -> NearFar:
    """Ray parameters bounding a sphere of ``radius`` at the origin.

    "neus": closest approach t_mid = -(o.d)/(d.d), near/far = t_mid -/+ radius, hit where the
    closest approach lies within the sphere. "exact": the intersections, near clamped at 0;
    rays that miss (or whose sphere lies behind them) get near = far = max(t_mid, 0), hit False.
    The squared distance of the closest approach is |o + t_mid d|^2 (o.o - (o.d)^2/(d.d)
    cancels catastrophically for origins far from the sphere).
    """
    a = (directions * directions).sum(-1)
    b = (origins * directions).sum(-1)
    t_mid = -b / a
    closest_sq = (origins + t_mid[:, None] * directions).square().sum(-1)
    if mode == "neus":
        return NearFar(t_mid - radius, t_mid + radius, closest_sq <= radius * radius)
    if mode != "exact":
        raise ValueError(f"mode must be 'neus' or 'exact', got {mode!r}")
    half_chord = torch.sqrt((radius * radius - closest_sq).clamp_min(0.0) / a)
    far = t_mid + half_chord
    hit = (closest_sq <= radius * radius) & (far >= 0)
    rest = t_mid.clamp_min(0.0)
    near = torch.where(hit, (t_mid - half_chord).clamp_min(0.0), rest)
    far = torch.where(hit, far, rest)
    return NearFar(near, far, hit)


def near_far_aabb(origins: Tensor, directions: Tensor, aabb: Tensor) -> NearFar:
    """Slab intersection with the closed box ``aabb`` = (xmin, ymin, zmin, xmax, ymax, zmax);
    near clamped at 0.

    A ray parallel to a slab (zero direction component) is inside it for every t when its
    origin lies in the slab, faces included, and never otherwise. Rays that miss get
    near = far = 0 and hit False; rays with a NaN coordinate get near = far = NaN, hit False.
    """
    lo, hi = aabb[:3], aabb[3:]
    inv_d = 1.0 / directions
    t_lo = (lo - origins) * inv_d
    t_hi = (hi - origins) * inv_d
    parallel = directions == 0
    in_slab = (origins >= lo) & (origins <= hi)
    inf = torch.full_like(t_lo, torch.inf)
    enter = torch.where(parallel, torch.where(in_slab, -inf, inf), torch.minimum(t_lo, t_hi))
    leave = torch.where(parallel, torch.where(in_slab, inf, -inf), torch.maximum(t_lo, t_hi))
    near = enter.amax(-1).clamp_min(0.0)
    far = leave.amin(-1)
    hit = far >= near
    has_nan = (origins.isnan() | directions.isnan()).any(-1)
    miss = torch.where(has_nan, torch.full_like(near, torch.nan), torch.zeros_like(near))
    return NearFar(torch.where(hit, near, miss), torch.where(hit, far, miss), hit)


# ----------------------------------------------------------------------------- sampling

def _broadcast_rays(value: Union[float, Tensor], like: Tensor) -> Tensor:
    return torch.as_tensor(value, dtype=like.dtype, device=like.device).expand(like.shape[0])


def stratified_samples(near: Union[float, Tensor], far: Union[float, Tensor], n_samples: int,
                       u: Optional[Tensor] = None, lindisp: bool = False,
                       jitter: str = "per_sample",
                       generator: Optional[torch.Generator] = None) -> Tensor:
    """t [n_rays, n_samples] between near and far (nerf-pytorch / NeuS stratified sampling)."""
    if not isinstance(near, Tensor) and not isinstance(far, Tensor):
        raise ValueError("near or far must be a [n_rays] tensor")
    like = near if isinstance(near, Tensor) else far
    near, far = _broadcast_rays(near, like), _broadcast_rays(far, like)
    lin = torch.linspace(0.0, 1.0, n_samples, dtype=near.dtype, device=near.device)
    if lindisp:
        t = 1.0 / (1.0 / near[:, None] * (1.0 - lin) + 1.0 / far[:, None] * lin)
    else:
        t = near[:, None] * (1.0 - lin) + far[:, None] * lin
    if jitter == "none":
        return t
    if jitter == "per_sample":
        if u is None:
            u = uniform(t.shape, t, generator)
        mids = 0.5 * (t[:, 1:] + t[:, :-1])
        upper = torch.cat([mids, t[:, -1:]], -1)
        lower = torch.cat([t[:, :1], mids], -1)
        return lower + (upper - lower) * u
    if jitter == "per_ray":
        if u is None:
            u = uniform(t.shape[:1], t, generator)
        return t + ((u - 0.5) * (far - near) / n_samples)[:, None]
    raise ValueError(f"jitter must be 'per_sample', 'per_ray' or 'none', got {jitter!r}")


def sample_pdf(bins: Tensor, weights: Tensor, n_samples: int, u: Optional[Tensor] = None,
               det: Union[bool, str] = False,
               generator: Optional[torch.Generator] = None) -> Tensor:
    """nerf-pytorch / NeuS ``sample_pdf`` with sorted quantiles; [n_rays, n_samples] ascending."""
    u = pdf_quantiles(bins.shape[0], n_samples, det, u, weights, generator)
    u = u.expand(bins.shape[0], n_samples).contiguous()
    weights = weights + 1e-5
    pdf = weights / torch.sum(weights, -1, keepdim=True)
    cdf = torch.cumsum(pdf, -1)
    cdf = torch.cat([torch.zeros_like(cdf[..., :1]), cdf], -1)
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


# ----------------------------------------------------------------------------- compositing

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


def _neus_weights(alpha: Tensor) -> Tensor:
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
        weights = _neus_weights(alpha)
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
    weights = _neus_weights(alpha)
    color = (color_in * weights[:, :, None]).sum(1)
    return SdfComposite(color, weights.sum(-1), weights, alpha)


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
    return _neus_weights(alpha)
