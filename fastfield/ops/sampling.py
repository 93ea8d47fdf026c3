"""Stratified sampling of t along rays (nerf-pytorch and NeuS coarse samples).

Autograd policy of this family: not differentiable (sample positions are constants of the
rendering integral, as in nerf-pytorch and NeuS). The operator's Autograd kernel is torch's
not-implemented fallback (csrc/sampling/stratified_autograd.cpp): a backward that needs
d t / d (near, far, u) raises RuntimeError.
"""
from typing import Optional, Union

import torch
from torch import Tensor

from ._common import check_kernel, float_inputs, int_at_least, per_ray
from ..core.enums import JITTERS, enum_value
from ..core.random import uniform

__all__ = ["stratified_samples"]


def stratified_samples(near: Union[float, Tensor], far: Union[float, Tensor], n_samples: int,
                       u: Optional[Tensor] = None, lindisp: bool = False,
                       jitter: str = "per_sample",
                       generator: Optional[torch.Generator] = None) -> Tensor:
    """``n_samples`` values of t per ray between near and far, stratified.

    The grid is t_i = near (1 - s_i) + far s_i with s = linspace(0, 1, n_samples), or with
    ``lindisp`` linear in disparity: t_i = 1 / ((1 - s_i) / near + s_i / far). Then:

    - ``jitter="none"``: the grid itself (nerf-pytorch with perturb = 0, test time).
    - ``"per_sample"`` (nerf-pytorch, perturb = 1): sample i is uniform in its bin, bounded by
      the midpoints of the grid (the first bin starts at t_0, the last ends at t_{n-1}):
      t_i = lower_i + (upper_i - lower_i) u_i with ``u`` [n_rays, n_samples].
    - ``"per_ray"`` (NeuS ``render``): the whole grid shifted by (u - 0.5) (far - near) /
      n_samples with ``u`` [n_rays]; for NeuS's near/far (closest approach -/+ 1) this is its
      (u - 0.5) * 2 / n_samples. Samples may then leave [near, far] by half a bin.

    ``u`` in [0, 1), float of near's dtype and device; when None it is drawn with
    ``torch.rand`` from ``generator`` exactly as ``fastfield.reference.stratified_samples``
    draws it, so both give the same samples for the same generator state.

    Args:
        near, far: per-ray bounds, [n_rays] float32/float64 tensors; one of them may instead
            be a Python float or a 0-d tensor, broadcast to every ray. At least one must be a
            [n_rays] tensor: it fixes n_rays, the dtype and the device.
        n_samples: samples per ray, >= 1 (a single sample sits at near).
        u: the jitter, see above; must be None for ``jitter="none"``.
        lindisp: space the grid linearly in disparity (needs 0 < near, far).
        jitter: ``"per_sample"``, ``"per_ray"`` or ``"none"``.
        generator: draws ``u`` when it is None, on its own device (then moved to near's).

    Returns:
        t [n_rays, n_samples], ascending along each ray where near <= far.

    NaN in near, far or u stays in the samples of its ray.
    """
    op = "stratified_samples"
    # A conditional, not next() over a generator: dynamo before torch 2.5 cannot trace the
    # two-argument next() (torch.compile(fullgraph=True) must accept this function).
    like = near if isinstance(near, Tensor) and near.dim() == 1 else (
        far if isinstance(far, Tensor) and far.dim() == 1 else None)
    if like is None:
        raise ValueError(f"fastfield.{op}: near or far must be a [n_rays] tensor (the other may "
                         f"be a float); got {type(near).__name__} and {type(far).__name__}")
    n_rays = like.shape[0]
    near, far = per_ray(op, "near", near, n_rays, like), per_ray(op, "far", far, n_rays, like)
    n_samples = int_at_least(op, "n_samples", n_samples, 1)
    code = enum_value(op, "jitter", jitter, JITTERS)
    near, far, u = float_inputs(op, near, far, u)
    if u is None and jitter != "none":
        shape = (n_rays, n_samples) if jitter == "per_sample" else (n_rays,)
        u = uniform(shape, near, generator)
    check_kernel(op, near)
    return torch.ops.fastfield.stratified_samples(near, far, u, n_samples, bool(lindisp), code)


@torch.library.register_fake("fastfield::stratified_samples")
def _stratified_samples_fake(near, far, u, n_samples, lindisp, jitter):
    return near.new_empty(near.shape[0], n_samples)
