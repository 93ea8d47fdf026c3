"""Glue that keeps a network's activations in one dtype under bf16 autocast.

Under ``torch.autocast(dtype=torch.bfloat16)`` the linear layers return bfloat16, but two
kinds of glue between them send the activations back to float32, so the next layer casts them
to bfloat16 again: a pass over [N, width] each way, in the forward, in the backward and (NeuS's
eikonal term differentiates the SDF's gradient) in the double backward.

- ``torch.cat`` promotes mixed inputs to float32 (a skip connection joins the bf16 activations
  with the float32 positional encoding; the colour field joins bf16 features with float32
  points, normals and directions). ``cat_as`` casts the narrow parts to the activations' dtype
  instead: the values are those the next layer would have cast to anyway.
- CUDA autocast runs ``softplus`` (NeuS's SDF activation) in float32. ``softplus_as_input``
  runs it in its input's dtype: PyTorch's bfloat16 kernels compute in float32 internally and
  round the result, which the next layer would have rounded to bfloat16 anyway.

Outside autocast everything is float32 (or float64) and both are the plain operations.
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def cat_as(like: Tensor, parts: Sequence[Tensor], dim: int = -1) -> Tensor:
    """``torch.cat(parts, dim)`` in the dtype of ``like`` (the activations)."""
    return torch.cat([part.to(like.dtype) for part in parts], dim)


def softplus_as_input(x: Tensor, beta: float) -> Tensor:
    """``F.softplus(x, beta)`` in x's dtype, even where autocast would run it in float32."""
    if not torch.is_autocast_enabled(x.device.type):
        return F.softplus(x, beta)
    with torch.autocast(x.device.type, enabled=False):
        return F.softplus(x, beta)
