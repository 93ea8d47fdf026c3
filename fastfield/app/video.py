"""Videos along a camera path (the 8-bit views of the frames are fastfield.train.images').

MP4 (H.264) goes through imageio's ffmpeg plugin when imageio-ffmpeg and its ffmpeg binary
are installed; otherwise ``render_video`` writes an animated GIF (Pillow) and says so in one
line on stderr.
"""
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, Union

import imageio.v2 as imageio_v2
import imageio.v3 as iio
import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from ..core.atomic import atomic_path
from ..data.camera import Camera
from ..render import render_image
from ..render.api import Bound
from ..render.backend import DEFAULT_BACKEND
from ..train.images import to_uint8

VIDEO_SUFFIXES = (".mp4", ".gif")


def mp4_encoder_available() -> bool:
    """True when imageio can write MP4: imageio-ffmpeg is installed and finds ffmpeg."""
    try:
        import imageio_ffmpeg
        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return False
    return True


def _even_size(frame: np.ndarray) -> np.ndarray:
    """H.264 in yuv420p needs even sizes: repeat the last row / column where one is odd
    (no resampling, unlike imageio's own resize to a macro-block multiple)."""
    return np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)), mode="edge")


@contextmanager
def _frame_writer(path: Path, fps: float) -> Iterator[Callable[[np.ndarray], None]]:
    """A function appending one [H, W, 3] uint8 frame to the video at ``path``: streamed to
    ffmpeg for .mp4; Pillow keeps a GIF's frames and writes them when the block ends."""
    if path.suffix.lower() == ".mp4":
        writer = imageio_v2.get_writer(path, format="FFMPEG", mode="I", fps=fps,
                                       codec="libx264", quality=8, macro_block_size=1,
                                       ffmpeg_log_level="error")
        try:
            yield lambda frame: writer.append_data(_even_size(frame))
        finally:
            writer.close()
    else:
        # GIF frame durations are whole hundredths of a second (fps 30 plays at ~33).
        with iio.imopen(path, "w", plugin="pillow", extension=".gif") as file:
            yield lambda frame: file.write(frame, duration=1000.0 / fps, loop=0)


def render_video(model: nn.Module, camera_path: Camera, out_path, fps: float = 30,
                 near: Bound = None, far: Bound = None, ndc: Optional[dict] = None,
                 background: Union[None, Tensor, Sequence[float]] = None,
                 backend: str = DEFAULT_BACKEND, device: Optional[torch.device] = None,
                 progress: bool = True) -> Path:
    """Render every camera of ``camera_path`` with ``fastfield.render_image`` into a video.

    Args:
        model: a fastfield NeRF or NeuS model.
        camera_path: one camera per frame (``Scene.render_path``, ``orbit_path``,
            ``spiral_path``).
        out_path: a ``.mp4`` or ``.gif`` file. MP4 is H.264 through imageio-ffmpeg; without it
            the video is written as a GIF beside ``out_path`` (suffix .gif) and a one-line
            notice goes to stderr. Odd image sizes gain one repeated row / column in MP4.
            The file appears complete or not at all (written to a temporary file, renamed).
        fps: frames per second.
        near, far, ndc, background: as ``render_image`` (``Scene.near``/``far``/``ndc``/
            ``background``; None near/far bound NeuS rays by the unit sphere); background
            may be a tensor [3] or three floats.
        backend, device: as ``render_image``.
        progress: show a progress bar (tqdm, stderr).

    Returns:
        The path written: ``out_path``, or its .gif sibling after the fallback.
    """
    out_path = Path(out_path)
    if out_path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"out_path must end in {' or '.join(VIDEO_SUFFIXES)}, got {out_path}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    if len(camera_path) == 0:
        raise ValueError("camera_path has no cameras: nothing to render")
    if out_path.suffix.lower() == ".mp4" and not mp4_encoder_available():
        out_path = out_path.with_suffix(".gif")
        print(f"render_video: no MP4 encoder (pip install imageio-ffmpeg); writing {out_path}",
              file=sys.stderr)
    device = device or next(model.parameters()).device
    if background is not None:
        background = torch.as_tensor(background, dtype=torch.float32, device=device)
    with atomic_path(out_path) as temporary, _frame_writer(temporary, fps) as write_frame:
        for index in tqdm(range(len(camera_path)), desc=f"rendering {out_path.name}",
                          unit="frame", disable=not progress, file=sys.stderr):
            image = render_image(model, camera_path, index, near=near, far=far, ndc=ndc,
                                 background=background, backend=backend, device=device)
            write_frame(to_uint8(image["rgb"]))
    return out_path
