"""Importance sampling: inverse-CDF sampling from per-bin weights (nerf-pytorch / NeuS
``sample_pdf``), the NeuS up-sampling step, and the sorted merge of coarse and fine samples.

Autograd policy of this family: results never require grad. The wrappers hand the kernels
detached inputs, as nerf-pytorch and NeuS detach their importance samples (NeuS up-samples
under no_grad): new sample positions are constants of the rendering integral, whatever
``bins``, ``weights`` or the SDF require. Differentiable per-sample features follow a merge
through ``merge_sorted``'s index (``torch.gather(torch.cat([fa, fb], -1), -1, index)``).
"""
from typing import Optional, Union

import torch
from torch import Tensor

from ..core.types import Merged
from ._common import check_kernel, float_inputs, int_at_least, require_tensor
from ..core.random import pdf_quantiles

__all__ = ["sample_pdf", "merge_sorted", "neus_upsample"]


def sample_pdf(bins: Tensor, weights: Tensor, n_samples: int, u: Optional[Tensor] = None,
               det: Union[bool, str] = False,
               generator: Optional[torch.Generator] = None) -> Tensor:
    """Draw samples from the piecewise-constant PDF of ``weights`` over ``bins`` by inverting
    its CDF (nerf-pytorch ``sample_pdf``, NeuS ``sample_pdf``).

    pdf = (weights + 1e-5) / sum, cdf = [0, cumsum(pdf)] capped at 1; each quantile q finds its
    bin by a right-side search of the CDF and is interpolated linearly inside it, with a CDF
    step below 1e-5 taken as 1 (as in the references). On the CPU a merge walk over bins and
    quantiles, O(n_bins + n_samples) per ray (or the same samples, bit for bit, from a per-ray
    CDF table in AVX-512 passes on CPUs that have them); on CUDA a tile of warp lanes per ray
    builds the CDF table by a prefix scan and inverts each quantile by binary search in it
    (float32: the same samples bit for bit, see csrc/pdf/pdf.h). The result is ascending along
    each ray for ascending ``bins``.

    Quantiles: ``det=True`` or ``"linspace"``: linspace(0, 1, n_samples) (nerf-pytorch at test
    time); ``det="midpoint"``: linspace(0.5 / n, 1 - 0.5 / n, n) (NeuS); ``det=False``: ``u``
    if given (sorted first), else sorted uniforms drawn from ``generator``. Random quantiles
    are sorted, unlike nerf-pytorch's: the inverse CDF is monotone, so only the order of the
    samples differs, and the results merged with the coarse samples are the same.

    Args:
        bins: [n_rays, n_bins + 1] bin edges (nerf-pytorch: midpoints of the coarse t),
            float32/float64.
        weights: [n_rays, n_bins] non-negative bin weights (nerf-pytorch: weights[..., 1:-1]).
        n_samples: samples per ray.
        u: [n_rays, n_samples] quantiles in [0, 1], only with ``det=False``.
        det: False, True / "linspace" or "midpoint" (see above).
        generator: torch.Generator for the random quantiles, on any device: the quantiles are
            drawn where it lives and moved to the device of ``bins``, so a seed gives the same
            samples on every device.

    Returns:
        [n_rays, n_samples] samples, dtype and device of ``bins``.

    Numerics: float64 reproduces the reference to rounding. float32 does too, except where an
    (almost) empty bin's CDF step rounds to within an ulp of the 1e-5 threshold: the
    reference's float32 ``torch.sum`` and this kernel's double-accumulated normaliser can
    differ by an ulp there and take different sides, which moves that sample within its bin.
    The CDF is capped at its exact total 1, so u = 1 gives bins[:, -1] also behind bins with
    (almost) no weight, as nerf-pytorch's search past the end of its CDF does (where its own
    float sum ends above 1 it gives a point near the bottom of the last near-empty bin
    instead). Quantiles below 0 give bins[:, 0], above the last CDF value bins[:, -1]. NaN in ``u``
    gives NaN at that sample; NaN or inf in a ray's weights gives NaN for the whole ray.
    Unsorted ``u`` reaching the operator directly is a ValueError on CPU; on CUDA (where data
    checks are off unless FASTFIELD_DEBUG=1) each quantile still gets its exact inverse CDF.
    """
    op = "sample_pdf"
    require_tensor(op, "bins", bins)
    require_tensor(op, "weights", weights)
    n_samples = int_at_least(op, "n_samples", n_samples, 0)
    bins, weights, u = float_inputs(op, bins, weights, u)
    quantiles = pdf_quantiles(bins.shape[0], n_samples, det, None if u is None else u.detach(),
                              weights, generator)
    check_kernel(op, bins)
    return torch.ops.fastfield.sample_pdf(bins.detach(), weights.detach(), quantiles)


def merge_sorted(a: Tensor, b: Tensor) -> Merged:
    """Merge two per-ray ascending sets of samples (NeuS ``cat_z_vals``, nerf-pytorch's sort of
    the coarse and fine t) in O(na + nb) per ray, and say where each merged value came from.

    Stable: on ties the values of ``a`` come first, as with a stable sort of cat([a, b]); NaN
    sorts last, as in torch.sort. Per-sample features follow with ``index``
    (``torch.gather(torch.cat([fa, fb], -1), -1, index)``).

    Args:
        a: [n_rays, na] ascending along each ray, float32/float64.
        b: [n_rays, nb] ascending, same dtype and device.

    Returns:
        Merged(merged [n_rays, na + nb] ascending, index int64 [n_rays, na + nb] into
        cat([a, b], -1)), so that merged == cat([a, b], -1).gather(-1, index).

    Inputs that are not ascending are a ValueError on CPU; on CUDA (data checks off unless
    FASTFIELD_DEBUG=1) the result is still a permutation of each ray's inputs with a valid
    index, only not sorted.
    """
    op = "merge_sorted"
    require_tensor(op, "a", a)
    require_tensor(op, "b", b)
    a, b = float_inputs(op, a, b)
    check_kernel(op, a)
    merged, index = torch.ops.fastfield.merge_sorted(a.detach(), b.detach())
    return Merged(merged, index)


def neus_upsample(rays_o: Tensor, rays_d: Tensor, t: Tensor, sdf: Tensor, n_new: int,
                  inv_s: float) -> Tensor:
    """One NeuS up-sampling step (NeuS ``up_sample``): new sample positions where the SDF
    crosses zero, from the SDF at the current ones, in one pass per ray.

    For section k = [t_k, t_{k+1}]: slope = (sdf_{k+1} - sdf_k) / (t_{k+1} - t_k + 1e-5),
    cos = min(previous slope (0 for the first section), slope) clipped to [-1e3, 0] and zeroed
    where neither end is inside the unit sphere (|o + t d| < 1); the SDF at the section ends is
    estimated from its midpoint value and cos, alpha = (p - n + 1e-5) / (p + 1e-5) with
    p, n = sigmoid(inv_s * estimated SDF) at the two ends (unclipped), weights
    w_k = alpha_k prod_{j<k} (1 - alpha_j + 1e-7), then ``sample_pdf(t, w, n_new,
    det="midpoint")``. Merge the result into ``t`` with ``merge_sorted``.

    Args:
        rays_o: [n_rays, 3] ray origins, float32/float64.
        rays_d: [n_rays, 3] ray directions (NeuS: normalised).
        t: [n_rays, n] ascending sample positions, n >= 2.
        sdf: [n_rays, n] SDF at o + t d.
        n_new: new samples per ray.
        inv_s: the fixed inverse standard deviation of this step (NeuS: 64 * 2**i).

    Returns:
        [n_rays, n_new] ascending new t, dtype and device of ``t``.

    NaN in a ray's SDF or t gives NaN for that ray (its weights are NaN). On CPU the section
    alphas use the library's polynomial exp (within 2 ulp of expf), on CUDA the CUDA expf.
    """
    op = "neus_upsample"
    for name, value in (("rays_o", rays_o), ("rays_d", rays_d), ("t", t), ("sdf", sdf)):
        require_tensor(op, name, value)
    n_new = int_at_least(op, "n_new", n_new, 0)
    if isinstance(inv_s, bool) or not isinstance(inv_s, (int, float)):
        raise TypeError(f"fastfield.{op}: inv_s must be a float, got {type(inv_s).__name__}")
    rays_o, rays_d, t, sdf = float_inputs(op, rays_o, rays_d, t, sdf)
    u = pdf_quantiles(t.shape[0], n_new, "midpoint", None, t)
    check_kernel(op, t)
    return torch.ops.fastfield.neus_upsample(rays_o.detach(), rays_d.detach(), t.detach(),
                                             sdf.detach(), u, float(inv_s))


@torch.library.register_fake("fastfield::sample_pdf")
def _sample_pdf_fake(bins, weights, u):
    return bins.new_empty(bins.shape[0], u.shape[-1])


@torch.library.register_fake("fastfield::merge_sorted")
def _merge_sorted_fake(a, b):
    n = a.shape[1] + b.shape[1]
    return a.new_empty(a.shape[0], n), a.new_empty(a.shape[0], n, dtype=torch.long)


@torch.library.register_fake("fastfield::neus_upsample")
def _neus_upsample_fake(rays_o, rays_d, t, sdf, u, inv_s):
    return t.new_empty(t.shape[0], u.shape[-1])
