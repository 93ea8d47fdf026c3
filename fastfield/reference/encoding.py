"""Pure-PyTorch twins of the encodings (see fastfield.ops.encoding).

The hash encoding is vectorised over points, levels and the 8 corners, with one gather from the
table; the frequency encoding is nerf-pytorch's expression. Autograd supplies the first and
second derivatives of both: an independent reference for the kernels' analytic backward and
double backward, and the baseline the benchmarks time.
"""
from typing import Optional

import torch
from torch import Tensor

from ..core.hash_grid import hash_grid_spec, level_geometry

# tiny-cuda-nn's coherent prime hash (the x prime is 1).
PRIMES = (1, 2654435761, 805459861)


def corner_rows(corner: Tensor, resolution, dense, table_size: int) -> Tensor:
    """Rows of grid points ``corner`` (int64 [..., 3]): i + j r + k r^2 on a dense level, the
    prime hash (uint32 arithmetic) on a hashed one, modulo the table size (a power of two).
    ``resolution`` and ``dense``: one level's (Python numbers), or tensors that broadcast
    against corner[..., 0]."""
    i, j, k = corner.unbind(-1)
    dense_rows = i + j * resolution + k * (resolution * resolution)
    # int64 products of coordinates below 2^31 with primes below 2^32 do not overflow, and the
    # low 32 bits of their xor are those of the uint32 computation.
    hashed_rows = (i * PRIMES[0]) ^ (j * PRIMES[1]) ^ (k * PRIMES[2])
    dense = torch.as_tensor(dense, device=corner.device)
    return torch.where(dense, dense_rows, hashed_rows) & (table_size - 1)


def hash_encode(x: Tensor, params: Tensor, n_levels: int = 16, n_features: int = 2,
                log2_table_size: int = 19, base_resolution: float = 16,
                per_level_scale: float = 1.3819) -> Tensor:
    """instant-ngp's multi-resolution hash encoding (see ``fastfield.hash_encode``):
    x [n, 3] (clamped into [0, 1]^3), params [n_levels, 2**log2_table_size, n_features]
    -> [n, n_levels * n_features], level-major."""
    spec = hash_grid_spec("reference.hash_encode", n_levels, n_features, log2_table_size,
                          base_resolution, per_level_scale)
    if tuple(params.shape) != spec.params_shape:
        raise ValueError(f"reference.hash_encode: params must be {list(spec.params_shape)}, "
                         f"got {list(params.shape)}")
    levels = level_geometry(spec)
    scale = torch.tensor([lv.scale for lv in levels], dtype=x.dtype, device=x.device)
    # Clamped with the kernels' gradient convention spelled out (1 on [0, 1] including its
    # ends, 0 outside, NaN through): torch.clamp's gradient at the bounds differs by version.
    outside = (x < 0.0) | (x > 1.0)
    clamped = torch.where(outside, x.clamp(0.0, 1.0).detach(), x)
    pos = clamped[:, None, :] * scale[:, None] + 0.5               # [n, L, 3]
    lower = torch.floor(pos).detach()
    t = pos - lower                                                # differentiable: dt/dx = scale
    upper = torch.tensor([[(k >> d) & 1 for d in range(3)] for k in range(8)], device=x.device)
    corner = lower.long()[:, :, None, :] + upper                   # [n, L, 8, 3]
    resolution = torch.tensor([lv.resolution for lv in levels], device=x.device)[:, None]
    dense = torch.tensor([lv.dense for lv in levels], device=x.device)[:, None]
    first_row = torch.arange(n_levels, device=x.device)[:, None] * spec.table_size
    rows = corner_rows(corner, resolution, dense, spec.table_size) + first_row
    corners = params.reshape(-1, n_features)[rows]                 # [n, L, 8, F]
    factors = torch.where(upper.bool(), t[:, :, None, :], 1 - t[:, :, None, :])
    w = factors[..., 0] * factors[..., 1] * factors[..., 2]        # [n, L, 8]
    # Corner by corner from 0, in the kernels' order (the float32 results then agree bit for bit).
    out = sum(w[:, :, c, None] * corners[:, :, c] for c in range(8))
    return out.reshape(x.shape[0], n_levels * n_features)


def frequency_encode(x: Tensor, n_frequencies: int,
                     frequencies: Optional[Tensor] = None) -> Tensor:
    """NeRF's positional encoding with the input (see ``fastfield.frequency_encode``), the way
    nerf-pytorch's Embedder computes it: x [..., d] -> [..., d * (1 + 2 * n_frequencies)] =
    [x, sin(2^0 x), cos(2^0 x), ..., sin(2^(L-1) x), cos(2^(L-1) x)]. Returns x itself when
    n_frequencies is 0. ``frequencies``: the [n_frequencies] powers 2^k, if the caller keeps
    them (PositionalEncoding's buffer), else made here."""
    if n_frequencies == 0:
        return x
    if frequencies is None:
        frequencies = 2.0 ** torch.arange(n_frequencies, dtype=torch.float32, device=x.device)
    scaled = x[..., None, :] * frequencies[:, None].to(x.dtype)       # [..., L, d]
    sin_cos = torch.stack([torch.sin(scaled), torch.cos(scaled)], -2)  # [..., L, 2, d]
    return torch.cat([x, sin_cos.flatten(-3)], -1)
