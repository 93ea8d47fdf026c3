"""Videos along a camera path, and the 8-bit views of rendered outputs (colour, depth, NeuS
normals) that videos and evaluation images share.

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

from .core.atomic import atomic_path
from .data._io import to_uint8 as _tensor_to_uint8
from .data.camera import Camera
from .render import Bound, render_image

ArrayLike = Union[np.ndarray, Tensor]
VIDEO_SUFFIXES = (".mp4", ".gif")


def to_uint8(image: ArrayLike) -> np.ndarray:
    """Values in [0, 1] (any shape, tensor or array) -> uint8 numpy, clamped and rounded."""
    return _tensor_to_uint8(torch.as_tensor(image).detach().cpu()).numpy()


def depth_to_uint8(depth: ArrayLike, acc: ArrayLike, near: Optional[float] = None,
                   far: Optional[float] = None) -> np.ndarray:
    """A rendered depth map as a grey image: near is white, far dark, empty space black.

    ``depth`` is the expected termination depth sum(w t), which acc < 1 pulls towards 0, so
    it is divided by acc first (the depth of what the ray hit). Depths map linearly from
    [near, far] to [1, 0]; without a range the 1st and 99th percentiles over the pixels with
    acc > 0.5 are used (give near/far for a video, so frames share one scale). The grey value
    is scaled by acc, so partly covered pixels fade to black.

    Args:
        depth, acc: [H, W] (tensors or arrays).
    Returns:
        [H, W, 3] uint8.
    """
    depth = torch.as_tensor(depth).detach().cpu().double().numpy()
    acc = torch.as_tensor(acc).detach().cpu().double().numpy().clip(0.0, 1.0)
    if depth.shape != acc.shape or depth.ndim != 2:
        raise ValueError(f"depth and acc must both be [H, W], got {list(depth.shape)} and "
                         f"{list(acc.shape)}")
    hit_depth = depth / np.maximum(acc, 1e-6)
    if near is None or far is None:
        covered = hit_depth[acc > 0.5]
        low, high = np.percentile(covered, [1.0, 99.0]) if covered.size else (0.0, 1.0)
        near = low if near is None else near
        far = high if far is None else far
    closeness = ((far - hit_depth) / max(far - near, 1e-12)).clip(0.0, 1.0) * acc
    return to_uint8(np.repeat(closeness[..., None], 3, axis=-1))


def normal_to_uint8(normal: ArrayLike, c2w: Optional[ArrayLike] = None) -> np.ndarray:
    """NeuS normals as colours: (n + 1) / 2 per channel, as NeuS's validation images show them.

    With ``c2w`` ([3, 3] or [3, 4] camera-to-world) the world normals are rotated into that
    camera's frame first (NeuS does so); the accumulated normal of empty space is 0, i.e.
    mid grey.

    Args:
        normal: [H, W, 3] (``render_image(...)["normal"]`` of a NeuS model).
    Returns:
        [H, W, 3] uint8.
    """
    normal = torch.as_tensor(normal).detach().cpu().double()
    if normal.dim() != 3 or normal.shape[-1] != 3:
        raise ValueError(f"normal must be [H, W, 3], got {list(normal.shape)}")
    if c2w is not None:
        rotation = torch.as_tensor(c2w).detach().cpu().double()[:3, :3]
        normal = normal @ rotation  # rows: R^T n, world -> camera
    return to_uint8(normal * 0.5 + 0.5)


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
                 backend: str = "kernels", device: Optional[torch.device] = None,
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
