"""File reading and validation shared by the loaders.

Every problem with a scene's files becomes a ``ValueError`` whose message starts with the
file (or folder) and says what was expected, instead of a KeyError or a traceback from
numpy/imageio.
"""
import json
from pathlib import Path
from typing import Iterator, Mapping, Optional, Sequence, Tuple

import imageio.v3 as iio
import numpy as np

from ..core.checks import int_at_least

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a folder, else ValueError naming it and what it should hold."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: folder not found (expected {what})")
    return path


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else ValueError naming it and what it should be."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found (expected {what})")
    return path


def require_key(container: Mapping, key: str, where: str):
    """``container[key]``, or ValueError "<where> has no '<key>'" (JSON objects, npz files)."""
    if not isinstance(container, Mapping) or key not in container:
        raise ValueError(f"{where} has no {key!r}")
    return container[key]


def as_array(value, shape: Tuple[int, ...], where: str) -> np.ndarray:
    """``value`` as a finite float64 array of ``shape`` (() for a number), else ValueError."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or array.shape != shape or not np.isfinite(array).all():
        expected = "number" if shape == () else "x".join(map(str, shape)) + " array"
        got = "a non-numeric value" if array is None else (
            f"shape {list(array.shape)}" if array.shape != shape else "non-finite values")
        raise ValueError(f"{where} must be a finite {expected}, got {got}")
    return array


def read_json(path: Path) -> dict:
    """A JSON object from ``path``; ValueError for a missing file or bad syntax."""
    require_file(path, "a JSON file")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: malformed JSON ({error})") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object at the top level, "
                         f"got {type(data).__name__}")
    return data


def read_npz(path: Path) -> dict:
    """All arrays of an ``.npz`` file, read eagerly so that later errors cannot come from numpy."""
    require_file(path, "an .npz camera file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except Exception as error:  # numpy raises zipfile, pickle, OSError and ValueError variants
        raise ValueError(f"{path}: not a readable .npz file ({error})") from None


def list_images(folder: Path, what: str) -> list:
    """Image files (png/jpg) of ``folder`` sorted by name; ValueError when none."""
    require_dir(folder, what)
    paths = sorted(p for p in Path(folder).iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise ValueError(f"{folder}: no .png/.jpg images found (expected {what})")
    return paths


def read_image(path: Path, channels: str) -> np.ndarray:
    """An 8-bit image as uint8 [H, W, C].

    ``channels``: "rgb" (C = 3; grey expanded, alpha dropped), "rgba" (C = 4; opaque alpha added
    when the file has none) or "first" (C = 1, the first channel, for masks).
    """
    path = Path(path)
    require_file(path, "an image")
    try:
        image = iio.imread(path)
    except Exception as error:  # imageio/pillow raise many types for corrupt files
        raise ValueError(f"{path}: cannot read image ({type(error).__name__}: {error})") from None
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"{path}: expected an 8-bit image [H, W] or [H, W, C], "
                         f"got {image.dtype} {list(image.shape)}")
    if image.ndim == 2:
        image = image[:, :, None]
    if channels == "first":
        return image[:, :, :1]
    colour = image[:, :, :3] if image.shape[2] >= 3 else np.repeat(image[:, :, :1], 3, axis=2)
    if channels == "rgb":
        return colour
    if channels == "rgba":
        if image.shape[2] in (2, 4):  # grey + alpha or RGBA: alpha is the last channel
            alpha = image[:, :, -1:]
        else:
            alpha = np.full_like(image[:, :, :1], 255)
        return np.concatenate([colour, alpha], axis=2)
    raise ValueError(f"channels must be 'rgb', 'rgba' or 'first', got {channels!r}")


def read_images(paths: Sequence[Path], channels: str,
                expected_hw: Optional[Tuple[int, int]] = None,
                expected_from: Optional[str] = None) -> Iterator[np.ndarray]:
    """Yield ``read_image(path, channels)`` for each path, checking they all have one size.

    The size is ``expected_hw`` (described by ``expected_from`` in errors) or that of the first
    image. Yielding lets a loader process and drop each image before reading the next.
    """
    for path in paths:
        image = read_image(path, channels)
        if expected_hw is None:
            expected_hw, expected_from = image.shape[:2], Path(path).name
        if image.shape[:2] != tuple(expected_hw):
            raise ValueError(f"{path}: image is {image.shape[0]}x{image.shape[1]} (HxW), expected "
                             f"{expected_hw[0]}x{expected_hw[1]} like {expected_from}")
        yield image


def require_downscale(value, name: str = "downscale") -> int:
    """``value`` as an integer shrink factor >= 1 (core.checks.int_at_least's errors)."""
    return int_at_least(None, name, value, 1)


def shrink(image: np.ndarray, factor: int, where="image") -> np.ndarray:
    """[H, W, ...] image shrunk by an integer ``factor``: the last H % factor rows and
    W % factor columns are cropped, then each factor x factor block is averaged (uint8 input is
    rounded back to uint8; float stays float32).

    Output pixel i covers input pixels [i f, (i + 1) f), so a continuous image coordinate maps
    as x' = x / f (pixel corners at integers: nerfstudio, COLMAP) or, with integer pixel
    indices at pixel centres (NeuS), x' = (x + 0.5) / f - 0.5.
    """
    if factor == 1:
        return image
    height, width = image.shape[0] // factor, image.shape[1] // factor
    if height == 0 or width == 0:
        raise ValueError(f"{where}: a {image.shape[0]}x{image.shape[1]} image cannot be shrunk "
                         f"by a factor of {factor} (downscale)")
    blocks = image[:height * factor, :width * factor].astype(np.float32).reshape(
        height, factor, width, factor, *image.shape[2:])
    mean = blocks.mean(axis=(1, 3))
    return np.round(mean).clip(0, 255).astype(np.uint8) if image.dtype == np.uint8 else mean
