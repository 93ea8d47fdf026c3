"""Videos along a scene's render path (an orbit for 360-degree scenes, a spiral for LLFF)."""
import importlib.util
import sys
from pathlib import Path
from typing import Optional, Tuple

import imageio.v3 as iio
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..data import Scene
from ..render import render_image
from .evaluate import to_uint8
from .precision import precision_context
from .scenes import render_settings


def mp4_available() -> Tuple[bool, str]:
    """(True, "") when imageio can encode MP4 (imageio-ffmpeg and its ffmpeg binary), else
    (False, why)."""
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        return False, "imageio-ffmpeg is not installed (pip install imageio-ffmpeg)"
    try:
        import imageio_ffmpeg
        imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as error:  # RuntimeError when no ffmpeg binary is found
        return False, f"imageio-ffmpeg has no ffmpeg binary ({error})"
    return True, ""


def render_path_frames(model: nn.Module, scene: Scene, n_frames: Optional[int], *,
                       backend: str, precision: str, device: torch.device,
                       progress: bool = True) -> np.ndarray:
    """uint8 [n_frames, H, W, 3] renders of ``n_frames`` cameras evenly spaced along
    ``scene.render_path`` (all of them when None)."""
    path = scene.render_path
    total = len(path)
    if n_frames is None:
        n_frames = total
    if not 1 <= n_frames <= total:
        raise ValueError(f"frames must be between 1 and {total} (the frames of this scene's "
                         f"render path), got {n_frames}")
    indices = torch.linspace(0, total - 1, n_frames).round().long().tolist()
    settings = render_settings(scene, device)
    frames = []
    for index in tqdm(indices, desc="render", disable=not progress, file=sys.stderr,
                      leave=False):
        with precision_context(precision, device):
            out = render_image(model, path, index, backend=backend, device=device, **settings)
        frames.append(to_uint8(out["rgb"].float()))
    return np.stack(frames)


def write_video(frames: np.ndarray, path, fps: int = 30) -> Tuple[Path, str]:
    """Write uint8 [n, H, W, 3] frames as MP4 (H.264), or as a GIF beside ``path`` when no MP4
    encoder is installed. Returns (the path written, a notice or '')."""
    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"{path}: the video file must end in .mp4 or .gif")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        iio.imwrite(path, frames, duration=1000 / fps, loop=0)
        return path, ""
    available, why = mp4_available()
    if not available:
        gif = path.with_suffix(".gif")
        iio.imwrite(gif, frames, duration=1000 / fps, loop=0)
        return gif, f"no MP4 encoder: {why}; wrote a GIF instead"
    # H.264 in yuv420p needs even sizes: repeat the last row / column when odd.
    height, width = frames.shape[1:3]
    frames = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    iio.imwrite(path, frames, fps=fps, codec="libx264", macro_block_size=1)
    return path, ""
