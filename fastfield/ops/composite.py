"""Fused compositing: density (NeRF) and SDF (NeuS) volume rendering, forward and backward."""
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from .._types import DensityComposite
from ._common import check_kernel, float_inputs, require_tensor

__all__ = ["composite_density"]


def composite_density(sigma: Tensor, rgb: Tensor, deltas: Tensor, t: Optional[Tensor] = None,
                      ray_offsets: Optional[Tensor] = None,
                      background: Optional[Union[Tensor, Sequence[float]]] = None
                      ) -> DensityComposite:
    """Composite activated densities and colours front to back (nerf-pytorch ``raw2outputs``).

    alpha_i = 1 - exp(-sigma_i * deltas_i), T_i = prod_{j<i} (1 - alpha_j), w_i = alpha_i T_i;
    rgb = sum_i w_i rgb_i + (1 - acc) * background, acc = sum_i w_i, depth = sum_i w_i t_i
    (not divided by acc). Differentiable in sigma, rgb, t (through depth) and background, with
    an analytic one-pass-per-ray backward that stays exact where alpha == 1 (the 1e10 last
    delta). ``deltas`` gets no gradient (it comes from sample positions).

    Layouts -- padded: sigma, deltas, t [n_rays, n_samples], rgb [n_rays, n_samples, 3];
    packed: sigma, deltas, t [n_samples], rgb [n_samples, 3] and ``ray_offsets`` int64
    [n_rays + 1] (ray r owns samples ray_offsets[r]:ray_offsets[r+1]; rays may be empty and
    then composite to background only).

    Args:
        sigma: densities >= 0 (the activation, e.g. ReLU, is the caller's), float32/float64.
        rgb: colours per sample.
        deltas: metric distance each sample covers, including the last one (nerf-pytorch
            appends 1e10), already multiplied by |ray direction|.
        t: ray parameter of each sample, for depth; None skips depth.
        ray_offsets: CSR offsets for the packed layout; None for padded.
        background: [3] or [n_rays, 3] colour behind the ray (tuples are accepted).

    Returns:
        DensityComposite(rgb [n_rays, 3], depth [n_rays] or None, acc [n_rays],
        weights in the layout of sigma).

    NaN in an input propagates to the outputs of its ray (from that sample on); it never
    reaches other rays.
    """
    op = "composite_density"
    for name, value in (("sigma", sigma), ("rgb", rgb), ("deltas", deltas)):
        require_tensor(op, name, value)
    if background is not None and not isinstance(background, Tensor):
        background = torch.tensor(background, dtype=sigma.dtype, device=sigma.device)
    sigma, rgb, deltas, t, background = float_inputs(op, sigma, rgb, deltas, t, background)
    check_kernel(op + "_fwd", sigma)
    color, depth, acc, weights = torch.ops.fastfield.composite_density_fwd(
        sigma, rgb, deltas, t, ray_offsets, background)
    return DensityComposite(color, depth if t is not None else None, acc, weights)


def _n_rays(sigma: Tensor, ray_offsets: Optional[Tensor]) -> int:
    return ray_offsets.shape[0] - 1 if ray_offsets is not None else sigma.shape[0]


@torch.library.register_fake("fastfield::composite_density_fwd")
def _composite_density_fwd_fake(sigma, rgb, deltas, t, ray_offsets, background):
    n_rays = _n_rays(sigma, ray_offsets)
    return (sigma.new_empty(n_rays, 3), sigma.new_empty(n_rays if t is not None else 0),
            sigma.new_empty(n_rays), torch.empty_like(sigma))


@torch.library.register_fake("fastfield::composite_density_bwd")
def _composite_density_bwd_fake(grad_rgb, grad_depth, grad_acc, grad_weights, sigma, rgb, deltas,
                                t, ray_offsets, background):
    return (torch.empty_like(sigma), torch.empty_like(rgb),
            torch.empty_like(sigma) if t is not None else sigma.new_empty(0))


def _composite_density_setup(ctx, inputs, output):
    sigma, rgb, deltas, t, ray_offsets, background = inputs
    ctx.save_for_backward(sigma, rgb, deltas, t, ray_offsets, background, output[2])
    # Unused outputs (often weights, acc or depth) then send None instead of zero tensors that
    # the backward would have to read.
    ctx.set_materialize_grads(False)


def _composite_density_backward(ctx, grad_rgb, grad_depth, grad_acc, grad_weights):
    sigma, rgb, deltas, t, ray_offsets, background, acc = ctx.saved_tensors
    if t is None:
        grad_depth = None  # the depth output is an empty placeholder
    # t is only read for the depth term of the backward; without it no grad_t is produced.
    grad_sigma, grad_rgb_samples, grad_t = torch.ops.fastfield.composite_density_bwd(
        grad_rgb, grad_depth, grad_acc, grad_weights, sigma, rgb, deltas,
        t if grad_depth is not None else None, ray_offsets, background)
    grad_background = None
    if background is not None and grad_rgb is not None and ctx.needs_input_grad[5]:
        grad_background = grad_rgb * (1.0 - acc)[:, None]
        if background.dim() == 1:
            grad_background = grad_background.sum(0)
    return (grad_sigma, grad_rgb_samples, None, grad_t if grad_depth is not None else None,
            None, grad_background)


torch.library.register_autograd("fastfield::composite_density_fwd", _composite_density_backward,
                                setup_context=_composite_density_setup)
