"""The adaptive batch of the occupancy sampler (nerfacc's target_sample_batch_size): the number
of rays per step follows the previous step's sample count towards a target, without a
host-device synchronisation.

nerfacc reads the count on the host and resizes the batch. Here the batch is a fixed buffer of
``max_rays`` rays; the first ``ray_count`` of them are active (a device tensor), the others get
near = far, so the marcher gives them no samples and the loss leaves them out. The marcher's
sample buffer (its capacity) holds ``HEADROOM`` x the target so that the step-to-step variation
of the count rarely drops rays; those it drops are counted and reported.
"""
import math
from typing import Any, Dict, Tuple

import torch
from torch import Tensor

HEADROOM = 1.25  # sample buffer / target


class AdaptiveRayCount:
    """Rays per step for a target of ``target_samples`` marched samples.

    Args:
        target_samples: marched samples per step to aim at.
        max_rays: the ray buffer (TrainConfig.batch_rays).
        samples_per_ray: an upper bound of one ray's samples (a ray through the whole box), so
            that the first step, with every cell occupied, fits the buffer.
        device: where the count lives.
    """

    def __init__(self, target_samples: int, max_rays: int, samples_per_ray: int,
                 device: torch.device):
        if target_samples < 1:
            raise ValueError(f"target_samples must be >= 1, got {target_samples}")
        self.target, self.max_rays = int(target_samples), int(max_rays)
        self.capacity = int(math.ceil(HEADROOM * self.target))
        first = min(max(self.target // max(samples_per_ray, 1), 1), self.max_rays)
        self.ray_count = torch.tensor(float(first), dtype=torch.float64, device=device)

    def active(self) -> Tensor:
        """bool [max_rays]: the rays this step renders (the first ``ray_count``)."""
        index = torch.arange(self.max_rays, device=self.ray_count.device)
        return index < self.ray_count.floor()

    def bounds(self, near, far, active: Tensor) -> Tuple[Tensor, Tensor]:
        """Per-ray near, far [max_rays] with far = near for the inactive rays (None: 0 and
        infinity, the marcher cuts rays to its grid's box)."""
        near = 0.0 if near is None else near
        far = math.inf if far is None else far
        near = torch.as_tensor(near, dtype=torch.float32, device=active.device).expand(
            active.shape).contiguous()
        far = torch.as_tensor(far, dtype=torch.float32, device=active.device).expand(
            active.shape)
        return near, torch.where(active, far, near)

    def update(self, marched_samples: Tensor) -> None:
        """Rays for the next step: ray_count x target / marched (clamped to [1, max_rays])."""
        ratio = self.target / marched_samples.double().clamp(min=1.0)
        self.ray_count = (self.ray_count * ratio).clamp(1.0, float(self.max_rays))

    def state_dict(self) -> Dict[str, Any]:
        return {"ray_count": self.ray_count.detach().cpu()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.ray_count = state["ray_count"].to(self.ray_count)
