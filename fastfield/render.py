"""``fastfield.render`` and ``fastfield.render_image``: rays or whole images through a NeRF or
NeuS model, chunked to a memory budget so that a full-resolution image never runs out of memory.

Test-time settings are nerf-pytorch's: no perturbation and no density noise (``perturb=False``).
NeuS renders its own validation images with perturb = 1; fastfield renders NeuS
deterministically too, so repeated renders of a view are identical.
"""
import os
from types import ModuleType
from typing import Dict, Optional, Union

import torch
from torch import Tensor, nn

from . import reference

Bound = Union[None, float, Tensor]


def backend_ops(backend: str) -> ModuleType:
    """The op namespace of a backend: "kernels" (fastfield's fused kernels) or "reference"
    (the pure-PyTorch twins, written the way nerf-pytorch and NeuS are)."""
    if backend == "kernels":
        from . import ops
        return ops
    if backend == "reference":
        return reference
    raise ValueError(f"backend must be 'kernels' or 'reference', got {backend!r}")


def bytes_per_ray(model: nn.Module) -> int:
    """A generous estimate of the memory one ray needs while rendering ``model`` without
    gradients: every sample keeps a few activations of the widest layer alive, NeuS also the
    autograd graph of its SDF network (normals need d sdf / d x)."""
    widths = [m.out_features for m in model.modules() if isinstance(m, nn.Linear)] or [64]
    depth = sum(isinstance(m, nn.Linear) for m in model.modules())
    per_point = 4 * max(widths) * (8 + (2 * depth if getattr(model, "kind", "") == "neus" else 0))
    return model.points_per_ray() * per_point


def memory_budget(device: torch.device) -> int:
    """Bytes a render may use: 60% of the free memory on a GPU; on a CPU a quarter of the
    available RAM, at most 2 GiB (larger chunks are not faster there)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.6)
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        available = 8 << 30
    return int(min(available // 4, 2 << 30))


def auto_chunk(model: nn.Module, device: torch.device) -> int:
    """Rays per chunk for rendering ``model`` on ``device`` within memory_budget()."""
    return max(256, memory_budget(device) // bytes_per_ray(model))


def _per_ray(value: Bound, like: Tensor, name: str) -> Tensor:
    if isinstance(value, Tensor):
        return value.to(like.dtype).expand(like.shape[0]) if value.dim() == 0 else value
    if isinstance(value, (int, float)):
        return torch.full((like.shape[0],), float(value), dtype=like.dtype, device=like.device)
    raise TypeError(f"{name} must be a float or a [n_rays] tensor, got {type(value).__name__}")


def render(model: nn.Module, rays_o: Tensor, rays_d: Tensor, near: Bound = None,
           far: Bound = None, *, ndc: Optional[Dict[str, float]] = None,
           background: Optional[Tensor] = None, perturb: bool = False,
           backend: str = "kernels", chunk: Optional[int] = None,
           generator: Optional[torch.Generator] = None,
           cos_anneal_ratio: float = 1.0) -> Dict[str, Tensor]:
    """Render rays through ``model`` (a fastfield NeRF or NeuS).

    Args:
        rays_o, rays_d: [n_rays, 3] origins and directions (world space; NeuS: the normalised
            scene, unit directions).
        near, far: floats or [n_rays] tensors; None (NeuS) bounds each ray by the unit sphere
            (NeuS ``near_far_from_sphere``).
        ndc: LLFF forward-facing scenes: {"H", "W", "focal", "near"} -- view directions are
            taken from the world rays, then rays go to NDC (nerf-pytorch's order).
        background: [3] colour behind the scene (white for Blender), or None.
        perturb: training-time sampling (jittered samples, density noise, random PDF
            quantiles); False renders deterministically.
        backend: "kernels" or "reference" (see backend_ops).
        chunk: rays per chunk; None picks one from the memory budget when gradients are off
            (with gradients on, the batch is rendered in one piece).
        generator: random source for the perturbations.
        cos_anneal_ratio: NeuS's cosine annealing ratio (1 at test time).

    Returns:
        dict of [n_rays, ...] tensors: rgb [n_rays, 3], depth and acc [n_rays]; NeuS also
        normal [n_rays, 3]; while training, the extra terms the model's loss needs.
    """
    ops = backend_ops(backend)
    if rays_o.dim() != 2 or rays_o.shape[-1] != 3 or rays_d.shape != rays_o.shape:
        raise ValueError(f"rays_o and rays_d must both be [n_rays, 3], got {list(rays_o.shape)} "
                         f"and {list(rays_d.shape)}")
    viewdirs = rays_d / rays_d.norm(dim=-1, keepdim=True)
    if near is None or far is None:
        bounds = ops.near_far_sphere(rays_o, rays_d, 1.0, mode="neus")
        near = bounds.near if near is None else near
        far = bounds.far if far is None else far
    near, far = _per_ray(near, rays_o, "near"), _per_ray(far, rays_o, "far")
    if ndc is not None:
        rays_o, rays_d = ops.ndc_rays(rays_o, rays_d, ndc["H"], ndc["W"], ndc["focal"],
                                      ndc.get("near", 1.0))
    kwargs = dict(ops=ops, perturb=perturb, background=background, generator=generator,
                  cos_anneal_ratio=cos_anneal_ratio)
    n_rays = rays_o.shape[0]
    if chunk is None:
        chunk = n_rays if torch.is_grad_enabled() else auto_chunk(model, rays_o.device)
    if n_rays <= chunk:
        return model.render_rays(rays_o, rays_d, near, far, viewdirs=viewdirs, **kwargs)
    parts = [model.render_rays(rays_o[i:i + chunk], rays_d[i:i + chunk], near[i:i + chunk],
                               far[i:i + chunk], viewdirs=viewdirs[i:i + chunk], **kwargs)
             for i in range(0, n_rays, chunk)]
    return {key: torch.cat([p[key] for p in parts]) if parts[0][key].dim() > 0
            else torch.stack([p[key] for p in parts]).mean()
            for key in parts[0]}


def camera_rays(model: nn.Module, camera, pixels: Tensor, backend: str = "kernels"):
    """Rays (origins, directions [n, 3]) of ``pixels`` [n, 3] int64 (camera, row, col) of
    ``camera`` (a fastfield.data.Camera on the pixels' device), as ``model`` expects them: unit
    directions for NeuS (NeuS's convention), nerf-pytorch's (z = -1 in camera space) otherwise;
    pixel offset 0 like both references."""
    return backend_ops(backend).generate_rays(camera.c2w, camera.intrinsics, pixels,
                                              convention=camera.convention,
                                              normalize=getattr(model, "kind", "") == "neus")


def render_image(model: nn.Module, camera, index: int = 0, *, near: Bound = None,
                 far: Bound = None, ndc: Optional[Dict[str, float]] = None,
                 background: Optional[Tensor] = None, backend: str = "kernels",
                 chunk: Optional[int] = None, device: Optional[torch.device] = None
                 ) -> Dict[str, Tensor]:
    """Render view ``index`` of ``camera`` (a fastfield.data.Camera) without gradients.

    Rays are generated per pixel of that one camera only. Returns [H, W, C] images: rgb
    [H, W, 3], depth and acc [H, W] (NeuS also normal [H, W, 3]). NeuS models get unit ray
    directions (NeuS's convention); NeRF gets nerf-pytorch's (z = -1 in camera space).
    """
    from .ops import image_pixels

    device = device or next(model.parameters()).device
    cam = camera[index].to(device)
    pixels = image_pixels(0, cam.height, cam.width, device=device)
    rays = camera_rays(model, cam, pixels, backend)
    with torch.no_grad():
        out = render(model, rays.origins, rays.directions, near, far, ndc=ndc,
                     background=background, perturb=False, backend=backend, chunk=chunk)
    return {key: value.reshape(cam.height, cam.width, *value.shape[1:])
            for key, value in out.items() if value.dim() > 0}
