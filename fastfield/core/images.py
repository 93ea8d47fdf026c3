"""The one rounding rule from [0, 1] colours to 8-bit values, shared by the scene writers, the
loaders and every image fastfield saves."""
import torch
from torch import Tensor


def to_uint8(values: Tensor) -> Tensor:
    """Values in [0, 1] rounded to uint8 (0..255); values outside are clamped."""
    return (values.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
