"""Early ray termination for packed samples: once a ray's transmittance falls below a threshold,
its remaining samples can change its colour by at most that much, so they can go before the
field is evaluated with gradients (nerfacc's no-grad density pass, then the kept samples).

Bound. With sigma >= 0, the transmittance T_i = exp(-sum_{j<i} sigma_j delta_j) never rises
along a ray, so the dropped samples of a ray are its tail from the first i0 with T_i0 <=
threshold. Their weights sum to T_i0 - T_end <= threshold, and dropping them changes
rgb = sum w_i c_i + (1 - acc) background by sum_{i >= i0} w_i (c_i - background): at most
threshold x max |c_i - background| per channel (threshold itself for colours in [0, 1]), acc by
at most threshold, and depth = sum w_i t_i by at most threshold x the largest t of the tail.
"""
from typing import Optional

import torch
from torch import Tensor

from ..core.packing import exclusive_offsets, fixed_capacity_layout
from ..core.types import MarchedSamples

__all__ = ["transmittance", "termination_mask", "compact_samples", "collapse_samples"]

# |sigma delta| above this is clamped (NaN counts as opaque): exp(-1000) is 0 in float64, so no
# transmittance changes, and the running sum below stays finite for the rays that follow.
_OPTICAL_DEPTH_CAP = 1000.0


def transmittance(sigma: Tensor, deltas: Tensor, samples: MarchedSamples) -> Tensor:
    """T_i = exp(-sum_{j<i} sigma_j delta_j) over the earlier samples of each packed ray [n].

    A segmented exclusive sum taken from one running sum over every sample, in float64 (each
    |sigma delta| capped at 1000, NaN counted as opaque, so that one ray's garbage never reaches
    the next): T's relative error is at most about n x 1e-16 x the batch's total optical depth
    (n samples), typically far less; the tests measure 3e-11 for 4700 samples of total depth
    ~1e4. Returned in the dtype of sigma. No gradient, no synchronisation.
    """
    with torch.no_grad():
        depth = sigma.detach().double() * deltas.detach().double()
        depth = torch.nan_to_num(depth, nan=_OPTICAL_DEPTH_CAP).clamp(-_OPTICAL_DEPTH_CAP,
                                                                      _OPTICAL_DEPTH_CAP)
        before = torch.cat([depth.new_zeros(1), depth.cumsum(0)])  # [n + 1]: sum of depth[:i]
        ray_start = samples.ray_offsets[:-1].clamp(max=depth.shape[0])[samples.ray_indices]
        return torch.exp(before[ray_start] - before[:-1]).to(sigma.dtype)


def termination_mask(sigma: Tensor, deltas: Tensor, samples: MarchedSamples,
                     threshold: float = 1e-4) -> Tensor:
    """bool [n]: the samples to keep, those with transmittance above ``threshold`` and a
    positive length (padding of the fixed-capacity layout goes too). Synchronisation-free."""
    if not threshold >= 0:
        raise ValueError(f"termination_mask: threshold must be >= 0, got {threshold!r}")
    return (transmittance(sigma, deltas, samples) > threshold) & (samples.t_ends >
                                                                  samples.t_starts)


def collapse_samples(samples: MarchedSamples, keep: Tensor) -> MarchedSamples:
    """The masked variant: the same layout with every sample not in ``keep`` collapsed to zero
    length (t_end = t_start), so it composites to nothing (alpha = 0, weight 0, no gradient)
    while shapes stay as they were. No synchronisation; the field still sees every sample."""
    return samples._replace(t_ends=torch.where(keep, samples.t_ends, samples.t_starts))


def compact_samples(samples: MarchedSamples, keep: Tensor,
                    capacity: Optional[int] = None) -> MarchedSamples:
    """The samples in ``keep`` [n] in a new packed layout, order kept.

    ``capacity=None``: exactly the kept samples (one synchronisation, for their number).
    ``capacity=m``: ``m`` slots laid out as ``march_rays(capacity=m)`` does (rays that do not
    fit are dropped and counted in n_dropped; zero-length padding after the samples, owned by
    the last ray), without a synchronisation.
    """
    n_rays = samples.ray_offsets.shape[0] - 1
    kept_before = exclusive_offsets(keep.long())  # [n + 1]
    offsets = kept_before[samples.ray_offsets.clamp(max=keep.shape[0])]  # dense, [n_rays + 1]
    if capacity is None:
        index = keep.nonzero().squeeze(1)  # the one synchronisation
        return MarchedSamples(samples.t_starts[index], samples.t_ends[index],
                              samples.ray_indices[index], offsets, offsets[-1],
                              offsets.new_zeros(()))
    capacity = capacity if n_rays > 0 else 0
    layout = fixed_capacity_layout(offsets[1:] - offsets[:-1], capacity)
    rays = samples.ray_indices.clamp(0, max(n_rays - 1, 0))
    slot = layout.ray_offsets[rays] + kept_before[:-1] - offsets[rays]
    written = keep & layout.kept[rays]
    slot = torch.where(written, slot, capacity)  # everything else lands in a spare last slot
    t_starts = samples.t_starts.new_zeros(capacity + 1).scatter_(0, slot, samples.t_starts)
    t_ends = samples.t_ends.new_zeros(capacity + 1).scatter_(0, slot, samples.t_ends)
    ray_indices = samples.ray_indices.new_full((capacity + 1,), max(n_rays - 1, 0))
    ray_indices.scatter_(0, slot, samples.ray_indices)
    return MarchedSamples(t_starts[:capacity], t_ends[:capacity], ray_indices[:capacity],
                          layout.ray_offsets, layout.n_valid, layout.n_dropped)
