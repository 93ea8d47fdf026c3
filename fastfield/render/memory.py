"""Memory estimates for chunked rendering: how much one field evaluation point keeps alive."""
from typing import Optional

from torch import nn


def bytes_per_point(module: Optional[nn.Module], keeps_graph: bool) -> int:
    """A generous estimate of the memory one point of a field evaluation needs without
    gradients: a few activations of the widest layer; with an autograd graph kept (NeuS's
    normals need d sdf / d x) also every layer's."""
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)] if module is not None else []
    widest = max((m.out_features for m in linears), default=64)
    return 4 * widest * (8 + (2 * len(linears) if keeps_graph else 0))
