"""NeRF (Mildenhall et al. 2020) as nerf-pytorch trains it: a coarse and a fine radiance field,
or (``sampler="occupancy"``) one field marched through an occupancy grid (nerfacc's vanilla
NeRF). How they are sampled and composited is fastfield.render's NeRF pipelines; the sample
counts and the grid's settings live here, in the model's configuration, so that a checkpoint
says how its fields were trained."""
from dataclasses import dataclass, field
from typing import Optional, Tuple

from torch import nn

from ..occupancy import OccupancyGrid
from .hash_field import HashFieldConfig, HashNeRFField
from .radiance import MLPConfig, NeRFField

SAMPLERS = ("hierarchical", "occupancy")
FIELD_KINDS = ("mlp", "hash")


@dataclass
class OccupancyConfig:
    """The occupancy grid of ``sampler="occupancy"`` and how rays are marched through it
    (instant-ngp / nerfacc; see fastfield.OccupancyGrid and fastfield.march_rays)."""
    resolution: int = 128                 # cells per axis
    levels: int = 1                       # cascades (1: the box only)
    update_every: int = 16                # grid update every this many training steps
    warm_up: int = 256                    # steps during which updates evaluate every cell
    decay: float = 0.95                   # the density grid's moving maximum, per update
    threshold: float = 0.01               # occupied: density x render_step_size above this
    render_step_size: Optional[float] = None  # world units; None: the box diagonal / 1024
    cone_angle: float = 0.0               # > 0: steps grow with distance (large scenes)
    early_stop_eps: float = 1e-4          # samples behind transmittance <= this are dropped
    # (xmin, ymin, zmin, xmax, ymax, zmax) in world units: nerfacc's box for NeRF-synthetic.
    aabb: Tuple[float, ...] = (-1.5, -1.5, -1.5, 1.5, 1.5, 1.5)

    def step_size(self) -> float:
        """The render step size in world units (the box diagonal / 1024 when unset)."""
        if self.render_step_size is not None:
            return float(self.render_step_size)
        lo, hi = self.aabb[:3], self.aabb[3:]
        return sum((b - a) ** 2 for a, b in zip(lo, hi)) ** 0.5 / 1024


def check_field_kind(section: str, kind: str) -> None:
    """ValueError unless ``kind`` is a field kind fastfield builds ("mlp" or "hash")."""
    if kind not in FIELD_KINDS:
        raise ValueError(f"{section}.field must be one of {', '.join(map(repr, FIELD_KINDS))}, "
                         f"got {kind!r}")


@dataclass
class NeRFConfig:
    coarse: MLPConfig = field(default_factory=MLPConfig)
    fine: Optional[MLPConfig] = field(default_factory=MLPConfig)  # None: coarse pass only
    n_coarse: int = 64     # hierarchical: stratified samples per ray (unused by "occupancy")
    n_fine: int = 128
    lindisp: bool = False
    raw_noise_std: float = 0.0  # density noise while training (fern: 1.0)
    # "mlp": nerf-pytorch's NeRFField from coarse/fine; "hash": instant-ngp's HashNeRFField
    # from ``hash`` (defaults when None) for each pass (fine None or n_fine 0: one field).
    field: str = "mlp"
    hash: Optional[HashFieldConfig] = None
    sampler: str = "hierarchical"  # "hierarchical" (nerf-pytorch) or "occupancy" (nerfacc)
    occupancy: Optional[OccupancyConfig] = None  # sampler="occupancy": its grid (None: defaults)


def check_sampler(config: NeRFConfig) -> None:
    """ValueError naming the field for a sampler setting no pipeline can honour."""
    if config.sampler not in SAMPLERS:
        raise ValueError(f"nerf.sampler must be one of {', '.join(map(repr, SAMPLERS))}, got "
                         f"{config.sampler!r}")
    if config.sampler != "occupancy":
        return
    if config.fine is not None and config.n_fine > 0:
        raise ValueError("nerf.sampler='occupancy' renders one field: set nerf.fine=None and "
                         f"nerf.n_fine=0 (got n_fine={config.n_fine})")
    if config.lindisp:
        raise ValueError("nerf.lindisp applies to the hierarchical sampler's stratified samples; "
                         "sampler='occupancy' marches constant steps (unset nerf.lindisp)")
    if config.raw_noise_std != 0.0:
        raise ValueError("nerf.raw_noise_std is not supported with sampler='occupancy' (early "
                         "termination reads the density before the noise); set it to 0")
    occ = config.occupancy or OccupancyConfig()
    if not (occ.early_stop_eps >= 0.0):
        raise ValueError(f"nerf.occupancy.early_stop_eps must be >= 0, got {occ.early_stop_eps}")
    if not (occ.cone_angle >= 0.0):
        raise ValueError(f"nerf.occupancy.cone_angle must be >= 0, got {occ.cone_angle}")


def build_grid(occ: OccupancyConfig) -> OccupancyGrid:
    """The OccupancyGrid of an OccupancyConfig (its own checks name the bad argument)."""
    try:
        return OccupancyGrid(occ.aabb, occ.resolution, levels=occ.levels,
                             step_size=occ.step_size(), threshold=occ.threshold,
                             decay=occ.decay, warmup_steps=occ.warm_up,
                             update_every=occ.update_every)
    except (TypeError, ValueError) as error:
        raise ValueError(f"nerf.occupancy: {error}") from None


class NeRF(nn.Module):
    """The coarse and fine fields of NeRF (``fine`` is None for a coarse pass only), and with
    ``sampler="occupancy"`` the occupancy grid (``grid``, an OccupancyGrid submodule, so its
    state is saved in checkpoints and restored on resume) that the one field is marched through.

    Either field can be any module with NeRFField's signature (points [N, 3], unit view
    directions [N, 3]) -> (raw density [N], raw rgb [N, 3]); the benchmark suite swaps in a
    trivial one to time the pipeline around the networks.
    """

    kind = "nerf"

    def __init__(self, config: NeRFConfig, coarse: Optional[nn.Module] = None,
                 fine: Optional[nn.Module] = None):
        super().__init__()
        check_sampler(config)
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
        self.grid = None
        if config.sampler == "occupancy":
            if fine is not None:
                raise ValueError("nerf.sampler='occupancy' renders one field; got a fine field")
            self.grid = build_grid(config.occupancy or OccupancyConfig())
