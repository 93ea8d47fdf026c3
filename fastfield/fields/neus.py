"""NeuS (Wang et al. 2021) as its code trains it: an SDF field with geometric initialisation, a
single variance, an IDR colour field and a NeRF++ background beyond the unit sphere. How they are
sampled and composited (4-step hierarchical up-sampling, the fused SDF compositing op) is
fastfield.render.neus's NeuS pipeline; the sample counts live here, in the model's
configuration."""
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import Tensor, nn

from .background import BackgroundField
from .hash_field import HashFieldConfig
from .hash_sdf import HashSDFField
from .nerf import check_field_kind
from .radiance import MLPConfig
from .sdf import ColorConfig, ColorField, SDFConfig, SDFField


def _background_default() -> MLPConfig:
    return MLPConfig(depth=8, width=256, skips=(4,), pos_frequencies=10, dir_frequencies=4,
                     in_dim=4)


@dataclass
class NeuSConfig:
    sdf: SDFConfig = field(default_factory=SDFConfig)
    color: ColorConfig = field(default_factory=ColorConfig)
    background: MLPConfig = field(default_factory=_background_default)
    n_samples: int = 64
    n_importance: int = 64       # added over up_sample_steps steps
    up_sample_steps: int = 4
    n_outside: int = 32          # 0: no background model (NeuS wmask)
    variance_init: float = 0.3
    # "mlp": NeuS's SDFField from ``sdf``; "hash": instant-nsr-pl's HashSDFField from ``hash``
    # (defaults when None; aabb should cover the unit sphere) with ``sdf``'s init_radius,
    # softplus_beta and weight_norm, and a feature of hash.geo_features for the colour field.
    field: str = "mlp"
    hash: Optional[HashFieldConfig] = None

    def feature_dim(self) -> int:
        """Width of the SDF field's feature (the colour field's input)."""
        if self.field == "hash":
            return (self.hash or HashFieldConfig()).geo_features
        return self.sdf.feature_dim


class NeuS(nn.Module):
    """NeuS's fields in the unit sphere of the normalised scene, with an optional NeRF++
    background.

    ``sdf_network``: points [N, 3] -> (sdf [N], feature [N, F]) (an SDFField or any module
    with its signature); ``color_network``: (points, normals, view directions [N, 3],
    feature [N, F]) -> rgb [N, 3] in [0, 1]; ``background``: (world points [N, 3], view
    directions [N, 3]) -> (raw density [N], raw rgb [N, 3]) beyond the unit sphere, or None;
    ``variance``: NeuS's single variance, inv_s = exp(10 * variance).
    """

    kind = "neus"

    def __init__(self, config: NeuSConfig, sdf_network: Optional[nn.Module] = None,
                 color_network: Optional[nn.Module] = None,
                 background: Optional[nn.Module] = None):
        super().__init__()
        self.config = config
        check_field_kind("neus", config.field)
        if sdf_network is None:
            sdf_network = (SDFField(config.sdf) if config.field == "mlp" else
                           HashSDFField(config.hash, config.sdf.init_radius,
                                        config.sdf.softplus_beta, config.sdf.weight_norm))
        self.sdf_network = sdf_network
        self.color_network = (color_network if color_network is not None
                              else ColorField(config.color, config.feature_dim()))
        if background is None and config.n_outside > 0:
            background = BackgroundField(config.background)
        self.background = background
        self.variance = nn.Parameter(torch.tensor(config.variance_init))

    def inv_s(self) -> Tensor:
        """NeuS's SingleVarianceNetwork: exp(10 * variance), clipped to [1e-6, 1e6]."""
        return torch.exp(self.variance * 10.0).clip(1e-6, 1e6)
