"""NeuS-format scenes (DTU, BlendedMVS preprocessing), loaded as NeuS's ``Dataset`` loads them."""
import re

import numpy as np
import torch

from .scene import Scene, Split
from ._io import (as_array, list_images, read_images, read_npz, require_dir, require_downscale,
                  require_file, require_key, shrink)
from .camera import Camera
from .paths import orbit_of_cameras

ORBIT_FRAMES = 60


def load_neus(path, cameras: str = "cameras_sphere.npz", use_masks: bool = True,
              holdout: int = 8, downscale: int = 1) -> Scene:
    """Load ``image/*.png``, ``mask/*.png`` (each sorted by name) and the camera file.

    Camera i is P = (world_mat_i @ scale_mat_i)[:3, :4], which projects the normalised frame
    (object inside the unit sphere) to pixels; it is decomposed (RQ) into intrinsics and an
    OpenCV camera-to-world pose, so the cameras live in the normalised frame and
    ``Scene.scale_mat`` (= scale_mat_0) maps results (meshes) back to world coordinates.
    Integer pixel indices are pixel centres (generate rays with pixel_offset 0).

    Images are RGB (NeuS reads BGR with OpenCV and divides by 256; the trainer scales uint8).
    Masks are the first channel / 255 (NeuS divides by 256), kept soft.

    Args:
        cameras: "cameras_sphere.npz" or "cameras_large.npz".
        use_masks: read ``mask/`` (one mask per image); False gives ``masks = None``.
        holdout: val and test are every ``holdout``-th image. They stay in train too, as
            NeuS validates on its training views.
        downscale: shrink images and masks by this integer factor (``_io.shrink``: crop to a
            multiple, average blocks); intrinsics follow x' = (x + 0.5) / f - 0.5, the
            pixel-centre mapping (fx, fy / f; cx' = (cx + 0.5) / f - 0.5).
    Returns:
        Scene with bounds "sphere", near = far = 0, no background, and a 60-frame orbit around
        the sphere centre at the cameras' mean distance and elevation as ``render_path``.
    """
    path = require_dir(path, "a NeuS scene with image/, mask/ and a cameras .npz")
    if holdout < 1:
        raise ValueError(f"holdout must be >= 1, got {holdout!r}")
    factor = require_downscale(downscale)
    camera_path = require_file(path / cameras, "the NeuS cameras (world_mat_i, scale_mat_i)")
    image_files = list_images(path / "image", "the NeuS images image/*.png")
    full_hw = None
    images = []
    for image in read_images(image_files, "rgb"):
        full_hw = full_hw or image.shape[:2]
        images.append(shrink(image, factor, image_files[0]))
    images = np.stack(images)
    n_images, height, width = images.shape[:3]

    arrays = read_npz(camera_path)
    n_cameras = sum(re.fullmatch(r"world_mat_\d+", key) is not None for key in arrays)

    def matrix(key):
        return as_array(require_key(arrays, key, str(camera_path)), (4, 4),
                        f"{camera_path}: {key!r}")

    projections = [(matrix(f"world_mat_{i}") @ matrix(f"scale_mat_{i}"))[:3, :4]
                   for i in range(n_images)]
    if n_cameras != n_images:
        raise ValueError(f"{camera_path}: {n_cameras} cameras (world_mat_i) but {n_images} "
                         f"images in {path / 'image'}")
    intrinsics, c2w = [], []
    for i, projection in enumerate(projections):
        K, pose = decompose_projection(projection, f"{camera_path}: camera {i}")
        intrinsics.append((K[0, 0] / factor, K[1, 1] / factor, (K[0, 2] + 0.5) / factor - 0.5,
                           (K[1, 2] + 0.5) / factor - 0.5))
        c2w.append(pose)
    cameras_all = Camera.from_numpy(np.stack(c2w), np.array(intrinsics), height, width,
                                    "opencv")

    masks = None
    if use_masks:
        mask_files = list_images(path / "mask", "one mask per image (or use_masks=False)")
        if len(mask_files) != n_images:
            raise ValueError(f"{path / 'mask'}: {len(mask_files)} masks but {n_images} images "
                             f"in {path / 'image'}")
        masks = np.stack([shrink(mask[..., 0].astype(np.float32) / 255.0, factor) for mask in
                          read_images(mask_files, "first", full_hw, str(image_files[0]))])
        masks = torch.from_numpy(masks)

    train = Split(torch.from_numpy(images), cameras_all, masks, [f.name for f in image_files])
    held_out = train[::holdout]
    return Scene(name=path.name, kind="neus",
                 splits={"train": train, "val": held_out, "test": held_out},
                 near=0.0, far=0.0, bounds="sphere", background=None, ndc=None,
                 scale_mat=torch.as_tensor(matrix("scale_mat_0"), dtype=torch.float32),
                 render_path=orbit_of_cameras(np.stack(c2w), "opencv", ORBIT_FRAMES,
                                              intrinsics[0], height, width))


def decompose_projection(projection: np.ndarray, where: str = "projection"):
    """Split P = K [R | t] into intrinsics and an OpenCV camera-to-world pose (RQ, no OpenCV).

    P and -P project alike; P is negated when det(P[:, :3]) < 0 so that, with the diagonal of
    K made positive, R is a proper rotation (det +1).

    Args:
        projection: [3, 4] world -> pixel projection.
    Returns:
        (K [3, 3] upper triangular with K[2, 2] = 1 and a positive diagonal (K[0, 1] is the skew),
        c2w [3, 4] = [R^T | camera centre]), float64.
    """
    projection = as_array(projection, (3, 4), where)
    if np.linalg.det(projection[:, :3]) < 0:
        projection = -projection
    rotation_part = projection[:, :3]
    if abs(np.linalg.det(rotation_part)) < 1e-12 * np.abs(rotation_part).max() ** 3:
        raise ValueError(f"{where}: singular projection matrix")
    # RQ from QR: with J the row reversal, (J M)^T = Q U gives M = (J U^T J)(J Q^T).
    q, u = np.linalg.qr(rotation_part[::-1].T)
    K = u.T[::-1, ::-1]
    R = q.T[::-1]
    signs = np.sign(np.diag(K))
    K, R = K * signs, signs[:, None] * R
    center = -np.linalg.solve(rotation_part, projection[:, 3])
    return K / K[2, 2], np.concatenate([R.T, center[:, None]], axis=1)
