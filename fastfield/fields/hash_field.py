"""instant-ngp's NeRF field: a multi-resolution hash grid with tiny MLPs (Müller et al. 2022),
and the configuration every hash-grid field of fastfield shares."""
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from .hash_grid import HashGrid
from .spherical_harmonics import SphericalHarmonics

# Density above exp(15) is opaque at any sample spacing; clamping keeps exp finite.
_MAX_LOG_DENSITY = 15.0


@dataclass
class HashFieldConfig:
    """A hash grid over an axis-aligned box and the tiny MLPs reading it (instant-ngp's
    defaults). ``per_level_scale`` follows from ``finest_resolution`` as in instant-ngp:
    exp(ln(finest / base) / (n_levels - 1)); 2048 x instant-ngp's aabb_scale (1 for the
    synthetic scenes) gives its 1.3819 at 16 levels."""
    n_levels: int = 16
    n_features: int = 2
    log2_table_size: int = 19
    base_resolution: float = 16.0
    finest_resolution: float = 2048.0
    hidden_width: int = 64
    hidden_layers: int = 1       # of the density (or SDF) MLP; the colour MLP has two
    geo_features: int = 15       # feature outputs besides the density (or SDF)
    sh_degree: int = 4           # view directions: degree**2 spherical-harmonic coefficients
    # The box the grid covers (x_min, y_min, z_min, x_max, y_max, z_max), scene units.
    aabb: Tuple[float, ...] = (-1.5, -1.5, -1.5, 1.5, 1.5, 1.5)

    def per_level_scale(self) -> float:
        if self.n_levels == 1:
            return 1.0
        return math.exp(math.log(self.finest_resolution / self.base_resolution)
                        / (self.n_levels - 1))

    def check(self) -> None:
        """ValueError naming the field for a box or resolutions the grid cannot use."""
        if len(self.aabb) != 6 or any(hi <= lo for lo, hi in zip(self.aabb[:3], self.aabb[3:])):
            raise ValueError(f"hash.aabb must be (x_min, y_min, z_min, x_max, y_max, z_max) "
                             f"with max > min, got {tuple(self.aabb)}")
        if self.finest_resolution < self.base_resolution:
            raise ValueError(f"hash.finest_resolution ({self.finest_resolution}) must be >= "
                             f"hash.base_resolution ({self.base_resolution})")
        for name in ("hidden_width", "hidden_layers", "geo_features"):
            if getattr(self, name) < 1:
                raise ValueError(f"hash.{name} must be >= 1, got {getattr(self, name)}")


def hash_grid(config: HashFieldConfig) -> HashGrid:
    config.check()
    return HashGrid(config.n_levels, config.n_features, config.log2_table_size,
                    config.base_resolution, config.per_level_scale())


def mlp(dims, activation: nn.Module) -> nn.Sequential:
    """Linear layers through ``dims`` with ``activation`` between them (none after the last)."""
    layers = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(activation)
    return nn.Sequential(*layers)


class _TruncExp(torch.autograd.Function):
    """instant-ngp's density activation: exp, with the gradient's exponent clamped to
    [-15, 15] (and, here, the value's too, so it stays finite)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return torch.exp(x.clamp(max=_MAX_LOG_DENSITY))

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad * torch.exp(x.clamp(-_MAX_LOG_DENSITY, _MAX_LOG_DENSITY))


def trunc_exp(x: Tensor) -> Tensor:
    return _TruncExp.apply(x)


class BoxNormalisation(nn.Module):
    """Points [N, 3] in scene units -> [N, 3] in [0, 1]^3 over ``aabb`` (outside: beyond)."""

    def __init__(self, aabb):
        super().__init__()
        box = torch.tensor(aabb, dtype=torch.float32)
        self.register_buffer("box_min", box[:3], persistent=False)
        self.register_buffer("box_size", box[3:] - box[:3], persistent=False)

    def forward(self, points: Tensor) -> Tensor:
        return (points - self.box_min.to(points.dtype)) / self.box_size.to(points.dtype)


class HashNeRFField(nn.Module):
    """(points [N, 3], unit view directions [N, 3]) -> (density [N], raw rgb [N, 3]): instant-ngp's
    NeRF network, a drop-in for NeRFField.

    Points are normalised into the config's box and hash-encoded; one hidden layer of
    ``hidden_width`` gives 1 + ``geo_features`` outputs: the first, through exp (trunc_exp), is
    the density, the rest a feature. Degree-``sh_degree`` spherical harmonics of the view
    direction with that feature feed the colour MLP (two hidden layers of ``hidden_width``).

    The density is returned already activated (>= 0, so the NeRF pipeline's ReLU leaves it as
    it is) and zero outside the box; the colour raw (the pipeline applies the sigmoid).
    """

    def __init__(self, config: Optional[HashFieldConfig] = None):
        super().__init__()
        self.config = config = config if config is not None else HashFieldConfig()
        self.grid = hash_grid(config)
        self.normalise = BoxNormalisation(config.aabb)
        self.dir_encoding = SphericalHarmonics(config.sh_degree)
        width = config.hidden_width
        self.density_net = mlp([self.grid.out_dim] + [width] * config.hidden_layers
                               + [1 + config.geo_features], nn.ReLU())
        self.color_net = mlp([self.dir_encoding.out_dim + config.geo_features, width, width, 3],
                             nn.ReLU())

    def _density_and_feature(self, points: Tensor) -> Tuple[Tensor, Tensor]:
        unit = self.normalise(points)
        inside = ((unit >= 0.0) & (unit <= 1.0)).all(-1)            # [N]
        out = self.density_net(self.grid(unit))
        density = trunc_exp(out[:, 0]) * inside.to(out.dtype)
        return density, out[:, 1:]

    def forward(self, points: Tensor, viewdirs: Tensor) -> Tuple[Tensor, Tensor]:
        density, feature = self._density_and_feature(points)
        rgb = self.color_net(torch.cat([self.dir_encoding(viewdirs).to(feature.dtype),
                                        feature], -1))
        return density, rgb

    def density(self, points: Tensor) -> Tensor:
        """Density [N] at points [N, 3] without the colour branch (occupancy grids)."""
        return self._density_and_feature(points)[0]
