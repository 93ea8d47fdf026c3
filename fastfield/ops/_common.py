"""Argument handling shared by the op wrappers: dtype policy, scalars to tensors, kernels present."""
import operator
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from .._backend import require_device_kernel

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 takes no device argument
        return torch.is_autocast_enabled() if device_type == "cuda" else torch.is_autocast_cpu_enabled()


def float_inputs(op: str, *tensors: Optional[Tensor]) -> Sequence[Optional[Tensor]]:
    """Half and bfloat16 inputs become float32 under torch.autocast (the kernels accumulate in
    the input dtype, so they run in float32 there); outside autocast they are a TypeError. The
    kernels check the rest (float32/float64, one dtype, one device)."""
    low = [t for t in tensors if isinstance(t, Tensor) and t.dtype in _LOW_PRECISION]
    if not low:
        return tensors
    if not _autocast_enabled(low[0].device.type):
        raise TypeError(f"fastfield.{op}: got {low[0].dtype} inputs; the kernels take float32 or "
                        "float64 (half and bfloat16 are upcast to float32 only under torch.autocast)")
    return tuple(t.float() if isinstance(t, Tensor) and t.is_floating_point() else t
                 for t in tensors)


def require_tensor(op: str, name: str, value) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"fastfield.{op}: {name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def int_at_least(op: str, name: str, value, minimum: int) -> int:
    """``value`` as an int (anything with __index__): TypeError if it is not integral,
    ValueError if it is below ``minimum``."""
    try:
        value = operator.index(value)
    except TypeError:
        message = f"fastfield.{op}: {name} must be an int, got {type(value).__name__}"
        raise TypeError(message) from None
    if value < minimum:
        raise ValueError(f"fastfield.{op}: {name} must be >= {minimum}, got {value}")
    return value


def per_ray(op: str, name: str, value: Union[float, Tensor], n_rays: int, like: Tensor) -> Tensor:
    """A Python float or a [n_rays] tensor (or a 0-d one) as a [n_rays] tensor like ``like``."""
    if isinstance(value, Tensor):
        if value.dim() == 0:
            return value.to(like.dtype).expand(n_rays)
        return value
    if isinstance(value, (int, float)):
        return torch.full((n_rays,), float(value), dtype=like.dtype, device=like.device)
    raise TypeError(f"fastfield.{op}: {name} must be a float or a [n_rays] tensor, "
                    f"got {type(value).__name__}")


def check_kernel(op: str, *tensors: Optional[Tensor]) -> None:
    """A CUDA tensor with a CPU-only build gets the rebuild hint instead of a dispatcher error."""
    for t in tensors:
        if isinstance(t, Tensor):
            require_device_kernel(op, t)
            return
