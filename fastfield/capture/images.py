"""The photos of a source folder, checked before any work: readable, one size, enough of them."""
import sys
from pathlib import Path
from typing import List, Tuple

from tqdm.auto import tqdm

from ..data._io import IMAGE_EXTENSIONS, read_image

MIN_IMAGES = 3  # structure from motion needs three registered views to be of any use


def check_photos(folder, progress: bool = True) -> Tuple[List[str], Tuple[int, int]]:
    """The image files (png/jpg, sorted by name) of ``folder`` and their common size.

    Every image is decoded once, so a corrupt or unreadable file is found before COLMAP runs.

    Returns:
        (file names, (height, width)).
    Raises:
        ValueError (one line, naming the file): no images, fewer than MIN_IMAGES, an image that
        cannot be read, or images of different sizes (one shared camera needs one size).
    """
    folder = Path(folder)
    names = sorted(p.name for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not names:
        raise ValueError(f"{folder}: no .png/.jpg images found")
    if len(names) < MIN_IMAGES:
        raise ValueError(f"{folder}: {len(names)} image{'s' * (len(names) > 1)} "
                         f"({', '.join(names)}); structure from motion needs at least "
                         f"{MIN_IMAGES} overlapping photos")
    size, first = None, None
    for name in tqdm(names, desc="checking photos", unit="image", disable=not progress,
                     file=sys.stderr, leave=False):
        shape = read_image(folder / name, "rgb").shape[:2]
        if size is None:
            size, first = shape, name
        elif shape != size:
            raise ValueError(f"{folder / name}: image is {shape[1]}x{shape[0]} (WxH) but "
                             f"{first} is {size[1]}x{size[0]}; the photos share one camera, so "
                             f"they must have one size")
    return names, size


def match_masks(folder, names: List[str], size: Tuple[int, int]) -> List[Path]:
    """The mask file of each photo in ``names``: the image of ``folder`` with the same stem, or,
    when the stems differ (NeuS's DTU names images 000000.png and masks 000.png), the i-th
    mask by name for the i-th photo. Every mask is read once and must have the photos' size.

    Raises:
        ValueError (one line): a missing folder, a count mismatch, an unreadable mask or one of
        another size.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: masks folder not found")
    masks = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    by_stem = {p.stem: p for p in masks}
    if all(Path(name).stem in by_stem for name in names):
        chosen = [by_stem[Path(name).stem] for name in names]
    elif len(masks) == len(names):
        chosen = masks
    else:
        raise ValueError(f"{folder}: {len(masks)} masks for {len(names)} photos, and not one "
                         f"named like each photo")
    for path in chosen:
        shape = read_image(path, "first").shape[:2]
        if shape != tuple(size):
            raise ValueError(f"{path}: mask is {shape[1]}x{shape[0]} (WxH), the photos "
                             f"{size[1]}x{size[0]}")
    return chosen
