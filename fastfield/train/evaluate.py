"""Evaluation of a trained model on a scene split: PSNR / SSIM per view and their means, plus
the rendered images, depth maps (and NeuS normal maps) as PNGs."""
import json
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import imageio.v3 as iio
import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..data.scene import Scene
from ..render import render_image
from ..render.backend import DEFAULT_BACKEND
from .images import view_panels
from .metrics import psnr, ssim
from .precision import DEFAULT_PRECISION, precision_context
from .scenes import render_settings, split_note


def render_view(model: nn.Module, scene: Scene, split: str, index: int, *, backend: str,
                precision: str, device: torch.device, chunk: Optional[int] = None
                ) -> Dict[str, Tensor]:
    """Render view ``index`` of ``split`` deterministically: [H, W, C] float32 tensors
    (rgb [H, W, 3], depth and acc [H, W], NeuS also normal [H, W, 3])."""
    cameras = scene.split(split).cameras
    with precision_context(precision, device):
        out = render_image(model, cameras, index, backend=backend, device=device, chunk=chunk,
                           **render_settings(scene, device))
    return {key: value.float() for key, value in out.items()}


def evaluate(model: nn.Module, scene: Scene, split: str = "test", out_dir=None, *,
             backend: str = DEFAULT_BACKEND, precision: str = DEFAULT_PRECISION,
             device: Optional[torch.device] = None, chunk: Optional[int] = None,
             progress: bool = True, info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Render every view of ``split`` and compare it with the image.

    Args:
        out_dir: when given, ``metrics.json`` and, per view, ``<name>_rgb.png``,
            ``<name>_depth.png`` (and ``<name>_normal.png`` for NeuS) are written there.
        info: extra fields for the result (e.g. the run folder and its step).
    Returns:
        {"scene", "split", "n_views", "note" (what the views are: a subset, held in or out),
        "mean_psnr", "mean_ssim", "views": [{"index", "name", "psnr", "ssim"}], "backend",
        "precision"}. PSNR is computed per view, then averaged. Unit-sphere (NeuS) scenes with
        masks also get "psnr_masked" per view (over the pixels with mask > 0.5, as NeuS reports its
        PSNR when training with masks) and "mean_psnr_masked".
    """
    device = device or next(model.parameters()).device
    views = scene.split(split)
    out_dir = Path(out_dir) if out_dir is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    masked = scene.bounds == "sphere" and views.masks is not None  # NeuS scenes with masks
    records = []
    for index in tqdm(range(len(views)), desc=f"eval {split}", disable=not progress,
                      file=sys.stderr, leave=False):
        out = render_view(model, scene, split, index, backend=backend, precision=precision,
                          device=device, chunk=chunk)
        target = views.images[index].float() / 255.0
        rendered = out["rgb"].clamp(0, 1).cpu()
        name = Path(views.names[index]).stem
        record = {"index": index, "name": name, "psnr": psnr(rendered, target),
                  "ssim": ssim(rendered, target)}
        if masked:  # NeuS's PSNR with masks: over the object's pixels only
            inside = views.masks[index] > 0.5
            record["psnr_masked"] = psnr(rendered[inside], target[inside])
        records.append(record)
        if out_dir is not None:
            for kind, image in view_panels(out, views.cameras.c2w[index]).items():
                iio.imwrite(out_dir / f"{name}_{kind}.png", image)
    result = {"scene": scene.name, "split": split, "n_views": len(views),
              "note": split_note(scene, split),
              "mean_psnr": float(np.mean([r["psnr"] for r in records])),
              "mean_ssim": float(np.mean([r["ssim"] for r in records])),
              **({"mean_psnr_masked": float(np.mean([r["psnr_masked"] for r in records]))}
                 if masked else {}),
              "views": records, "backend": backend, "precision": precision, **(info or {})}
    if out_dir is not None:
        (out_dir / "metrics.json").write_text(json.dumps(result, indent=2))
    return result

