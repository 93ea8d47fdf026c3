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


class MarchedSamples(NamedTuple):
    """Packed samples along rays (``march_rays``): ray r owns samples
    ray_offsets[r]:ray_offsets[r + 1], front to back, the layout the packed compositing ops take.
    With a fixed capacity, slots past the valid samples are padding: t_start = t_end = 0 (zero
    length, so they composite to nothing), owned by the ray whose range holds them."""
    t_starts: Tensor     # [n_samples] (or [capacity])
    t_ends: Tensor       # [n_samples]
    ray_indices: Tensor  # [n_samples] int64, the ray of each sample
    ray_offsets: Tensor  # [n_rays + 1] int64, CSR
    n_valid: Tensor      # 0-d int64: samples that are not padding
    n_dropped: Tensor    # 0-d int64: rays whose samples did not fit into the capacity
