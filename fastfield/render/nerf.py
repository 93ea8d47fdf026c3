"""The NeRF pipeline: density fields rendered pass by pass (nerf-pytorch ``render_rays``).

Pass k draws samples with ``samplers[k]`` (given pass k - 1's samples and weights), evaluates
``fields[k]`` there and composites with ``composite_density`` (nerf-pytorch ``raw2outputs``:
ReLU density plus optional noise, sigmoid colour, deltas scaled by |d|). nerf-pytorch is two
passes: StratifiedSampler with the coarse field, HierarchicalSampler with the fine one.

Packed samples need nothing more here: a sampler that returns packed RaySamples (an
occupancy-grid marcher: t, deltas and ray_offsets) makes ``_field_pass`` gather each sample's
ray, hand the field a flat batch of points and composite by ray_offsets; a one-pass pipeline
``NeRFPipeline([field], [marcher])`` is then the whole occupancy-grid method.
"""
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.types import DensityComposite
from .samples import FieldPass, RayBundle, RaySamples, RenderContext

# (points [N, 3], unit view directions [N, 3]) -> (raw density [N], raw rgb [N, 3])
RadianceFn = Callable[[Tensor, Tensor], Tuple[Tensor, Tensor]]


class NeRFPipeline:
    """Renders rays through density fields, one (sampler, field) pair per pass.

    Args:
        fields: one radiance callable per pass (NeRFField's signature).
        samplers: one sampler per pass (see fastfield.render.samplers).
        raw_noise_std: std of the Gaussian noise added to the raw density when perturbing.
        module: the nn.Module holding the fields (for memory estimates), if any.

    Returns of a call: {"rgb" [n_rays, 3], "depth", "acc" [n_rays]} of the last pass, and the
    same of the earlier passes suffixed "_coarse" (two passes) or "_pass<k>".
    """

    unit_directions = False   # nerf-pytorch's rays: z = -1 in camera space
    keeps_graph = False       # no autograd graph while rendering without gradients

    def __init__(self, fields: Sequence[RadianceFn], samplers: Sequence, raw_noise_std: float = 0.0,
                 module: Optional[nn.Module] = None):
        if len(fields) != len(samplers) or not fields:
            raise ValueError(f"NeRFPipeline needs one sampler per field, got {len(fields)} "
                             f"fields and {len(samplers)} samplers")
        self.fields, self.samplers = list(fields), list(samplers)
        self.raw_noise_std, self.module = raw_noise_std, module

    def points_per_ray(self) -> int:
        return sum(sampler.n_samples for sampler in self.samplers)

    def _field_pass(self, field: RadianceFn, rays: RayBundle, samples: RaySamples,
                    ctx: RenderContext) -> DensityComposite:
        t = samples.t
        ray_ids = samples.ray_ids() if samples.packed else None
        if ray_ids is not None:
            points = rays.origins[ray_ids] + rays.directions[ray_ids] * t[:, None]
            scale = rays.directions.norm(dim=-1)[ray_ids]
        else:
            points = (rays.origins[:, None, :] + rays.directions[:, None, :] * t[..., None])
            points = points.reshape(-1, 3)
            scale = rays.directions.norm(dim=-1, keepdim=True)
        viewdirs = samples.per_sample(rays.viewdirs, ray_ids).reshape(-1, 3)
        raw_density, raw_rgb = field(points, viewdirs)
        raw_density = raw_density.reshape(t.shape)
        if ctx.perturb and self.raw_noise_std > 0:
            raw_density = raw_density + self.raw_noise_std * torch.randn(
                raw_density.shape, generator=ctx.generator, device=t.device,
                dtype=raw_density.dtype)
        return ctx.ops.composite_density(F.relu(raw_density),
                                         torch.sigmoid(raw_rgb).reshape(*t.shape, 3),
                                         samples.deltas * scale, t, samples.ray_offsets,
                                         ctx.background)

    def __call__(self, rays: RayBundle, ctx: RenderContext) -> Dict[str, Tensor]:
        results, previous = [], None
        for field, sampler in zip(self.fields, self.samplers):
            samples = sampler(rays, ctx, previous)
            result = self._field_pass(field, rays, samples, ctx)
            results.append(result)
            previous = FieldPass(samples, result.weights)
        last = results[-1]
        out = {"rgb": last.rgb, "depth": last.depth, "acc": last.acc}
        for k, result in enumerate(results[:-1]):
            suffix = "_coarse" if len(results) == 2 else f"_pass{k}"
            out.update({"rgb" + suffix: result.rgb, "depth" + suffix: result.depth,
                        "acc" + suffix: result.acc})
        return out
