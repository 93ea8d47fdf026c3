"""fastfield: neural radiance fields (NeRF) and neural surfaces (NeuS) on fused C++/CUDA kernels.

``import fastfield`` loads no compiled code: the kernels load on the first use of an op
(``fastfield.composite_density``, ...) or of ``built_with_cuda()``.
"""
from . import ops as _ops
from . import reference  # noqa: F401
from ._backend import built_with_cuda
from .core.types import DensityComposite, Merged, NearFar, Rays, SdfComposite
from .fields import HashGrid
from .render import render, render_image

__all__ = ["built_with_cuda", "reference", "render", "render_image", "Rays", "NearFar", "Merged",
           "DensityComposite", "SdfComposite", "HashGrid", *_ops.__all__]


def __getattr__(name: str):
    if name in _ops.__all__:
        return getattr(_ops, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
