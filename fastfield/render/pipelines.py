"""Which pipeline renders which model: a table from model class to a function building the
pipeline around the model's fields. ``pipeline_for(model)`` looks the model's class (or its
nearest registered base class) up; a new method registers its own with ``register_pipeline``
and leaves the others untouched."""
from typing import Callable, Dict, Protocol, Union

from torch import Tensor, nn

from ..fields.nerf import NeRF, OccupancyConfig
from ..fields.neus import NeuS
from .nerf import NeRFPipeline
from .nerf_occupancy import OccupancyNeRFPipeline
from .neus import NeuSPipeline
from .samplers import HierarchicalSampler, InverseSphereSampler, NeuSSampler, StratifiedSampler
from .samples import RayBundle, RenderContext


class Pipeline(Protocol):
    """What fastfield.render needs of a pipeline."""
    unit_directions: bool   # camera rays with unit directions (NeuS) or z = -1 (nerf-pytorch)
    keeps_graph: bool       # builds an autograd graph even without gradients (NeuS normals)
    module: nn.Module       # the fields' module, for memory estimates (or None)

    def points_per_ray(self) -> int: ...

    def __call__(self, rays: RayBundle, ctx: RenderContext) -> Dict[str, Tensor]: ...


_FACTORIES: Dict[type, Callable[[nn.Module], Pipeline]] = {}


def register_pipeline(model_type: type, factory: Callable[[nn.Module], Pipeline]) -> None:
    """Render models of ``model_type`` (and its subclasses) with ``factory(model)``."""
    _FACTORIES[model_type] = factory


def pipeline_for(model: nn.Module) -> Pipeline:
    """The pipeline that renders ``model`` (built around its fields; cheap to build)."""
    for cls in type(model).__mro__:
        if cls in _FACTORIES:
            return _FACTORIES[cls](model)
    raise TypeError(f"no pipeline renders a {type(model).__name__}; register one with "
                    f"fastfield.render.register_pipeline (NeRF and NeuS models have theirs)")


def nerf_pipeline(model: NeRF) -> Union[NeRFPipeline, OccupancyNeRFPipeline]:
    """nerf-pytorch: stratified samples through the coarse field, then (with a fine field)
    hierarchical samples through the fine one. With ``sampler="occupancy"``: the one field
    marched through the model's grid, with early termination (nerfacc)."""
    cfg = model.config
    if cfg.sampler == "occupancy":
        occ = cfg.occupancy or OccupancyConfig()
        return OccupancyNeRFPipeline(model.coarse, model.grid, occ.cone_angle,
                                     occ.early_stop_eps, module=model)
    fields, samplers = [model.coarse], [StratifiedSampler(cfg.n_coarse, cfg.lindisp)]
    if model.fine is not None:
        fields.append(model.fine)
        samplers.append(HierarchicalSampler(cfg.n_fine))
    return NeRFPipeline(fields, samplers, cfg.raw_noise_std, module=model)


def neus_pipeline(model: NeuS) -> NeuSPipeline:
    """NeuS: up-sampled samples inside the unit sphere, the NeRF++ background outside."""
    cfg = model.config
    base = 2.0 / cfg.n_samples  # NeuS assumes near/far 2 apart (the unit sphere)
    inside = NeuSSampler(cfg.n_samples, cfg.n_importance, cfg.up_sample_steps,
                         model.sdf_network, base)
    outside = None
    if model.background is not None and cfg.n_outside > 0:
        outside = InverseSphereSampler(cfg.n_outside, 1.0 / cfg.n_samples, base)
    return NeuSPipeline(model.sdf_network, model.color_network, model.inv_s, inside, base,
                        model.background if outside is not None else None, outside,
                        module=model)


register_pipeline(NeRF, nerf_pipeline)
register_pipeline(NeuS, neus_pipeline)
