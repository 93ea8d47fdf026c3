"""Pure-PyTorch twin of stratified sampling (see fastfield.ops.sampling)."""
from typing import Optional, Union

import torch
from torch import Tensor

from ..core.checks import per_ray
from ..core.random import uniform


def stratified_samples(near: Union[float, Tensor], far: Union[float, Tensor], n_samples: int,
                       u: Optional[Tensor] = None, lindisp: bool = False,
                       jitter: str = "per_sample",
                       generator: Optional[torch.Generator] = None) -> Tensor:
    """t [n_rays, n_samples] between near and far (nerf-pytorch / NeuS stratified sampling)."""
    op = "reference.stratified_samples"
    like = near if isinstance(near, Tensor) and near.dim() == 1 else (
        far if isinstance(far, Tensor) and far.dim() == 1 else None)
    if like is None:
        raise ValueError("near or far must be a [n_rays] tensor")
    n_rays = like.shape[0]
    near, far = per_ray(op, "near", near, n_rays, like), per_ray(op, "far", far, n_rays, like)
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
