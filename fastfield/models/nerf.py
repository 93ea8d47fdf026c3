"""NeRF (Mildenhall et al. 2020) as nerf-pytorch trains it: coarse and fine MLPs, stratified
then hierarchical sampling, both passes supervised. Every sampling and compositing step is a
fastfield op; ``ops`` chooses the kernels (``fastfield``) or their twins (``fastfield.reference``).
"""
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .mlp import MLPConfig, NeRFMLP

# nerf-pytorch's "infinite" length of the last sample, so rays end opaque.
LAST_DELTA = 1e10


@dataclass
class NeRFConfig:
    coarse: MLPConfig = field(default_factory=MLPConfig)
    fine: Optional[MLPConfig] = field(default_factory=MLPConfig)  # None: coarse pass only
    n_coarse: int = 64
    n_fine: int = 128
    lindisp: bool = False
    raw_noise_std: float = 0.0  # density noise while training (fern: 1.0)


class NeRF(nn.Module):
    """Coarse + fine radiance fields. The fields can be any module with NeRFMLP's signature
    (the benchmark suite swaps in a trivial one to time the pipeline around the networks)."""

    kind = "nerf"

    def __init__(self, config: NeRFConfig, coarse: Optional[nn.Module] = None,
                 fine: Optional[nn.Module] = None):
        super().__init__()
        self.config = config
        self.coarse = coarse if coarse is not None else NeRFMLP(config.coarse)
        if fine is None and config.fine is not None and config.n_fine > 0:
            fine = NeRFMLP(config.fine)
        self.fine = fine

    def points_per_ray(self) -> int:
        return self.config.n_coarse + (self.config.n_fine if self.fine is not None else 0)

    def _field_pass(self, field: nn.Module, rays_o: Tensor, rays_d: Tensor, viewdirs: Tensor,
                    t: Tensor, ops, noise_std: float, background: Optional[Tensor],
                    generator: Optional[torch.Generator]):
        """Evaluate ``field`` at t [n_rays, n] and composite (nerf-pytorch ``raw2outputs``)."""
        n_rays, n = t.shape
        points = rays_o[:, None, :] + rays_d[:, None, :] * t[..., None]
        dirs = viewdirs[:, None, :].expand(n_rays, n, 3)
        raw_density, raw_rgb = field(points.reshape(-1, 3), dirs.reshape(-1, 3))
        raw_density = raw_density.reshape(n_rays, n)
        if noise_std > 0:
            raw_density = raw_density + noise_std * torch.randn(
                raw_density.shape, generator=generator, device=t.device, dtype=raw_density.dtype)
        deltas = torch.cat([t[:, 1:] - t[:, :-1], t.new_full((n_rays, 1), LAST_DELTA)], -1)
        deltas = deltas * rays_d.norm(dim=-1, keepdim=True)
        return ops.composite_density(F.relu(raw_density), torch.sigmoid(raw_rgb).reshape(n_rays, n, 3),
                                     deltas, t, None, background)

    def render_rays(self, rays_o: Tensor, rays_d: Tensor, near: Tensor, far: Tensor, *, ops,
                    viewdirs: Tensor, perturb: bool, background: Optional[Tensor] = None,
                    generator: Optional[torch.Generator] = None, **_) -> Dict[str, Tensor]:
        """Render [n_rays] rays; rays_o/rays_d [n_rays, 3] (NDC already applied), viewdirs the
        unit world directions [n_rays, 3], near/far [n_rays]. Returns rgb [n_rays, 3], depth and
        acc [n_rays] of the fine pass, and the coarse pass's as rgb_coarse etc."""
        cfg = self.config
        noise = cfg.raw_noise_std if perturb else 0.0
        t = ops.stratified_samples(near, far, cfg.n_coarse, lindisp=cfg.lindisp,
                                   jitter="per_sample" if perturb else "none", generator=generator)
        coarse = self._field_pass(self.coarse, rays_o, rays_d, viewdirs, t, ops, noise, background,
                                  generator)
        out = {"rgb": coarse.rgb, "depth": coarse.depth, "acc": coarse.acc}
        if self.fine is None:
            return out
        t_mid = 0.5 * (t[:, 1:] + t[:, :-1])
        t_fine = ops.sample_pdf(t_mid, coarse.weights[:, 1:-1].detach(), cfg.n_fine,
                                det=not perturb, generator=generator)
        t_all = ops.merge_sorted(t, t_fine).merged
        fine = self._field_pass(self.fine, rays_o, rays_d, viewdirs, t_all, ops, noise, background,
                                generator)
        return {"rgb": fine.rgb, "depth": fine.depth, "acc": fine.acc,
                "rgb_coarse": coarse.rgb, "depth_coarse": coarse.depth, "acc_coarse": coarse.acc}

    def loss(self, out: Dict[str, Tensor], target_rgb: Tensor, mask: Optional[Tensor] = None
             ) -> Tuple[Tensor, Dict[str, Tensor]]:
        """nerf-pytorch: MSE of the fine and of the coarse colour. PSNR from the fine MSE."""
        mse = F.mse_loss(out["rgb"], target_rgb)
        loss = mse
        if "rgb_coarse" in out:
            loss = loss + F.mse_loss(out["rgb_coarse"], target_rgb)
        return loss, {"loss": loss.detach(), "psnr": -10.0 * torch.log10(mse.detach())}
