"""Frames of a video for structure from motion: spread over the whole video, the sharpest of
each stretch kept.

The video is decoded once through imageio's ffmpeg (the imageio-ffmpeg package, in fastfield's
``[full]`` extra). Its frames are cut into ``n`` consecutive stretches of (almost) equal length;
of each stretch only the frame with the largest variance of the Laplacian (the usual focus
measure: motion blur and defocus flatten the second derivative) is kept, so blurry frames lose
to their sharper close neighbours.
"""
import sys
from pathlib import Path
from typing import List

import imageio.v3 as iio
import numpy as np
from tqdm.auto import tqdm

# Sharpness is measured on a grey copy at most this many pixels wide (strided): enough to rank
# neighbouring frames, cheap for 4K video.
SHARPNESS_WIDTH = 640


def sharpness(frame: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of the frame's grey levels (higher is sharper).

    Args:
        frame: [H, W, 3] uint8 RGB (or [H, W] grey).
    """
    grey = frame.astype(np.float32)
    if grey.ndim == 3:
        grey = grey @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    step = max(1, grey.shape[1] // SHARPNESS_WIDTH)
    grey = grey[::step, ::step]
    if min(grey.shape) < 3:
        return 0.0
    laplacian = (grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1]
                 - 4.0 * grey[1:-1, 1:-1])
    return float(laplacian.var())


def _ffmpeg():
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ImportError("reading a video needs imageio-ffmpeg: pip install imageio-ffmpeg "
                          "(it comes with pip install -e \".[full]\")") from None
    return imageio_ffmpeg


def _ffmpeg_reason(error: BaseException) -> str:
    """The line of an ffmpeg failure that says what is wrong (its last non-empty line)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("===", "ffmpeg version",
                                                            "built with", "configuration:",
                                                            "lib"))]
    return (useful or lines or [type(error).__name__])[-1]


def count_frames(video: Path) -> int:
    """The number of frames ffmpeg decodes from ``video``; ValueError when it cannot read it."""
    try:
        n_frames, _ = _ffmpeg().count_frames_and_secs(str(video))
    except (RuntimeError, OSError) as error:
        raise _unreadable(video, error) from None
    if n_frames < 1:
        raise ValueError(f"{video}: ffmpeg found no frames in this video")
    return int(n_frames)


def extract_frames(video, folder, n_frames: int, progress: bool = True) -> List[str]:
    """Write the sharpest frame of each of ``n_frames`` equal stretches of ``video`` to
    ``folder/frame_NNNNN.png`` (NNNNN: the frame's index in the video).

    Args:
        n_frames: frames wanted (all of them when the video has fewer).
    Returns:
        The written file names, in video order.
    """
    video, folder = Path(video), Path(folder)
    total = count_frames(video)
    n_frames = min(n_frames, total)
    # Stretch s holds the frames [bounds[s], bounds[s + 1]).
    bounds = np.linspace(0, total, n_frames + 1).round().astype(int)
    reader = _ffmpeg().read_frames(str(video))
    try:
        width, height = _metadata(reader, video)["size"]
        written, best, best_score, stretch = [], None, -1.0, 0
        bar = tqdm(total=total, desc="frames", unit="frame", disable=not progress,
                   file=sys.stderr, leave=False)
        for index, raw in enumerate(_frames_of(reader, video)):
            frame = np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
            while stretch < n_frames - 1 and index >= bounds[stretch + 1]:
                if best is not None:
                    written.append(_write(folder, best))
                best, best_score, stretch = None, -1.0, stretch + 1
            score = sharpness(frame)
            if score > best_score:
                best, best_score = (index, frame.copy()), score
            bar.update(1)
        bar.close()
    finally:
        reader.close()
    if best is not None:
        written.append(_write(folder, best))
    return written


def _unreadable(video: Path, error: BaseException) -> ValueError:
    return ValueError(f"{video}: ffmpeg cannot read this video ({_ffmpeg_reason(error)})")


def _metadata(reader, video: Path) -> dict:
    """The metadata ffmpeg's reader yields first; its failure as a one-line ValueError."""
    try:
        return next(reader)
    except (RuntimeError, OSError, StopIteration) as error:
        raise _unreadable(video, error) from None


def _frames_of(reader, video: Path):
    """The raw frames of the reader; decoding failures as one-line ValueErrors (the errors of
    writing the kept frames stay what they are)."""
    try:
        yield from reader
    except (RuntimeError, OSError) as error:
        raise _unreadable(video, error) from None


def _write(folder: Path, best) -> str:
    index, frame = best
    name = f"frame_{index:05d}.png"
    iio.imwrite(folder / name, frame)
    return name
