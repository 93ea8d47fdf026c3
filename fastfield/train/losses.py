"""The training losses of each method, from a pipeline's outputs and the batch's target colours.

A loss is ``loss(out, target_rgb, mask) -> (loss, stats)``: ``out`` the render's dict,
target_rgb [n_rays, 3], mask [n_rays] or None; stats are 0-d device tensors for the log (never
read here, so a step makes no host-device synchronisation).
"""
from functools import partial
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

LossFn = Callable[[Dict[str, Tensor], Tensor, Optional[Tensor]], Tuple[Tensor, Dict[str, Tensor]]]


def nerf_loss(out: Dict[str, Tensor], target_rgb: Tensor, mask: Optional[Tensor] = None
              ) -> Tuple[Tensor, Dict[str, Tensor]]:
    """nerf-pytorch: MSE of the fine and of the coarse colour. PSNR from the fine MSE.

    ``mask`` [n_rays] (0/1), when given, selects the rays that count (an adaptive batch's
    active rays, see StepRunner): the MSE is taken over those rays only."""
    def mse_of(rgb: Tensor) -> Tensor:
        if mask is None:
            return F.mse_loss(rgb, target_rgb)
        squared = ((rgb - target_rgb) ** 2).sum(-1) * mask
        return squared.sum() / (3.0 * mask.sum().clamp(min=1.0))

    mse = mse_of(out["rgb"])
    loss = mse
    if "rgb_coarse" in out:
        loss = loss + mse_of(out["rgb_coarse"])
    return loss, {"loss": loss.detach(), "psnr": -10.0 * torch.log10(mse.detach())}


def neus_loss(out: Dict[str, Tensor], target_rgb: Tensor, mask: Optional[Tensor] = None,
              eikonal_weight: float = 0.1, mask_weight: float = 0.0
              ) -> Tuple[Tensor, Dict[str, Tensor]]:
    """NeuS: L1 colour over the mask sum + eikonal_weight * eikonal + mask_weight * BCE of
    acc against the mask (masks thresholded at 0.5 when mask_weight > 0)."""
    if mask is None or mask_weight <= 0.0:
        mask = torch.ones_like(target_rgb[:, 0])
    else:
        mask = (mask > 0.5).to(target_rgb.dtype)
    mask_sum = mask.sum() + 1e-5
    diff = (out["rgb"] - target_rgb) * mask[:, None]
    color_loss = diff.abs().sum() / mask_sum
    loss = color_loss + eikonal_weight * out["eikonal"]
    if mask_weight > 0.0:
        acc = out["acc"].clip(1e-3, 1.0 - 1e-3)
        loss = loss + mask_weight * F.binary_cross_entropy(acc, mask)
    mse = (diff ** 2).sum() / (mask_sum * 3.0)
    return loss, {"loss": loss.detach(), "psnr": -10.0 * torch.log10(mse.detach()),
                  "eikonal": out["eikonal"].detach(), "s_val": out["s_val"]}


def loss_for(config) -> LossFn:
    """The loss of the method a fastfield.config.TrainConfig trains, with its weights."""
    if config.model == "nerf":
        return nerf_loss
    if config.model == "neus":
        return partial(neus_loss, eikonal_weight=config.eikonal_weight,
                       mask_weight=config.mask_weight)
    raise ValueError(f"model must be 'nerf' or 'neus', got {config.model!r}")
