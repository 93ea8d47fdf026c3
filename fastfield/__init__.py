"""fastfield: neural radiance fields (NeRF) and neural surfaces (NeuS) on fused C++/CUDA kernels.

``import fastfield`` loads no compiled code and none of the layers above the core: the
kernels load on the first use of an op (``fastfield.composite_density``, ...) or of
``built_with_cuda()``; ``fastfield.render``, ``render_image`` and ``reference`` import their
package on first access. ARCHITECTURE.md describes the layers.
"""
import importlib

from . import ops as _ops
from .core.types import DensityComposite, MarchedSamples, Merged, NearFar, Rays, SdfComposite

# Public names and the module that holds each (None: the module itself).
_LAZY = {"built_with_cuda": ("._backend", "built_with_cuda"), "reference": (".reference", None),
         "render": (".render", None), "render_image": (".render", "render_image"),
         "OccupancyGrid": (".occupancy", "OccupancyGrid"),
         "HashGrid": (".fields", "HashGrid")}

__all__ = ["built_with_cuda", "reference", "render", "render_image", "Rays", "NearFar", "Merged",
           "DensityComposite", "SdfComposite", "MarchedSamples", "OccupancyGrid",
           "HashGrid", *_ops.__all__]


def __getattr__(name: str):
    if name in _LAZY:
        module_name, attribute = _LAZY[name]
        module = importlib.import_module(module_name, __name__)
        value = module if attribute is None else getattr(module, attribute)
        globals()[name] = value
        return value
    if name in _ops.__all__:
        return getattr(_ops, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
