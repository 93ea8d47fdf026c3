"""fastfield: neural radiance fields (NeRF) and neural surfaces (NeuS) on fused C++/CUDA kernels."""
from . import reference  # noqa: F401
from ._backend import built_with_cuda
from ._types import DensityComposite, Merged, NearFar, Rays, SdfComposite
from .ops import *  # noqa: F401,F403
from .ops import __all__ as _op_names

__all__ = ["built_with_cuda", "reference", "Rays", "NearFar", "Merged", "DensityComposite",
           "SdfComposite", *_op_names]
