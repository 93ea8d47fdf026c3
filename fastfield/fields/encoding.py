"""Positional encoding (NeRF's gamma, also used by NeuS)."""
import contextlib
from typing import Iterator

import torch
from torch import Tensor, nn

from ..reference.encoding import frequency_encode as frequency_encode_reference

# Whether PositionalEncoding runs fastfield's fused op where it applies. render(...,
# backend="reference") turns it off for its duration (``positional_encoding_kernels``), so that
# the reference pipeline stays plain PyTorch. A module global rather than a ContextVar:
# torch.compile cannot trace ContextVar.get, and guards on a global's value.
_USE_KERNELS = True
_KERNEL_DTYPES = (torch.float32, torch.float64)


@contextlib.contextmanager
def positional_encoding_kernels(enabled: bool) -> Iterator[None]:
    """Within the block, PositionalEncoding uses the fused ``frequency_encode`` op (enabled,
    the default) or the PyTorch expression (process-wide; the previous setting comes back)."""
    global _USE_KERNELS
    previous, _USE_KERNELS = _USE_KERNELS, bool(enabled)
    try:
        yield
    finally:
        _USE_KERNELS = previous


def _fused_op_applies(x: Tensor, n_frequencies: int) -> bool:
    """The op takes float32/float64 CPU or CUDA tensors (CUDA only when this build has CUDA
    kernels; otherwise the PyTorch expression runs, as it did before the op existed). A
    bfloat16 or half tensor keeps the PyTorch expression: the op would compute and return
    float32 under autocast (and refuse it outside), changing the dtype the layers see; under
    bf16 autocast the points arrive in float32 anyway (fields/mixed.py)."""
    if not _USE_KERNELS or x.dtype not in _KERNEL_DTYPES or x.device.type not in ("cpu", "cuda"):
        return False
    from .. import _backend
    from ..ops.encoding import MAX_FREQUENCIES  # loads the kernels on first use

    if n_frequencies > MAX_FREQUENCIES:
        return False
    return x.device.type == "cpu" or _backend._CUDA_TABLE.get("fastfield::frequency_encode_fwd",
                                                               False)


class PositionalEncoding(nn.Module):
    """x -> [x, sin(2^0 x), cos(2^0 x), ..., sin(2^(L-1) x), cos(2^(L-1) x)] (nerf-pytorch
    ``Embedder`` with include_input and log sampling; NeuS uses the same).

    Runs fastfield's fused op (``fastfield.frequency_encode``: one pass forward, analytic
    backward and double backward) on float32/float64 CPU and CUDA tensors, and the PyTorch
    expression (``fastfield.reference.frequency_encode``) otherwise, for bfloat16 and under
    ``render(..., backend="reference")``. Both agree to the rounding of sin and cos.
    """

    def __init__(self, in_dim: int, n_frequencies: int):
        super().__init__()
        self.in_dim = in_dim
        self.n_frequencies = n_frequencies
        self.register_buffer("frequencies", 2.0 ** torch.arange(n_frequencies, dtype=torch.float32),
                             persistent=False)

    @property
    def out_dim(self) -> int:
        return self.in_dim * (1 + 2 * self.n_frequencies)

    def forward(self, x: Tensor) -> Tensor:
        """x [..., in_dim] -> [..., out_dim]."""
        if self.n_frequencies == 0:
            return x
        if _fused_op_applies(x, self.n_frequencies):
            from ..ops.encoding import frequency_encode

            return frequency_encode(x, self.n_frequencies)
        return frequency_encode_reference(x, self.n_frequencies, self.frequencies)
