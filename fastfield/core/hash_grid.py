"""The multi-resolution hash grid's configuration: checks shared by ``fastfield.hash_encode``,
its twin and ``fastfield.HashGrid``, and the per-level geometry the twin evaluates (the kernels
compute the same expressions in C++, csrc/encoding/hash_encode_host.cpp)."""
import math
import numbers
from typing import List, NamedTuple

from .checks import int_at_least

MAX_LEVELS = 64          # the kernels' limit (kMaxHashLevels)
MAX_LOG2_TABLE_SIZE = 31
MAX_SCALE = 2.0 ** 30    # finest scale the kernels accept


class HashGridSpec(NamedTuple):
    """Arguments of ``hash_encode`` after its checks."""
    n_levels: int
    n_features: int
    log2_table_size: int
    base_resolution: float
    per_level_scale: float

    @property
    def table_size(self) -> int:
        return 2 ** self.log2_table_size

    @property
    def params_shape(self):
        """[n_levels, 2**log2_table_size, n_features]"""
        return (self.n_levels, self.table_size, self.n_features)

    @property
    def out_dim(self) -> int:
        return self.n_levels * self.n_features


class HashLevel(NamedTuple):
    scale: float      # s_l = base_resolution * per_level_scale**l - 1
    resolution: int   # r_l = ceil(s_l) + 1
    dense: bool       # r_l**3 <= table size: rows i + j r + k r^2, else the prime hash


def _real_at_least(op: str, name: str, value, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"fastfield.{op}: {name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and value >= minimum):
        raise ValueError(f"fastfield.{op}: {name} must be >= {minimum:g}, got {value}")
    return value


def hash_grid_spec(op: str, n_levels, n_features, log2_table_size, base_resolution,
                   per_level_scale) -> HashGridSpec:
    """Checks the grid arguments (TypeError for the wrong kind, ValueError for a bad value,
    each naming the argument) and returns them normalised."""
    n_levels = int_at_least(op, "n_levels", n_levels, 1)
    if n_levels > MAX_LEVELS:
        raise ValueError(f"fastfield.{op}: n_levels must be <= {MAX_LEVELS}, got {n_levels}")
    n_features = int_at_least(op, "n_features", n_features, 1)
    log2_table_size = int_at_least(op, "log2_table_size", log2_table_size, 0)
    if log2_table_size > MAX_LOG2_TABLE_SIZE:
        raise ValueError(f"fastfield.{op}: log2_table_size must be <= {MAX_LOG2_TABLE_SIZE}, "
                         f"got {log2_table_size}")
    spec = HashGridSpec(n_levels, n_features, log2_table_size,
                        _real_at_least(op, "base_resolution", base_resolution, 1.0),
                        _real_at_least(op, "per_level_scale", per_level_scale, 1.0))
    finest = level_scale(spec, n_levels - 1)
    if not finest < MAX_SCALE:
        raise ValueError(f"fastfield.{op}: the finest level's scale base_resolution * "
                         f"per_level_scale**(n_levels - 1) - 1 = {finest:g} must be below 2**30")
    return spec


def level_scale(spec: HashGridSpec, level: int) -> float:
    """s_l in float64, the same expression as the kernels' (std::pow there, pow here)."""
    return spec.base_resolution * spec.per_level_scale ** float(level) - 1.0


def level_geometry(spec: HashGridSpec) -> List[HashLevel]:
    """Scale, resolution and dense/hashed for every level."""
    levels = []
    for level in range(spec.n_levels):
        scale = level_scale(spec, level)
        resolution = math.ceil(scale) + 1
        levels.append(HashLevel(scale, resolution, resolution ** 3 <= spec.table_size))
    return levels
