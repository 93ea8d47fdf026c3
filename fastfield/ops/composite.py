"""Fused compositing: density (NeRF) and SDF (NeuS) volume rendering, forward and backward.

Autograd policy of this family: differentiable. Each op is a ``<op>_fwd`` / ``<op>_bwd``
operator pair; the analytic backward is attached to ``_fwd`` here with
``torch.library.register_autograd`` (and shapes with ``register_fake``), so it composes with
torch.compile and opcheck. Which inputs get gradients is in each op's docstring.
"""
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from ..core.types import DensityComposite, SdfComposite
from ._common import check_kernel, float_inputs, require_tensor

__all__ = ["composite_density", "composite_sdf"]


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
    reaches other rays. On the CPU the kernels compute subnormal values (below 1.2e-38 in
    float32, 2.2e-308 in float64) as zero, so weights behind an opaque sample that the
    reference gives as subnormals are exactly 0 here (x86 CPUs are many times slower on
    subnormals; the caller's own floating-point mode is left as it was).
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


def composite_sdf(sdf: Tensor, cos: Tensor, dists: Tensor, inv_s: Union[float, Tensor], rgb: Tensor,
                  cos_anneal_ratio: float, inside: Optional[Tensor] = None,
                  bg_alpha: Optional[Tensor] = None, bg_rgb: Optional[Tensor] = None,
                  ray_offsets: Optional[Tensor] = None) -> SdfComposite:
    """Composite NeuS sections front to back (NeuS ``render_core``), fused forward and backward.

    Per section, with s = inv_s and r = cos_anneal_ratio:
    iter_cos = -(relu(-cos/2 + 1/2) (1 - r) + relu(-cos) r); prev/next SDF estimates
    sdf -/+ iter_cos * dists / 2; P, N their sigmoids at s; alpha = clip((P - N + 1e-5) /
    (P + 1e-5), 0, 1). With a background model, the n_in samples blend
    alpha * inside + bg_alpha * (1 - inside) (colour likewise) and the n_out outside samples
    are appended. Then w_i = alpha_i prod_{j<i} (1 - alpha_j + 1e-7), rgb = sum_i w_i c_i,
    acc = sum_i w_i. A fixed background colour is the caller's: rgb + (1 - acc) * colour.

    Differentiable in sdf, cos, inv_s, rgb, bg_alpha and bg_rgb (not dists, not inside: sample
    positions and a hard mask), for gradients arriving at any of the four outputs (NeuS's mask
    loss is on acc). The backward is analytic, one pass per ray, exact at alpha == 1. float32
    results follow the float64 reference closely: P - N is formed from sigmoid complements, so
    the ~1e-5 alphas of empty space keep their digits.

    Layouts -- padded: sdf, cos, dists, inside [n_rays, n_in], rgb [n_rays, n_in, 3];
    packed (no background model): sdf, cos, dists [n_samples], rgb [n_samples, 3] and
    ``ray_offsets`` int64 [n_rays + 1] (ray r owns samples ray_offsets[r]:ray_offsets[r+1];
    empty rays composite to zero colour and acc).

    Args:
        sdf: SDF at each section's midpoint, float32/float64.
        cos: dot(ray direction, SDF gradient) there (NeuS's ``true_cos``).
        dists: section lengths (NeuS appends the base sample distance for the last one).
        inv_s: NeuS's sharpness s: a Python float, a 0-d or [1] tensor, or [n_rays]. A tensor
            gets a gradient (summed over rays when it is a scalar).
        rgb: colour of each section.
        cos_anneal_ratio: r in [0, 1] (the annealing schedule is the caller's).
        inside: [n_rays, n_in] 0/1 mask of samples inside the unit sphere (bool or float).
        bg_alpha: [n_rays, n_in + n_out] background-model alpha over the sorted union of the
            inside and the n_out outside samples.
        bg_rgb: [n_rays, n_in + n_out, 3] background-model colour there.
        ray_offsets: CSR offsets for the packed layout; None for padded.

    Returns:
        SdfComposite(rgb [n_rays, 3], acc [n_rays], weights, alpha): weights and alpha are
        [n_rays, n_in + n_out] with a background model, else in the layout of sdf; alpha is
        the blended (and appended) alpha that was composited.

    NaN in an input stays in its ray: a NaN sdf at sample j gives alpha NaN there, weights NaN
    from j on, and NaN rgb and acc for that ray; other rays are unaffected (gradients too).
    On the CPU, subnormal values are computed as zero, as in ``composite_density``.
    """
    op = "composite_sdf"
    for name, value in (("sdf", sdf), ("cos", cos), ("dists", dists), ("rgb", rgb)):
        require_tensor(op, name, value)
    if isinstance(inv_s, bool) or not isinstance(inv_s, (int, float, Tensor)):
        raise TypeError(f"fastfield.{op}: inv_s must be a float or a tensor, "
                        f"got {type(inv_s).__name__}")
    sdf, cos, dists, inv_s, rgb, inside, bg_alpha, bg_rgb = float_inputs(
        op, sdf, cos, dists, inv_s, rgb, inside, bg_alpha, bg_rgb)
    if not isinstance(inv_s, Tensor):
        inv_s = torch.tensor(float(inv_s), dtype=sdf.dtype, device=sdf.device)
    if isinstance(inside, Tensor) and inside.dtype == torch.bool:
        inside = inside.to(sdf.dtype)
    check_kernel(op + "_fwd", sdf)
    color, acc, weights, alpha = torch.ops.fastfield.composite_sdf_fwd(
        sdf, cos, dists, inv_s, rgb, float(cos_anneal_ratio), inside, bg_alpha, bg_rgb,
        ray_offsets)
    return SdfComposite(color, acc, weights, alpha)


@torch.library.register_fake("fastfield::composite_sdf_fwd")
def _composite_sdf_fwd_fake(sdf, cos, dists, inv_s, rgb, cos_anneal_ratio, inside, bg_alpha,
                            bg_rgb, ray_offsets):
    n_rays = _n_rays(sdf, ray_offsets)
    per_sample = bg_alpha if bg_alpha is not None else sdf
    return (sdf.new_empty(n_rays, 3), sdf.new_empty(n_rays), torch.empty_like(per_sample),
            torch.empty_like(per_sample))


@torch.library.register_fake("fastfield::composite_sdf_bwd")
def _composite_sdf_bwd_fake(grad_rgb, grad_acc, grad_weights, grad_alpha, sdf, cos, dists, inv_s,
                            rgb, cos_anneal_ratio, inside, bg_alpha, bg_rgb, ray_offsets):
    return (torch.empty_like(sdf), torch.empty_like(cos),
            sdf.new_empty(_n_rays(sdf, ray_offsets)), torch.empty_like(rgb),
            torch.empty_like(bg_alpha) if bg_alpha is not None else sdf.new_empty(0),
            torch.empty_like(bg_rgb) if bg_rgb is not None else sdf.new_empty(0))


def _composite_sdf_setup(ctx, inputs, output):
    sdf, cos, dists, inv_s, rgb, cos_anneal_ratio, inside, bg_alpha, bg_rgb, ray_offsets = inputs
    ctx.save_for_backward(sdf, cos, dists, inv_s, rgb, inside, bg_alpha, bg_rgb, ray_offsets)
    ctx.cos_anneal_ratio = cos_anneal_ratio
    ctx.set_materialize_grads(False)  # unused outputs send None, which the kernel skips


def _composite_sdf_backward(ctx, grad_rgb, grad_acc, grad_weights, grad_alpha):
    sdf, cos, dists, inv_s, rgb, inside, bg_alpha, bg_rgb, ray_offsets = ctx.saved_tensors
    grad_sdf, grad_cos, grad_inv_s, grad_rgb_samples, grad_bg_alpha, grad_bg_rgb = (
        torch.ops.fastfield.composite_sdf_bwd(
            grad_rgb, grad_acc, grad_weights, grad_alpha, sdf, cos, dists, inv_s, rgb,
            ctx.cos_anneal_ratio, inside, bg_alpha, bg_rgb, ray_offsets))
    if inv_s.dim() != 1 or inv_s.shape[0] != grad_inv_s.shape[0]:
        grad_inv_s = grad_inv_s.sum().reshape(inv_s.shape)  # one inv_s shared by every ray
    background = bg_alpha is not None
    return (grad_sdf, grad_cos, None, grad_inv_s, grad_rgb_samples, None, None,
            grad_bg_alpha if background else None, grad_bg_rgb if background else None, None)


torch.library.register_autograd("fastfield::composite_sdf_fwd", _composite_sdf_backward,
                                setup_context=_composite_sdf_setup)
