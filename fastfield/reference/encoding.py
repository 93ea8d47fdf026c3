"""Pure-PyTorch twin of the hash encoding (see fastfield.ops.encoding).

Written level by level and corner by corner with gathers, so autograd supplies its first and
second derivatives: an independent reference for the kernels' analytic backward and double
backward.
"""
import torch
from torch import Tensor

from ..core.hash_grid import hash_grid_spec, level_geometry

# tiny-cuda-nn's coherent prime hash (the x prime is 1).
PRIMES = (1, 2654435761, 805459861)


def corner_rows(corner: Tensor, resolution: int, dense: bool, table_size: int) -> Tensor:
    """Rows of grid points ``corner`` (int64 [n, 3]): i + j r + k r^2 on a dense level, the prime
    hash (uint32 arithmetic) on a hashed one, modulo the table size (a power of two)."""
    i, j, k = corner.unbind(-1)
    if dense:
        row = i + j * resolution + k * (resolution * resolution)
    else:
        # int64 products of coordinates below 2^31 with primes below 2^32 do not overflow, and
        # the low 32 bits of their xor are those of the uint32 computation.
        row = (i * PRIMES[0]) ^ (j * PRIMES[1]) ^ (k * PRIMES[2])
    return row & (table_size - 1)


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
    x = x.clamp(0.0, 1.0)
    features = []
    for level, geometry in enumerate(level_geometry(spec)):
        pos = x * geometry.scale + 0.5
        lower = torch.floor(pos).detach()
        t = pos - lower                     # differentiable in x: dt/dx = scale
        corner = lower.long()
        out = 0
        for k in range(8):
            upper = [(k >> d) & 1 for d in range(3)]
            rows = corner_rows(corner + torch.tensor(upper, device=x.device),
                               geometry.resolution, geometry.dense, spec.table_size)
            w = ((t[:, 0] if upper[0] else 1 - t[:, 0]) * (t[:, 1] if upper[1] else 1 - t[:, 1])
                 * (t[:, 2] if upper[2] else 1 - t[:, 2]))
            out = out + w[:, None] * params[level, rows]
        features.append(out)
    return torch.cat(features, -1)
