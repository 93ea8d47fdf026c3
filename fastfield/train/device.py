"""Turning a device name from the command line or a config into a checked torch.device."""
import re

import torch

from .._backend import built_with_cuda
from ..render.backend import uses_kernels

ACCEPTED = "cpu, cuda, cuda:N"


def resolve_device(name, backend: str = "reference") -> torch.device:
    """``name`` ("cpu", "cuda", "cuda:N", "auto" or a torch.device) as a torch.device that exists.

    "auto" is cuda when a GPU is visible, else cpu. With ``backend="kernels"`` a CUDA device
    also needs fastfield built with its CUDA kernels. Raises ValueError saying what is wrong and
    what is accepted.
    """
    text = str(name)
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise ValueError(f"unknown device {text!r}; accepted: {ACCEPTED} (or auto)")
    device = torch.device(text)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {text!r}: no CUDA GPU is visible to torch "
                             f"{torch.__version__} (torch.cuda.is_available() is False); "
                             f"use --device cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"device {text!r}: only {count} CUDA device(s) visible "
                             f"(cuda:0..cuda:{count - 1})")
        if uses_kernels(backend) and not built_with_cuda():
            raise ValueError(f"device {text!r}: fastfield was built without CUDA kernels; "
                             "rebuild it with a CUDA torch and nvcc (pip install "
                             "--no-build-isolation .) or use --backend reference")
    return device
