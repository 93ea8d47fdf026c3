"""The multi-resolution hash grid as a module: it owns the table that ``hash_encode`` reads."""
from typing import Optional

import torch
from torch import Tensor, nn

from ..core.hash_grid import hash_grid_spec


class HashGrid(nn.Module):
    """instant-ngp's multi-resolution hash encoding of points in [0, 1]^3 (see
    ``fastfield.hash_encode`` for the grid; points outside are clamped).

    ``params`` [n_levels, 2**log2_table_size, n_features] starts uniform in
    [-init_scale, init_scale] (instant-ngp: 1e-4). Importing this module loads no kernels; the
    first forward does.
    """

    def __init__(self, n_levels: int = 16, n_features: int = 2, log2_table_size: int = 19,
                 base_resolution: float = 16, per_level_scale: float = 1.3819,
                 init_scale: float = 1e-4, device: Optional[torch.device] = None,
                 dtype: Optional[torch.dtype] = None):
        super().__init__()
        self.spec = hash_grid_spec("HashGrid", n_levels, n_features, log2_table_size,
                                   base_resolution, per_level_scale)
        table = torch.empty(self.spec.params_shape, device=device, dtype=dtype)
        self.params = nn.Parameter(table.uniform_(-init_scale, init_scale))

    @property
    def out_dim(self) -> int:
        """n_levels * n_features"""
        return self.spec.out_dim

    def forward(self, x: Tensor) -> Tensor:
        """x [..., 3] in [0, 1]^3 -> features [..., n_levels * n_features], level-major."""
        from ..ops.encoding import hash_encode  # loads the kernels on first use

        if x.shape[-1:] != (3,):
            raise ValueError(f"fastfield.HashGrid: x must be [..., 3], got {list(x.shape)}")
        features = hash_encode(x.reshape(-1, 3), self.params, *self.spec)
        return features.reshape(*x.shape[:-1], self.out_dim)

    def extra_repr(self) -> str:
        s = self.spec
        return (f"n_levels={s.n_levels}, n_features={s.n_features}, "
                f"log2_table_size={s.log2_table_size}, base_resolution={s.base_resolution:g}, "
                f"per_level_scale={s.per_level_scale:g}")
