"""Rendering: the samplers and pipelines that turn rays into colours by calling the fields, and
the only layer that calls fastfield's sampling and compositing ops.

- ``render(model, rays_o, rays_d, ...)`` and ``render_image(model, camera, index, ...)``: the
  public entry points (api.py); ``camera_rays`` makes a model's rays of pixel ids.
- ``backend_ops``: the one place "kernels" or "reference" becomes an op namespace (backend.py).
- Pipelines (``NeRFPipeline``, ``OccupancyNeRFPipeline``, ``NeuSPipeline``) sample, call fields through plain callables and
  composite; ``pipeline_for(model)`` picks one by model class, ``register_pipeline`` adds one.
- Samplers (``StratifiedSampler``, ``HierarchicalSampler``, ``NeuSSampler``,
  ``InverseSphereSampler``) are the swappable part: any callable returning RaySamples, padded
  or packed (samples.py), fits a pipeline.

``fastfield.render`` is both this package and the function: the package is callable, so
``fastfield.render(model, rays_o, rays_d)`` renders whichever of the two the name holds.
"""
import sys
import types

from .api import auto_chunk, bytes_per_ray, camera_rays, render, render_image
from .backend import BACKENDS, DEFAULT_BACKEND, backend_ops
from .nerf import NeRFPipeline
from .nerf_occupancy import OccupancyNeRFPipeline
from .neus import NeuSPipeline
from .pipelines import Pipeline, pipeline_for, register_pipeline
from .samplers import (LAST_DELTA, HierarchicalSampler, InverseSphereSampler, NeuSSampler,
                       StratifiedSampler)
from .samples import FieldPass, RayBundle, RaySamples, RenderContext

__all__ = ["render", "render_image", "camera_rays", "auto_chunk", "bytes_per_ray",
           "BACKENDS", "DEFAULT_BACKEND", "backend_ops", "Pipeline", "pipeline_for", "register_pipeline",
           "NeRFPipeline", "OccupancyNeRFPipeline", "NeuSPipeline", "StratifiedSampler", "HierarchicalSampler",
           "NeuSSampler", "InverseSphereSampler", "LAST_DELTA", "RayBundle", "RaySamples",
           "RenderContext", "FieldPass"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return render(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
