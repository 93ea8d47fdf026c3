"""Image quality metrics as the NeRF and NeuS papers report them.

``psnr`` is per image (average per-image PSNRs over a test set, never pool the MSE).
``ssim`` is Wang et al.'s SSIM with an 11-pixel Gaussian window (sigma 1.5), K1 = 0.01,
K2 = 0.03, population covariances, data range 1, averaged over the channels: the same number as
``skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1, channel_axis=-1)``, computed with torch.
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5          # scipy/skimage's Gaussian truncation: radius int(3.5 * 1.5 + 0.5) = 5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def psnr(image: Tensor, target: Tensor) -> float:
    """Peak signal-to-noise ratio in dB of ``image`` against ``target`` (values in [0, 1], same
    shape). Identical images give inf."""
    mse = torch.mean((image.double() - target.double()) ** 2).item()
    return math.inf if mse == 0 else -10.0 * math.log10(mse)


def mean_colour_psnr(images: Tensor, masks: Optional[Tensor] = None) -> float:
    """The baseline a model must beat: the mean over views of the PSNR of predicting each view
    by its own mean colour. images: [n, H, W, 3] uint8; with masks [n, H, W], both the mean
    colour and the PSNR are taken over the pixels with mask > 0.5 (as ``evaluate``'s
    psnr_masked)."""
    values = []
    for index, image in enumerate(images.double() / 255.0):
        pixels = image.reshape(-1, 3)
        if masks is not None:
            pixels = pixels[masks[index].reshape(-1) > 0.5]
        values.append(psnr(pixels.mean(0).expand_as(pixels), pixels))
    return sum(values) / len(values)


def _gaussian_window(device) -> Tensor:
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    window = torch.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    return window / window.sum()


def ssim(image: Tensor, target: Tensor) -> float:
    """Mean SSIM of two [H, W, C] (or [H, W]) images with values in [0, 1].

    Local statistics are Gaussian-weighted means over 11 x 11 windows; like skimage, only
    windows that lie entirely inside the image are averaged (skimage filters the whole image
    and then crops the 5-pixel border, which is the same). Computed in float64.
    """
    if image.shape != target.shape:
        raise ValueError(f"ssim: images must have one shape, got {list(image.shape)} and "
                         f"{list(target.shape)}")
    if image.dim() == 2:
        image, target = image[..., None], target[..., None]
    if image.dim() != 3:
        raise ValueError(f"ssim: images must be [H, W] or [H, W, C], got {list(image.shape)}")
    window = _gaussian_window(image.device)
    if min(image.shape[:2]) < window.numel():
        raise ValueError(f"ssim: images must be at least {window.numel()} x {window.numel()} "
                         f"pixels, got {image.shape[0]} x {image.shape[1]}")
    # [C, 1, H, W]: each channel filtered on its own with the separable window.
    x = image.double().permute(2, 0, 1)[:, None]
    y = target.double().permute(2, 0, 1)[:, None]
    rows, cols = window.view(1, 1, -1, 1), window.view(1, 1, 1, -1)

    def local_mean(values: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(values, rows), cols)

    mean_x, mean_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mean_x ** 2
    var_y = local_mean(y * y) - mean_y ** 2
    cov_xy = local_mean(x * y) - mean_x * mean_y
    c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2  # data range 1
    ssim_map = ((2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)) \
        / ((mean_x ** 2 + mean_y ** 2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean().item()
