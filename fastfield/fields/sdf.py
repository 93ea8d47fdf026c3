"""NeuS's fields: the SDF field (points -> signed distance and a feature) with its geometric
initialisation, and the IDR colour field that reads the SDF's normal and feature."""
import math
from dataclasses import dataclass
from typing import Tuple

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from .encoding import PositionalEncoding
from .mixed import cat_as, softplus_as_input


@dataclass
class SDFConfig:
    depth: int = 8
    width: int = 256
    skips: Tuple[int, ...] = (4,)
    frequencies: int = 6
    feature_dim: int = 256
    init_radius: float = 0.5   # geometric initialisation: SDF of a sphere of this radius
    weight_norm: bool = True
    softplus_beta: float = 100.0


@dataclass
class ColorConfig:
    depth: int = 4
    width: int = 256
    dir_frequencies: int = 4
    weight_norm: bool = True


def _linear(in_dim: int, out_dim: int, use_weight_norm: bool, init) -> nn.Module:
    layer = nn.Linear(in_dim, out_dim)
    init(layer)
    return weight_norm(layer) if use_weight_norm else layer


class SDFField(nn.Module):
    """points [N, 3] -> (sdf [N], feature [N, feature_dim]); NeuS's SDFNetwork with its
    geometric initialisation (a sphere of ``init_radius``) and Softplus(beta=100)."""

    def __init__(self, config: SDFConfig):
        super().__init__()
        self.config = config
        self.encoding = PositionalEncoding(3, config.frequencies)
        in_dim = self.encoding.out_dim
        dims = [in_dim] + [config.width] * config.depth + [1 + config.feature_dim]
        layers = []
        n_linear = len(dims) - 1
        for i in range(n_linear):
            out_dim = dims[i + 1] - in_dim if i + 1 in config.skips else dims[i + 1]

            def init(layer, i=i, out_dim=out_dim):
                nn.init.zeros_(layer.bias)
                if i == n_linear - 1:   # output layer: sdf(x) ~ |x| - r
                    nn.init.normal_(layer.weight, math.sqrt(math.pi) / math.sqrt(dims[i]), 1e-4)
                    nn.init.constant_(layer.bias, -config.init_radius)
                    return
                nn.init.normal_(layer.weight, 0.0, math.sqrt(2) / math.sqrt(out_dim))
                if i == 0 and config.frequencies > 0:    # only the raw xyz reaches layer 0
                    nn.init.zeros_(layer.weight[:, 3:])
                elif i in config.skips and config.frequencies > 0:  # skip input: xyz only
                    nn.init.zeros_(layer.weight[:, -(in_dim - 3):])

            layers.append(_linear(dims[i], out_dim, config.weight_norm, init))
        self.layers = nn.ModuleList(layers)

    def forward(self, points: Tensor) -> Tuple[Tensor, Tensor]:
        encoded = self.encoding(points)
        x = encoded
        for i, layer in enumerate(self.layers):
            if i in self.config.skips:
                x = cat_as(x, [x, encoded]) / math.sqrt(2)
            x = layer(x)
            if i < len(self.layers) - 1:
                x = softplus_as_input(x, self.config.softplus_beta)
        return x[:, 0], x[:, 1:]

    def sdf(self, points: Tensor) -> Tensor:
        return self.forward(points)[0]


def sdf_and_gradient(sdf_field, points: Tensor, create_graph: bool
                     ) -> Tuple[Tensor, Tensor, Tensor]:
    """(sdf [N], feature [N, F], d sdf / d points [N, 3]) from one forward pass of any callable
    returning (sdf, feature) (NeuS runs its network twice for this). Works under torch.no_grad
    (rendering); create_graph=True keeps the graph for the eikonal loss and the colour field."""
    with torch.enable_grad():
        points = points.detach().requires_grad_(True)
        sdf, feature = sdf_field(points)
        (gradient,) = torch.autograd.grad(sdf, points, torch.ones_like(sdf),
                                          create_graph=create_graph)
    if not create_graph:
        sdf, feature = sdf.detach(), feature.detach()
    return sdf, feature, gradient


class ColorField(nn.Module):
    """NeuS's IDR rendering network: (point, normal, view direction, feature) -> rgb in [0, 1]
    (all [N, ...]; normal is the SDF gradient)."""

    def __init__(self, config: ColorConfig, feature_dim: int):
        super().__init__()
        self.dir_encoding = PositionalEncoding(3, config.dir_frequencies)
        dims = [3 + self.dir_encoding.out_dim + 3 + feature_dim] + [config.width] * config.depth + [3]
        self.layers = nn.ModuleList(
            _linear(dims[i], dims[i + 1], config.weight_norm, lambda layer: None)
            for i in range(len(dims) - 1))

    def forward(self, points: Tensor, normals: Tensor, viewdirs: Tensor, feature: Tensor) -> Tensor:
        x = cat_as(feature, [points, self.dir_encoding(viewdirs), normals, feature])
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return torch.sigmoid(x)
