"""NeRF++'s background field (NeuS ``render_core_outside``): the NeRF MLP field over the
inverted sphere, so that the unbounded space beyond the unit sphere maps to a bounded input."""
from typing import Tuple

import torch
from torch import Tensor

from .radiance import MLPConfig, NeRFField


def inverted_sphere(points: Tensor) -> Tensor:
    """NeRF++'s input for world points [N, 3]: (x/r, y/r, z/r, 1/r) [N, 4] with
    r = max(|x|, 1) (points inside the unit sphere keep their coordinates and 1)."""
    radius = points.norm(dim=-1, keepdim=True).clip(1.0, 1e10)
    return torch.cat([points / radius, 1.0 / radius], -1)


class BackgroundField(NeRFField):
    """(world points [N, 3], unit view directions [N, 3]) -> (raw density [N], raw rgb [N, 3])
    of a NeRF MLP (``config.in_dim`` = 4) evaluated at ``inverted_sphere(points)``. Raw
    outputs as NeRFField's: NeuS's renderer takes softplus density and sigmoid colour."""

    def __init__(self, config: MLPConfig):
        if config.in_dim != 4:
            raise ValueError(f"the background field's MLP takes the 4-d inverted-sphere "
                             f"points: in_dim must be 4, got {config.in_dim}")
        super().__init__(config)

    def forward(self, points: Tensor, viewdirs: Tensor) -> Tuple[Tensor, Tensor]:
        return super().forward(inverted_sphere(points), viewdirs)

    def density(self, points: Tensor) -> Tensor:
        return super().density(inverted_sphere(points))
