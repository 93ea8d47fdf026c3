"""Random and deterministic quantiles, drawn in Python so that the kernels, their CUDA twins
and ``fastfield.reference`` compute the same function of the same tensors: randomness enters
the kernels as a tensor argument (``u``), never drawn inside them, so CPU, CUDA and reference
agree to rounding for one generator state.

A ``torch.Generator`` may live on another device than the tensors it draws for (a CPU generator
for CUDA rays, or the reverse): the values are drawn on the generator's device, as that
generator's sequence defines them, and then moved to the tensors' device. The same seed thus
gives the same values whatever device the tensors are on.
"""
from typing import Optional, Union

import torch
from torch import Tensor


def draw_device(generator: Optional[torch.Generator], device) -> torch.device:
    """Where a draw for tensors on ``device`` happens: on ``generator``'s device when there is
    one (torch's random functions only take a generator of the device they draw on)."""
    return torch.device(device) if generator is None else generator.device


def uniform(shape, like: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """U[0, 1) of ``shape`` with the dtype and device of ``like``, drawn on ``generator``'s
    device and moved (see the module docstring)."""
    u = torch.rand(shape, generator=generator, dtype=like.dtype,
                   device=draw_device(generator, like.device))
    return u.to(like.device)


def sorted_uniform(n_rays: int, n: int, like: Tensor,
                   generator: Optional[torch.Generator] = None) -> Tensor:
    """[n_rays, n] ascending rows, distributed exactly as ``sort(rand(n_rays, n))``.

    Uses the order-statistics identity U_(k) = S_k / S_(n+1), S the partial sums of n + 1
    standard exponentials: O(n) per row instead of a sort. The exponentials are -log(1 - V)
    for uniform V, negated only implicitly (S_k / S_(n+1) is a ratio of two sums of the same
    sign); Tensor.exponential_ on CPU draws one double and a scalar log1p per value, about 5x
    slower than torch.rand plus a vectorised log1p.
    """
    log_complement = uniform((n_rays, n + 1), like, generator).neg_().log1p_()  # log(1 - V) <= 0
    s = log_complement.cumsum(-1)
    return s[:, :n] / s[:, n:]


def pdf_quantiles(n_rays: int, n: int, det: Union[bool, str], u: Optional[Tensor], like: Tensor,
                  generator: Optional[torch.Generator] = None) -> Tensor:
    """The quantiles ``sample_pdf`` inverts: [n] for the deterministic modes, else [n_rays, n].

    det=True or "linspace": linspace(0, 1, n) (nerf-pytorch); det="midpoint":
    linspace(0.5/n, 1 - 0.5/n, n) (NeuS). Otherwise ``u`` (sorted here) or fresh sorted uniforms.
    """
    if det is True or det == "linspace":
        return torch.linspace(0.0, 1.0, n, dtype=like.dtype, device=like.device)
    if det == "midpoint":
        half_step = 0.5 / max(n, 1)  # n == 0: an empty row
        return torch.linspace(half_step, 1.0 - half_step, n, dtype=like.dtype, device=like.device)
    if det is not False:
        raise ValueError(f"det must be False, True, 'linspace' or 'midpoint', got {det!r}")
    if u is None:
        return sorted_uniform(n_rays, n, like, generator)
    if u.shape != (n_rays, n):
        raise ValueError(f"u must be [n_rays, n_samples] = [{n_rays}, {n}], got {list(u.shape)}")
    return u.sort(dim=-1).values
