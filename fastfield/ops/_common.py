"""What every op wrapper module imports first: the loaded kernels (their operators must exist
before the wrappers register fake functions and autograd on them), the argument checks of
fastfield.core.checks, and the kernel-presence check."""
from typing import Optional

from torch import Tensor

from .._backend import load, require_device_kernel
from ..core.checks import float_inputs, int_at_least, per_ray, require_tensor  # noqa: F401

load()


def check_kernel(op: str, *tensors: Optional[Tensor]) -> None:
    """A CUDA tensor with a CPU-only build gets the rebuild hint instead of a dispatcher error."""
    for t in tensors:
        if isinstance(t, Tensor):
            require_device_kernel(op, t)
            return
