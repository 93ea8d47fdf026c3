"""Result types shared by the kernels (``fastfield.ops``) and their twins (``fastfield.reference``)."""
from typing import NamedTuple, Optional

from torch import Tensor


class Rays(NamedTuple):
    origins: Tensor     # [n_rays, 3]
    directions: Tensor  # [n_rays, 3]


class NearFar(NamedTuple):
    near: Tensor  # [n_rays]
    far: Tensor   # [n_rays]
    hit: Tensor   # [n_rays] bool


class Merged(NamedTuple):
    merged: Tensor  # [n_rays, na + nb], ascending
    index: Tensor   # [n_rays, na + nb] int64 into cat([a, b], -1)


class DensityComposite(NamedTuple):
    rgb: Tensor               # [n_rays, 3]
    depth: Optional[Tensor]   # [n_rays], None when no t was given
    acc: Tensor               # [n_rays]
    weights: Tensor           # layout of sigma


class SdfComposite(NamedTuple):
    rgb: Tensor      # [n_rays, 3]
    acc: Tensor      # [n_rays]
    weights: Tensor  # [n_rays, n_in + n_out] (padded) or [n_samples] (packed)
    alpha: Tensor    # same layout as weights
