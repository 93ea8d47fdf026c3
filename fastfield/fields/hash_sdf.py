"""The hash-grid SDF field of instant-nsr-pl (NeuS with instant-ngp's encoding)."""
import math
from typing import Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from .hash_field import BoxNormalisation, HashFieldConfig, hash_grid


class HashSDFField(nn.Module):
    """points [N, 3] -> (sdf [N], feature [N, geo_features]), SDFField's signature.

    instant-nsr-pl's geometry network: the raw point concatenated with the hash encoding of the
    point normalised into the config's box, an MLP of ``hidden_layers`` x ``hidden_width`` with
    Softplus(beta) and 1 + geo_features outputs. Geometric initialisation as NeuS's (and
    instant-nsr-pl's ``sphere_init``): the weights reading the hash features start at zero and
    the output layer makes sdf(x) ~ |x| - init_radius, so the field starts as a sphere.
    Normals come from autograd through ``hash_encode`` (its backward is differentiable, so
    ``sdf_and_gradient(..., create_graph=True)`` trains the eikonal loss).
    """

    def __init__(self, config: Optional[HashFieldConfig] = None, init_radius: float = 0.5,
                 softplus_beta: float = 100.0, use_weight_norm: bool = True):
        super().__init__()
        self.config = config = config if config is not None else HashFieldConfig()
        self.grid = hash_grid(config)
        self.normalise = BoxNormalisation(config.aabb)
        dims = ([3 + self.grid.out_dim] + [config.hidden_width] * config.hidden_layers
                + [1 + config.geo_features])
        layers = []
        for i in range(len(dims) - 1):
            layer = nn.Linear(dims[i], dims[i + 1])
            nn.init.zeros_(layer.bias)
            if i == len(dims) - 2:   # output: sdf ~ |x| - r
                nn.init.normal_(layer.weight, math.sqrt(math.pi) / math.sqrt(dims[i]), 1e-4)
                nn.init.constant_(layer.bias, -init_radius)
            else:
                nn.init.normal_(layer.weight, 0.0, math.sqrt(2) / math.sqrt(dims[i + 1]))
                if i == 0:           # only the raw point reaches the first layer at init
                    nn.init.zeros_(layer.weight[:, 3:])
            layers.append(weight_norm(layer) if use_weight_norm else layer)
        self.layers = nn.ModuleList(layers)
        self.activation = nn.Softplus(beta=softplus_beta)

    def forward(self, points: Tensor) -> Tuple[Tensor, Tensor]:
        x = torch.cat([points, self.grid(self.normalise(points)).to(points.dtype)], -1)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.activation(x)
        return x[:, 0], x[:, 1:]

    def sdf(self, points: Tensor) -> Tensor:
        return self.forward(points)[0]
