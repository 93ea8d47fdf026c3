"""Layouts of packed samples (CSR ``ray_offsets``), computed on the device without a
synchronisation: the exclusive scan of per-ray counts, and the fixed-capacity layout that
``march_rays`` and the early-termination compaction share."""
from typing import NamedTuple

import torch
from torch import Tensor


# Lattice steps a ray may take at most in march_rays (kernels and twin): ample for any grid a step
# size is chosen for (a 1024-step box diagonal, cascades and cone growth included), and a bound on
# the work of rays whose bounds are garbage.
DEFAULT_MAX_STEPS = 1 << 16


def exclusive_offsets(counts: Tensor) -> Tensor:
    """CSR offsets [n_rays + 1] int64 of per-ray counts [n_rays]: 0, then their running sum."""
    return torch.cat([counts.new_zeros(1, dtype=torch.long), counts.cumsum(0)])


class FixedLayout(NamedTuple):
    ray_offsets: Tensor  # [n_rays + 1] int64, ending at the capacity
    kept: Tensor         # [n_rays] bool: the ray's samples fit into its slots
    n_valid: Tensor      # 0-d int64: samples of the kept rays
    n_dropped: Tensor    # 0-d int64: rays whose samples do not fit


def fixed_capacity_layout(counts: Tensor, capacity: int) -> FixedLayout:
    """Slots for per-ray sample counts [n_rays] in a buffer of ``capacity`` samples.

    Rays keep their dense places (the exclusive scan of counts) as long as they end within the
    capacity: the rays before the first one that does not fit. Every later ray gets an empty
    range, except the last ray, which owns every slot from the end of the kept rays to the
    capacity (its own samples, when they fit there, then padding): ray_offsets[n_rays] is the
    capacity, so the packed compositing ops take the buffer as it is. A ray is kept when its
    count fits into its range; the others (n_dropped of them, never rays without samples) are
    written as padding only. With no rays the capacity is 0.
    """
    n_rays = counts.shape[0]
    if n_rays == 0:
        zero = counts.new_zeros((), dtype=torch.long)
        return FixedLayout(counts.new_zeros(1, dtype=torch.long),
                           counts.new_zeros(0, dtype=torch.bool), zero, zero)
    dense = exclusive_offsets(counts)
    fits = dense[1:] <= capacity
    end_of_prefix = torch.where(fits, dense[1:], 0).amax()
    starts = torch.where(fits, dense[:-1], end_of_prefix)
    offsets = torch.cat([starts, starts.new_full((1,), capacity)])
    kept = counts <= offsets[1:] - offsets[:-1]
    n_valid = torch.where(kept, counts, 0).sum()
    return FixedLayout(offsets, kept, n_valid, (~kept).sum())


# ----------------------------------------------------------------------------- bitfields
# The occupancy bitfield's bit order, shared with csrc/marching/marching.h: cell n (the flat
# index over [levels, rx, ry, rz], x slowest) is bit n & 7 of byte n >> 3, least significant
# bit first; bits past the last cell are 0.

def pack_bits(bits: Tensor) -> Tensor:
    """bool (or 0/1) tensor of n cells, flattened -> uint8 [ceil(n / 8)]."""
    flat = bits.reshape(-1).to(torch.uint8)
    if flat.numel() % 8:
        flat = torch.cat([flat, flat.new_zeros(8 - flat.numel() % 8)])
    weights = torch.ones(8, dtype=torch.uint8, device=flat.device) << torch.arange(
        8, dtype=torch.uint8, device=flat.device)
    return (flat.view(-1, 8) * weights).sum(-1, dtype=torch.uint8)


def unpack_bits(bitfield: Tensor, n: int) -> Tensor:
    """uint8 [ceil(n / 8)] -> bool [n], the inverse of ``pack_bits``."""
    shifts = torch.arange(8, dtype=torch.uint8, device=bitfield.device)
    return ((bitfield[:, None] >> shifts) & 1).reshape(-1)[:n].bool()
