"""NeRF-synthetic ("Blender") scenes, loaded as nerf-pytorch's ``load_blender`` loads them."""
import math
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from ..core.images import to_uint8
from ._io import IMAGE_EXTENSIONS, as_array, read_images, read_json, require_dir, require_key
from .camera import Camera
from .paths import orbit_path
from .scene import Scene, Split

NEAR, FAR = 2.0, 6.0
# nerf-pytorch's render_poses: pose_spherical(azimuth, -30, 4) for 40 azimuths.
ORBIT_RADIUS, ORBIT_ELEVATION_DEG, ORBIT_FRAMES = 4.0, 30.0, 40


def load_blender(path, half_res: bool = False, white_background: bool = True,
                 splits: Sequence[str] = ("train", "val", "test"), test_skip: int = 1,
                 downscale: int = 1) -> Scene:
    """Load ``path/transforms_{split}.json`` and the RGBA PNGs they list.

    focal = 0.5 W / tan(0.5 camera_angle_x), principal point (W/2, H/2), OpenGL cameras.
    ``half_res`` (factor 2) and ``downscale`` (an integer factor, for quick tests) shrink the
    RGBA by pixel-area averaging (cv2.INTER_AREA) before compositing rgb * a + bg * (1 - a), and
    divide H, W (floored) and focal by the factor. Masks are the (resized) alpha.

    Args:
        test_skip: keep every ``test_skip``-th val/test frame (nerf-pytorch ``testskip``). The
            shared lego copy is already thinned: use 1 there.
    Returns:
        Scene with near/far 2/6 and nerf-pytorch's 40-view orbit as ``render_path``.
    """
    path = require_dir(path, "a Blender scene with transforms_{train,val,test}.json")
    if isinstance(downscale, bool) or not isinstance(downscale, int) or downscale < 1:
        raise ValueError(f"downscale must be an integer >= 1, got {downscale!r}")
    if not splits:
        raise ValueError("splits must name at least one of 'train', 'val', 'test'")
    factor = downscale * (2 if half_res else 1)
    background = (1.0, 1.0, 1.0) if white_background else (0.0, 0.0, 0.0)
    loaded = {}
    raw_hw, raw_from = None, None  # every image of every split must have the first one's size
    for split in splits:
        json_path = path / f"transforms_{split}.json"
        skip = 1 if split == "train" or test_skip == 0 else test_skip
        camera_angle_x, poses, files = _read_transforms(json_path, skip)
        images, masks = [], []
        for rgba in read_images(files, "rgba", raw_hw, raw_from):
            if raw_hw is None:
                raw_hw, raw_from = rgba.shape[:2], str(files[0])
                if min(raw_hw) < factor:
                    raise ValueError(f"{files[0]}: a {raw_hw[0]}x{raw_hw[1]} image cannot be "
                                     f"shrunk by a factor of {factor}")
            image, mask = _composite(rgba, factor, background)
            images.append(image)
            masks.append(mask)
        height, width = images[0].shape[:2]
        focal = 0.5 * raw_hw[1] / math.tan(0.5 * camera_angle_x) / factor
        cameras = Camera.from_numpy(poses, (focal, focal, 0.5 * width, 0.5 * height),
                                    height, width, "opengl")
        loaded[split] = Split(torch.stack(images), cameras, torch.stack(masks),
                              [f.name for f in files])
    first = next(iter(loaded.values())).cameras
    render_path = orbit_path((0.0, 0.0, 0.0), ORBIT_RADIUS, ORBIT_ELEVATION_DEG, ORBIT_FRAMES,
                             first.intrinsics[0].tolist(), first.height, first.width, "opengl")
    return Scene(name=path.name, kind="blender", splits=loaded, near=NEAR, far=FAR,
                 bounds="fixed", background=background, ndc=None, scale_mat=None,
                 render_path=render_path)


def _read_transforms(json_path: Path, skip: int):
    """(camera_angle_x, poses [n, 4, 4] float64, image paths) of one transforms json."""
    meta = read_json(json_path)
    camera_angle_x = float(as_array(require_key(meta, "camera_angle_x", str(json_path)), (),
                                    f"{json_path}: 'camera_angle_x'"))
    frames = require_key(meta, "frames", str(json_path))
    if not isinstance(frames, list) or not frames:
        raise ValueError(f"{json_path}: 'frames' must be a non-empty list")
    poses, files = [], []
    for index in range(0, len(frames), skip):
        where = f"{json_path}: frame {index}"
        file_path = require_key(frames[index], "file_path", where)
        if not isinstance(file_path, str):
            raise ValueError(f"{where}: 'file_path' must be a string, got {file_path!r}")
        matrix = require_key(frames[index], "transform_matrix", where)
        poses.append(as_array(matrix, (4, 4), f"{where}: 'transform_matrix'"))
        # nerf-pytorch appends ".png" to file_path; accept paths that already name the file.
        suffix = "" if Path(file_path).suffix.lower() in IMAGE_EXTENSIONS else ".png"
        files.append(json_path.parent / (file_path + suffix))
    return camera_angle_x, poses, files


def _composite(rgba, factor: int, background) -> tuple:
    """uint8 RGBA [H, W, 4] -> (uint8 RGB [H/f, W/f, 3] over ``background``, alpha float32)."""
    rgba = torch.from_numpy(rgba).to(torch.float32) / 255.0
    if factor > 1:
        rgba = area_resize(rgba, rgba.shape[0] // factor, rgba.shape[1] // factor)
    alpha = rgba[..., 3:]
    rgb = rgba[..., :3] * alpha + torch.tensor(background) * (1.0 - alpha)
    return to_uint8(rgb), alpha[..., 0].contiguous()


def area_resize(image: Tensor, height: int, width: int) -> Tensor:
    """Shrink [H, W, C] float to [height, width, C] by averaging the exact pixel-area overlap of
    each output pixel (cv2.INTER_AREA; a plain box mean when the factor is an integer)."""
    in_h, in_w = image.shape[:2]
    if in_h % height == 0 and in_w % width == 0:  # integer factors: the same, as a box mean
        return image.reshape(height, in_h // height, width, in_w // width, -1).mean((1, 3))
    rows = _area_weights(image.shape[0], height, image.dtype)   # [height, H]
    cols = _area_weights(image.shape[1], width, image.dtype)    # [width, W]
    shrunk_rows = (rows @ image.reshape(image.shape[0], -1)).reshape(height, image.shape[1], -1)
    return cols @ shrunk_rows


def _area_weights(n_in: int, n_out: int, dtype) -> Tensor:
    """[n_out, n_in]: overlap of input pixel j with output pixel i's footprint, rows sum to 1."""
    scale = n_in / n_out
    start = torch.arange(n_out, dtype=torch.float64)[:, None] * scale
    pixel = torch.arange(n_in, dtype=torch.float64)[None, :]
    overlap = (torch.minimum(start + scale, pixel + 1) - torch.maximum(start, pixel)).clamp_min(0)
    return (overlap / scale).to(dtype)
