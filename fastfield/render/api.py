"""``fastfield.render`` and ``fastfield.render_image``: rays or whole images through a model's
pipeline, chunked to a memory budget so that a full-resolution image never runs out of memory.

Test-time settings are nerf-pytorch's: no perturbation and no density noise (``perturb=False``).
NeuS renders its own validation images with perturb = 1; fastfield renders NeuS
deterministically too, so repeated renders of a view are identical.
"""
from typing import Dict, Optional, Union

import torch
from torch import Tensor, nn

from ..core.checks import per_ray
from ..core.memory import memory_budget
from .backend import DEFAULT_BACKEND, backend_ops, encodings_follow_backend
from .graphed import check_graph_mode, render_chunks
from .memory import bytes_per_point
from .pipelines import Pipeline, pipeline_for
from .samples import RayBundle, RenderContext

Bound = Union[None, float, Tensor]


def bytes_per_ray(pipeline: Pipeline) -> int:
    """A generous estimate of the memory one ray needs while rendering without gradients:
    every sample keeps a few activations of the widest layer alive (``bytes_per_point``). A
    pipeline whose samples per ray vary (the occupancy-grid marcher) says itself what a ray
    costs (``pipeline.bytes_per_ray()``) and bounds its field evaluations by samples."""
    if hasattr(pipeline, "bytes_per_ray"):
        return pipeline.bytes_per_ray()
    return pipeline.points_per_ray() * bytes_per_point(pipeline.module, pipeline.keeps_graph)


def auto_chunk(pipeline: Pipeline, device: torch.device) -> int:
    """Rays per chunk for rendering with ``pipeline`` on ``device`` within memory_budget()."""
    return max(256, memory_budget(device) // bytes_per_ray(pipeline))


@encodings_follow_backend
def render(model: nn.Module, rays_o: Tensor, rays_d: Tensor, near: Bound = None,
           far: Bound = None, *, ndc: Optional[Dict[str, float]] = None,
           background: Optional[Tensor] = None, perturb: bool = False,
           backend: str = DEFAULT_BACKEND, chunk: Optional[int] = None,
           generator: Optional[torch.Generator] = None, cos_anneal_ratio: float = 1.0,
           pipeline: Optional[Pipeline] = None, cuda_graph: str = "auto") -> Dict[str, Tensor]:
    """Render rays through ``model`` (a fastfield NeRF or NeuS, or any model with a registered
    pipeline).

    Args:
        rays_o, rays_d: [n_rays, 3] origins and directions (world space; NeuS: the normalised
            scene, unit directions).
        near, far: floats or [n_rays] tensors; None (NeuS) bounds each ray by the unit sphere
            (NeuS ``near_far_from_sphere``).
        ndc: LLFF forward-facing scenes: {"H", "W", "focal", "near"} -- view directions are
            taken from the world rays, then rays go to NDC (nerf-pytorch's order).
        background: [3] or [n_rays, 3] colour behind the scene (white for Blender), or None.
        perturb: training-time sampling (jittered samples, density noise, random PDF
            quantiles); False renders deterministically.
        backend: "kernels" or "reference" (see fastfield.render.backend_ops); "reference" also
            runs the fields' positional encodings as plain PyTorch.
        chunk: rays per chunk; None picks one from the memory budget when gradients are off
            (with gradients on, the batch is rendered in one piece).
        generator: random source for the perturbations.
        cos_anneal_ratio: NeuS's cosine annealing ratio (1 at test time).
        pipeline: how to render (fastfield.render.pipeline_for(model) when None): pass one to
            swap a sampler or a field without registering a new model type.
        cuda_graph: "auto", "on" or "off": a chunked render without gradients on CUDA replays
            its full chunks from a CUDA graph (fastfield.render.graphed; auto: where it can).

    Returns:
        dict of [n_rays, ...] tensors: rgb [n_rays, 3], depth and acc [n_rays]; NeuS also
        normal [n_rays, 3]; while training, the extra terms the loss needs.
    """
    ops = backend_ops(backend)
    pipeline = pipeline if pipeline is not None else pipeline_for(model)
    if rays_o.dim() != 2 or rays_o.shape[-1] != 3 or rays_d.shape != rays_o.shape:
        raise ValueError(f"rays_o and rays_d must both be [n_rays, 3], got {list(rays_o.shape)} "
                         f"and {list(rays_d.shape)}")
    viewdirs = rays_d / rays_d.norm(dim=-1, keepdim=True)
    if near is None or far is None:
        bounds = ops.near_far_sphere(rays_o, rays_d, 1.0, mode="neus")
        near = bounds.near if near is None else near
        far = bounds.far if far is None else far
    n_rays = rays_o.shape[0]
    near = per_ray("render", "near", near, n_rays, rays_o)
    far = per_ray("render", "far", far, n_rays, rays_o)
    if ndc is not None:
        rays_o, rays_d = ops.ndc_rays(rays_o, rays_d, ndc["H"], ndc["W"], ndc["focal"],
                                      ndc.get("near", 1.0))
    rays = RayBundle(rays_o, rays_d, viewdirs, near, far)
    ctx = RenderContext(ops, perturb, generator, background, cos_anneal_ratio)
    if chunk is None:
        chunk = n_rays if torch.is_grad_enabled() else auto_chunk(pipeline, rays_o.device)
    check_graph_mode(cuda_graph)
    if n_rays <= chunk:
        return pipeline(rays, ctx)
    parts = render_chunks(pipeline, rays, ctx, chunk, backend, cuda_graph)
    return {key: _merge([p[key] for p in parts]) for key in parts[0]}


def _merge(values):
    """One output of every chunk as one: per-ray values concatenated; 0-d counts (integer:
    the occupancy pipeline's samples) summed, 0-d floats (NeuS's s_val) averaged."""
    if values[0].dim() > 0:
        return torch.cat(values)
    stacked = torch.stack(values)
    return stacked.sum() if not stacked.is_floating_point() else stacked.mean()


def camera_rays(model: nn.Module, camera, pixels: Tensor, backend: str = DEFAULT_BACKEND):
    """Rays (origins, directions [n, 3]) of ``pixels`` [n, 3] int64 (camera, row, col) of
    ``camera`` (a fastfield.data.Camera on the pixels' device), as ``model``'s pipeline expects
    them: unit directions for NeuS (NeuS's convention), nerf-pytorch's (z = -1 in camera
    space) otherwise; pixel offset 0 like both references."""
    return backend_ops(backend).generate_rays(camera.c2w, camera.intrinsics, pixels,
                                              convention=camera.convention,
                                              normalize=pipeline_for(model).unit_directions)


def render_image(model: nn.Module, camera, index: int = 0, *, near: Bound = None,
                 far: Bound = None, ndc: Optional[Dict[str, float]] = None,
                 background: Optional[Tensor] = None, backend: str = DEFAULT_BACKEND,
                 chunk: Optional[int] = None, device: Optional[torch.device] = None,
                 cuda_graph: str = "auto") -> Dict[str, Tensor]:
    """Render view ``index`` of ``camera`` (a fastfield.data.Camera) without gradients.

    Rays are generated per pixel of that one camera only. Returns [H, W, C] images: rgb
    [H, W, 3], depth and acc [H, W] (NeuS also normal [H, W, 3]). NeuS models get unit ray
    directions (NeuS's convention); NeRF gets nerf-pytorch's (z = -1 in camera space).
    On CUDA the full-size chunks replay from a CUDA graph (``cuda_graph``, see ``render``).
    """
    from ..ops import image_pixels

    device = device or next(model.parameters()).device
    cam = camera[index].to(device)
    pixels = image_pixels(0, cam.height, cam.width, device=device)
    rays = camera_rays(model, cam, pixels, backend)
    with torch.no_grad():
        out = render(model, rays.origins, rays.directions, near, far, ndc=ndc,
                     background=background, perturb=False, backend=backend, chunk=chunk,
                     cuda_graph=cuda_graph)
    return {key: value.reshape(cam.height, cam.width, *value.shape[1:])
            for key, value in out.items() if value.dim() > 0}
