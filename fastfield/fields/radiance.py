"""The NeRF MLP field: nerf-pytorch's network, used for NeRF's coarse and fine fields and (with
the inverted-sphere input of fastfield.fields.background) for NeuS's NeRF++ background."""
from dataclasses import dataclass
from typing import Tuple

import torch
from torch import Tensor, nn

from .encoding import PositionalEncoding
from .mixed import cat_as


@dataclass
class MLPConfig:
    """nerf-pytorch's NeRF network: depth x width, skip connection(s), positional encodings."""
    depth: int = 8
    width: int = 256
    skips: Tuple[int, ...] = (4,)
    pos_frequencies: int = 10
    dir_frequencies: int = 4
    use_viewdirs: bool = True
    in_dim: int = 3


class NeRFField(nn.Module):
    """(points [N, in_dim], unit view directions [N, 3]) -> (raw density [N], raw rgb [N, 3]).

    Raw outputs: the renderer applies the activations (ReLU or softplus density, sigmoid
    colour), as nerf-pytorch's ``raw2outputs`` and NeuS's ``render_core_outside`` do.
    ``density(points)`` is the density alone, without the view-dependent branch (what an
    occupancy grid or a density-only probe needs).
    """

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = config
        self.pos_encoding = PositionalEncoding(config.in_dim, config.pos_frequencies)
        self.dir_encoding = PositionalEncoding(3, config.dir_frequencies)
        in_ch, width = self.pos_encoding.out_dim, config.width
        layers = [nn.Linear(in_ch, width)]
        for i in range(config.depth - 1):
            layers.append(nn.Linear(width + in_ch if i in config.skips else width, width))
        self.point_layers = nn.ModuleList(layers)
        if config.use_viewdirs:
            self.density_head = nn.Linear(width, 1)
            self.feature_layer = nn.Linear(width, width)
            self.view_layer = nn.Linear(width + self.dir_encoding.out_dim, width // 2)
            self.rgb_head = nn.Linear(width // 2, 3)
        else:
            self.output_head = nn.Linear(width, 4)

    def _trunk(self, points: Tensor) -> Tensor:
        """The position-only layers: [N, in_dim] -> [N, width] features."""
        encoded = self.pos_encoding(points)
        h = encoded
        for i, layer in enumerate(self.point_layers):
            h = torch.relu(layer(h))
            if i in self.config.skips:
                h = cat_as(h, [encoded, h])
        return h

    def forward(self, points: Tensor, viewdirs: Tensor) -> Tuple[Tensor, Tensor]:
        h = self._trunk(points)
        if not self.config.use_viewdirs:
            out = self.output_head(h)
            return out[:, 3], out[:, :3]
        density = self.density_head(h)[:, 0]
        feature = self.feature_layer(h)
        h = cat_as(feature, [feature, self.dir_encoding(viewdirs)])
        rgb = self.rgb_head(torch.relu(self.view_layer(h)))
        return density, rgb

    def density(self, points: Tensor) -> Tensor:
        """Raw density [N] at points [N, in_dim]: ``forward``'s first output, without the
        view-dependent layers."""
        h = self._trunk(points)
        if not self.config.use_viewdirs:
            return self.output_head(h)[:, 3]
        return self.density_head(h)[:, 0]
