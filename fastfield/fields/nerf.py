"""NeRF (Mildenhall et al. 2020) as nerf-pytorch trains it: a coarse and a fine radiance field.
How they are sampled and composited (stratified, then hierarchical samples, both passes
supervised) is fastfield.render.nerf's NeRF pipeline; the sample counts live here, in the
model's configuration, so that a checkpoint says how its fields were trained."""
from dataclasses import dataclass, field
from typing import Optional

from torch import nn

from .radiance import MLPConfig, NeRFField


@dataclass
class NeRFConfig:
    coarse: MLPConfig = field(default_factory=MLPConfig)
    fine: Optional[MLPConfig] = field(default_factory=MLPConfig)  # None: coarse pass only
    n_coarse: int = 64
    n_fine: int = 128
    lindisp: bool = False
    raw_noise_std: float = 0.0  # density noise while training (fern: 1.0)


class NeRF(nn.Module):
    """The coarse and fine fields of NeRF (``fine`` is None for a coarse pass only).

    Either field can be any module with NeRFField's signature (points [N, 3], unit view
    directions [N, 3]) -> (raw density [N], raw rgb [N, 3]); the benchmark suite swaps in a
    trivial one to time the pipeline around the networks.
    """

    kind = "nerf"

    def __init__(self, config: NeRFConfig, coarse: Optional[nn.Module] = None,
                 fine: Optional[nn.Module] = None):
        super().__init__()
        self.config = config
        self.coarse = coarse if coarse is not None else NeRFField(config.coarse)
        if fine is None and config.fine is not None and config.n_fine > 0:
            fine = NeRFField(config.fine)
        self.fine = fine
