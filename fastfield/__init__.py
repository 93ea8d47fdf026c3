"""fastfield: neural radiance fields (NeRF) and neural surfaces (NeuS) on fused C++/CUDA kernels."""
from . import reference  # noqa: F401
from ._backend import built_with_cuda
from ._types import DensityComposite, Merged, NearFar, Rays, SdfComposite
from .ops import *  # noqa: F401,F403
from .ops import __all__ as _op_names
from .render import render, render_image

__all__ = ["built_with_cuda", "reference", "render", "render_image", "Rays", "NearFar", "Merged",
           "DensityComposite", "SdfComposite", *_op_names]
