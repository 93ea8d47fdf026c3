"""Numeric precision of training and rendering: fp32, tf32 or bf16.

- ``fp32``: plain float32 everywhere.
- ``tf32``: float32 tensors, but CUDA matmuls and convolutions use TensorFloat-32 tensor cores
  (``torch.backends.cuda.matmul.allow_tf32`` and ``torch.backends.cudnn.allow_tf32``). CPUs have
  no TF32: there it is exactly fp32.
- ``bf16``: the model's forward pass runs under ``torch.autocast(dtype=torch.bfloat16)``; the
  fastfield ops upcast half/bfloat16 inputs to float32 under autocast, so sampling and
  compositing stay float32, and the outputs handed to the loss are float32.
"""
from contextlib import contextmanager, nullcontext
from typing import Iterator

import torch

PRECISIONS = ("fp32", "tf32", "bf16")
DEFAULT_PRECISION = "fp32"


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def precision_notice(precision: str, device: torch.device) -> str:
    """A line to show the user when the requested precision changes nothing here, else ''."""
    if precision == "tf32" and device.type != "cuda":
        return "precision tf32 only affects CUDA matmuls: on the CPU it is the same as fp32"
    return ""


@contextmanager
def _tf32_enabled() -> Iterator[None]:
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def precision_context(precision: str, device: torch.device):
    """The context to run a model's forward pass (training step or render) in."""
    check_precision(precision)
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "tf32" and device.type == "cuda":
        return _tf32_enabled()
    return nullcontext()
