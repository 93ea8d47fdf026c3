"""NeRF (Mildenhall et al. 2020) as nerf-pytorch trains it: a coarse and a fine radiance field.
How they are sampled and composited (stratified, then hierarchical samples, both passes
supervised) is fastfield.render.nerf's NeRF pipeline; the sample counts live here, in the
model's configuration, so that a checkpoint says how its fields were trained."""
from dataclasses import dataclass, field
from typing import Optional

from torch import nn

from .hash_field import HashFieldConfig, HashNeRFField
from .radiance import MLPConfig, NeRFField

FIELD_KINDS = ("mlp", "hash")


def check_field_kind(section: str, kind: str) -> None:
    """ValueError unless ``kind`` is a field kind fastfield builds ("mlp" or "hash")."""
    if kind not in FIELD_KINDS:
        raise ValueError(f"{section}.field must be one of {', '.join(map(repr, FIELD_KINDS))}, "
                         f"got {kind!r}")


@dataclass
class NeRFConfig:
    coarse: MLPConfig = field(default_factory=MLPConfig)
    fine: Optional[MLPConfig] = field(default_factory=MLPConfig)  # None: coarse pass only
    n_coarse: int = 64
    n_fine: int = 128
    lindisp: bool = False
    raw_noise_std: float = 0.0  # density noise while training (fern: 1.0)
    # "mlp": nerf-pytorch's NeRFField from coarse/fine; "hash": instant-ngp's HashNeRFField
    # from ``hash`` (defaults when None) for each pass (fine None or n_fine 0: one field).
    field: str = "mlp"
    hash: Optional[HashFieldConfig] = None


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
        check_field_kind("nerf", config.field)
        if config.field == "hash":
            def make(_):
                return HashNeRFField(config.hash)
        else:
            make = NeRFField
        self.coarse = coarse if coarse is not None else make(config.coarse)
        if fine is None and config.fine is not None and config.n_fine > 0:
            fine = make(config.fine)
        self.fine = fine
