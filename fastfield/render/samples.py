"""What flows between the parts of a pipeline: the rays of a batch, the render settings, the
samples a sampler places along the rays, and what one field pass made of them."""
from types import ModuleType
from typing import NamedTuple, Optional

import torch
from torch import Tensor


class RayBundle(NamedTuple):
    """The rays a pipeline renders.

    origins, directions: [n_rays, 3], as the samples are placed along them (after NDC, if
    any); directions need not be unit length (nerf-pytorch's have z = -1 in camera space).
    viewdirs: [n_rays, 3] unit view directions, taken before NDC (what fields see).
    near, far: [n_rays] bounds of the samples.
    """
    origins: Tensor
    directions: Tensor
    viewdirs: Tensor
    near: Tensor
    far: Tensor

    def chunk(self, start: int, stop: int) -> "RayBundle":
        """Rays start:stop (a chunk)."""
        return RayBundle(*(value[start:stop] for value in self))


class RenderContext(NamedTuple):
    """Settings of one render call, the same for every chunk.

    ops: the op namespace (fastfield.ops or fastfield.reference; render.backend_ops).
    perturb: training-time sampling (jitter, density noise, random PDF quantiles).
    generator: the random source of the perturbations.
    background: [3] colour behind the scene, or None.
    cos_anneal_ratio: NeuS's cosine annealing ratio (1 at test time).
    """
    ops: ModuleType
    perturb: bool
    generator: Optional[torch.Generator]
    background: Optional[Tensor]
    cos_anneal_ratio: float


class RaySamples(NamedTuple):
    """Samples along a batch of rays, in either layout the compositing ops take.

    Padded: ``t`` and ``deltas`` [n_rays, n], ``ray_offsets`` None. Packed: ``t`` and
    ``deltas`` [n_samples] with ``ray_offsets`` int64 [n_rays + 1] (CSR: ray r owns samples
    ray_offsets[r]:ray_offsets[r + 1]; rays may be empty), as an occupancy-grid marcher
    produces them.

    t: the ray parameter of each sample (x = o + t d): where a NeRF pipeline evaluates its
        field and measures depth; the start of each section for NeuS (which evaluates at
        t + deltas / 2).
    deltas: the length of ray, in units of t, that each sample stands for (nerf-pytorch: the
        gap to the next sample, 1e10 for the last); the pipelines scale it by |d|.
    """
    t: Tensor
    deltas: Tensor
    ray_offsets: Optional[Tensor] = None

    @property
    def packed(self) -> bool:
        return self.ray_offsets is not None

    def ray_ids(self) -> Tensor:
        """Packed layout: the ray of each sample, int64 [n_samples] (no host synchronisation:
        the output size is the known sample count)."""
        n_rays = self.ray_offsets.shape[0] - 1
        counts = self.ray_offsets[1:] - self.ray_offsets[:-1]
        return torch.repeat_interleave(torch.arange(n_rays, device=self.t.device), counts,
                                       output_size=self.t.shape[0])

    def per_sample(self, values: Tensor, ray_ids: Optional[Tensor] = None) -> Tensor:
        """Per-ray values [n_rays, ...] at every sample: [n_rays, n, ...] (a broadcast view) or
        [n_samples, ...] (packed; ``ray_ids`` saves recomputing them)."""
        if self.packed:
            return values[self.ray_ids() if ray_ids is None else ray_ids]
        return values[:, None].expand(values.shape[0], self.t.shape[1], *values.shape[1:])

    def sum_per_ray(self, values: Tensor, ray_ids: Optional[Tensor] = None) -> Tensor:
        """Per-sample values [n_rays, n, ...] or [n_samples, ...] summed over each ray's
        samples: [n_rays, ...]."""
        if not self.packed:
            return values.sum(1)
        n_rays = self.ray_offsets.shape[0] - 1
        total = values.new_zeros(n_rays, *values.shape[1:])
        return total.index_add_(0, self.ray_ids() if ray_ids is None else ray_ids, values)


class FieldPass(NamedTuple):
    """One field evaluation of a pipeline: the samples and the compositing weights there
    (layout of ``samples.t``), which the next pass's sampler may use (hierarchical sampling)."""
    samples: RaySamples
    weights: Tensor


def gaps(t: Tensor, last: float) -> Tensor:
    """[n_rays, n] distances to the next sample along each ray, ``last`` for the last one
    (nerf-pytorch's dists with 1e10 appended; NeuS's with the base sample distance)."""
    return torch.cat([t[:, 1:] - t[:, :-1], t.new_full((t.shape[0], 1), last)], -1)
