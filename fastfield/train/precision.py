"""Numeric precision of training and rendering: fp32, tf32 or bf16.

- ``fp32``: plain float32 everywhere. The CPU default.
- ``tf32``: float32 tensors, but CUDA matrix products use TensorFloat-32 tensor cores
  (``torch.backends.cuda.matmul.allow_tf32``, and cuDNN's). The CUDA default: on an H200 it
  trained nerf-lego 1.9x faster than fp32 with PSNR at equal steps within the seed spread
  (issue 16). A training step holds it for the whole step, backward included (the autograd
  engine runs the backward after the forward's context has closed). CPUs have no TF32, so
  asking for it on a CPU is an error rather than a silent fp32 run.
- ``bf16``: the networks run under ``torch.autocast(dtype=torch.bfloat16)`` (the forward
  pass; the backward follows its dtypes); the fastfield ops upcast half/bfloat16 inputs to
  float32 under autocast, so sampling and compositing stay float32, and the outputs handed
  to the loss are float32. bf16 autocast exists on the CPU too.
"""
from contextlib import contextmanager, nullcontext
from typing import Iterator, Optional, Tuple

import torch

PRECISIONS = ("fp32", "tf32", "bf16")
DEFAULT_PRECISION = "fp32"  # the CPU's; default_precision(device) picks per device


def default_precision(device: torch.device) -> str:
    """tf32 on CUDA, fp32 elsewhere."""
    return "tf32" if torch.device(device).type == "cuda" else "fp32"


def check_precision(precision: str, device: Optional[torch.device] = None) -> str:
    """``precision`` if it is one of PRECISIONS and (given ``device``) can be honoured there;
    ValueError otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "tf32" and device is not None and torch.device(device).type != "cuda":
        raise ValueError(f"precision tf32 needs a CUDA GPU (TensorFloat-32 tensor cores); on "
                         f"{torch.device(device).type} use fp32 (its default) or bf16")
    return precision


def resolve_precision(requested: Optional[str], stored: Optional[str],
                      device: torch.device) -> Tuple[str, str]:
    """(precision, notice) of a run on ``device``: the requested one (checked), else the
    checkpoint's ``stored`` one where the device can honour it, else the device's default.
    The notice says when a stored precision was replaced, else it is ''."""
    if requested is not None:
        return check_precision(requested, device), ""
    if stored is None:
        return default_precision(device), ""
    check_precision(stored)
    if stored == "tf32" and torch.device(device).type != "cuda":
        fallback = default_precision(device)
        return fallback, (f"the run used tf32 on a GPU; on {torch.device(device).type} it "
                          f"continues in {fallback}")
    return stored, ""


@contextmanager
def _tf32_enabled() -> Iterator[None]:
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def matmul_context(precision: str, device: torch.device):
    """TF32 matrix products for ``tf32`` on CUDA (hold it over forward *and* backward)."""
    check_precision(precision)
    if precision == "tf32" and torch.device(device).type == "cuda":
        return _tf32_enabled()
    return nullcontext()


def autocast_context(precision: str, device: torch.device):
    """bf16 autocast for ``bf16`` (around the forward pass only)."""
    check_precision(precision)
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return nullcontext()


@contextmanager
def precision_context(precision: str, device: torch.device) -> Iterator[None]:
    """The context to run a model's forward pass in (rendering: nothing runs backward)."""
    with matmul_context(precision, device), autocast_context(precision, device):
        yield
