"""Argument checks and normalisation shared by the op wrappers, their twins and the layers above:
one error type and one message shape per kind of mistake."""
import math
import numbers
import operator
from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def float_inputs(op: str, *tensors: Optional[Tensor]) -> Sequence[Optional[Tensor]]:
    """Half and bfloat16 inputs become float32 under torch.autocast (the kernels accumulate in
    the input dtype, so they run in float32 there); outside autocast they are a TypeError. The
    kernels check the rest (float32/float64, one dtype, one device)."""
    low = [t for t in tensors if isinstance(t, Tensor) and t.dtype in _LOW_PRECISION]
    if not low:
        return tensors
    if not torch.is_autocast_enabled(low[0].device.type):
        raise TypeError(f"fastfield.{op}: got {low[0].dtype} inputs; the kernels take float32 or "
                        "float64 (half and bfloat16 are upcast to float32 only under torch.autocast)")
    return tuple(t.float() if isinstance(t, Tensor) and t.is_floating_point() else t
                 for t in tensors)


def require_tensor(op: str, name: str, value) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"fastfield.{op}: {name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def int_at_least(op: Optional[str], name: str, value, minimum: int) -> int:
    """``value`` as an int >= ``minimum``: the one integer check of fastfield (op arguments,
    mesh and scene sizes, camera sizes).

    The rule: anything with ``__index__`` (int, numpy integers, integer 0-d tensors) is an
    int, except bool (a flag is not a count). Otherwise a TypeError when the value is of the
    wrong type -- a string, None, a bool, or a float with a whole value such as 8.0 (the count
    is right, its type is not) -- and a ValueError when no int has that value (2.5, nan, inf)
    or the int is below ``minimum``. Messages start with "fastfield.<op>: " when ``op`` is
    given.
    """
    where = f"fastfield.{op}: " if op else ""
    if not isinstance(value, bool):
        try:
            value = operator.index(value)
        except TypeError:
            pass
    if isinstance(value, int) and not isinstance(value, bool):
        if value < minimum:
            raise ValueError(f"{where}{name} must be >= {minimum}, got {value} "
                             f"({name} must be an int >= {minimum})")
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool) \
            and not (math.isfinite(value) and float(value).is_integer()):
        raise ValueError(f"{where}{name} must be an int >= {minimum}, got {value!r}")
    shown = f" {value!r}" if isinstance(value, (numbers.Number, str)) else ""
    raise TypeError(f"{where}{name} must be an int, got {type(value).__name__}{shown}")


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


def message_lines(error: BaseException) -> List[str]:
    """The non-empty lines of an exception's message, stripped."""
    return [line.strip() for line in str(error).strip().splitlines() if line.strip()]


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first non-empty line of an exception's message (its type name if it has none), cut
    to ``limit`` characters: what a one-line error report shows of a deeper failure."""
    lines = message_lines(error)
    return (lines[0] if lines else type(error).__name__)[:limit]
