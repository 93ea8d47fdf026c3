"""Positional encoding (NeRF's gamma, also used by NeuS)."""
import torch
from torch import Tensor, nn


class PositionalEncoding(nn.Module):
    """x -> [x, sin(2^0 x), cos(2^0 x), ..., sin(2^(L-1) x), cos(2^(L-1) x)] (nerf-pytorch
    ``Embedder`` with include_input and log sampling; NeuS uses the same)."""

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
        scaled = x[..., None, :] * self.frequencies[:, None].to(x.dtype)  # [..., L, in_dim]
        sin_cos = torch.stack([torch.sin(scaled), torch.cos(scaled)], -2)  # [..., L, 2, in_dim]
        return torch.cat([x, sin_cos.flatten(-3)], -1)
