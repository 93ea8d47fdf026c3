"""The files of a processed capture: images at four resolutions, nerfstudio's transforms.json,
the sparse points as PLY and NeuS's cameras_sphere.npz, all in the scene frame
(``normalize.scene_similarity``)."""
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

import imageio.v3 as iio
import numpy as np
from tqdm.auto import tqdm

from ..core.atomic import atomic_path
from ..data._io import read_image, shrink
from ..data.paths import homogeneous
from .normalize import Similarity
from .sfm import SfmModel

DOWNSCALES = (2, 4, 8)  # images_2/, images_4/, images_8/ beside images/ (nerfstudio's layout)
JPEG_QUALITY = 95
PLY_NAME, SPHERE_NAME, TRANSFORMS_NAME = "sparse_pc.ply", "cameras_sphere.npz", "transforms.json"


def write_images(undistorted: Path, scene: Path, names: List[str], progress: bool = True):
    """Move the undistorted images into ``scene/images/`` and write ``images_{2,4,8}/``
    (``data._io.shrink``: crop to a multiple of the factor, average blocks), same names."""
    for folder in ["images"] + [f"images_{factor}" for factor in DOWNSCALES]:
        (scene / folder).mkdir(parents=True, exist_ok=True)
    for name in tqdm(names, desc="writing images", unit="image", disable=not progress,
                     file=sys.stderr, leave=False):
        target = scene / "images" / name
        (undistorted / name).replace(target)
        image = read_image(target, "rgb")
        for factor in DOWNSCALES:
            if min(image.shape[:2]) >= factor:
                _write_image(scene / f"images_{factor}" / name, shrink(image, factor))


def write_masks(scene: Path, masks, progress: bool = True) -> Dict[str, str]:
    """``masks/<stem>.png`` and ``masks_{2,4,8}/`` (nerfstudio's layout) from (image name,
    [H, W] uint8 mask) pairs; returns each image name's mask_path."""
    paths = {}
    for name, mask in tqdm(masks, desc="writing masks", unit="mask", disable=not progress,
                           file=sys.stderr, leave=False):
        relative = f"{Path(name).stem}.png"
        for factor in (1, *DOWNSCALES):
            folder = scene / ("masks" if factor == 1 else f"masks_{factor}")
            folder.mkdir(exist_ok=True)
            if min(mask.shape) >= factor:
                iio.imwrite(folder / relative, shrink(mask, factor))
        paths[name] = f"masks/{relative}"
    return paths


def _write_image(path: Path, image: np.ndarray) -> None:
    if path.suffix.lower() in (".jpg", ".jpeg"):
        iio.imwrite(path, image, quality=JPEG_QUALITY)
    else:
        iio.imwrite(path, image)


def opengl_poses(c2w_opencv: np.ndarray) -> np.ndarray:
    """[n, 3, 4] OpenCV camera-to-world -> [n, 4, 4] OpenGL (camera y and z axes flipped)."""
    return homogeneous(c2w_opencv * np.array([1.0, -1.0, -1.0, 1.0]))


def transforms_record(model: SfmModel, c2w_opencv: np.ndarray, similarity: Similarity,
                      depth_range, aabb: np.ndarray, forward_facing: bool,
                      mask_paths: Optional[Dict[str, str]] = None) -> Dict:
    """transforms.json's content: nerfstudio's keys (one shared pinhole camera, or per-frame
    intrinsics if the undistorted cameras differ; mask_path per frame when masks were given)
    plus fastfield's (see fastfield.data.nerfstudio)."""
    shared = np.allclose(model.intrinsics, model.intrinsics[0], rtol=0, atol=1e-9)

    def camera(intrinsics) -> Dict:
        fx, fy, cx, cy = (float(v) for v in intrinsics)
        return {"fl_x": fx, "fl_y": fy, "cx": cx, "cy": cy}

    frames = []
    for name, pose, intrinsics in zip(model.names, opengl_poses(c2w_opencv), model.intrinsics):
        frame = {"file_path": f"images/{name}", "transform_matrix": pose.tolist()}
        if mask_paths:
            frame["mask_path"] = mask_paths[name]
        frames.append(frame if shared else {**frame, **camera(intrinsics)})
    # OPENCV with zero distortion: a pinhole that every transforms.json reader knows.
    record = {"camera_model": "OPENCV", "w": model.width, "h": model.height,
              **(camera(model.intrinsics[0]) if shared else {}),
              "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0, "frames": frames,
              "applied_transform": similarity.matrix()[:3].tolist(),
              "applied_scale": similarity.scale, "ply_file_path": PLY_NAME,
              "depth_range": [float(depth_range[0]), float(depth_range[1])],
              "aabb": aabb.tolist(), "forward_facing": bool(forward_facing),
              "created_by": "fastfield process"}
    return record


def write_json(path: Path, record: Dict) -> None:
    """JSON written atomically (fastfield.core.atomic): an interrupted run never leaves half a
    file."""
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(record, indent=2))


def write_points_ply(path: Path, points: np.ndarray, colors: np.ndarray) -> None:
    """Binary little-endian PLY of coloured points (float x, y, z; uchar red, green, blue)."""
    record = np.empty(len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                                          ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    for axis, name in enumerate("xyz"):
        record[name] = points[:, axis]
    for channel, name in enumerate(("red", "green", "blue")):
        record[name] = colors[:, channel]
    header = ["ply", "format binary_little_endian 1.0", "comment written by fastfield process",
              f"element vertex {len(points)}", "property float x", "property float y",
              "property float z", "property uchar red", "property uchar green",
              "property uchar blue", "end_header"]
    with atomic_path(path) as temporary, open(temporary, "wb") as file:
        file.write(("\n".join(header) + "\n").encode("ascii"))
        file.write(record.tobytes())


def sphere_scale_mat(centre: np.ndarray, radius: float) -> np.ndarray:
    """[4, 4] taking the unit sphere onto the sphere (centre, radius)."""
    matrix = np.diag([radius, radius, radius, 1.0])
    matrix[:3, 3] = centre
    return matrix


def write_neus_cameras(path: Path, c2w_opencv: np.ndarray, intrinsics: np.ndarray,
                       scale_mat: np.ndarray, extra: Optional[Dict] = None) -> None:
    """NeuS's cameras_sphere.npz: world_mat_i = K [R | t] (scene frame -> pixels, NeuS's pixel
    centres at integers, so cx, cy are shifted by -0.5) and scale_mat_i = ``scale_mat``, with
    their inverses."""
    arrays = {}
    for i, (pose, (fx, fy, cx, cy)) in enumerate(zip(c2w_opencv, intrinsics)):
        K = np.array([[fx, 0, cx - 0.5, 0], [0, fy, cy - 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
        world_mat = K @ np.linalg.inv(homogeneous(pose))
        arrays.update({f"world_mat_{i}": world_mat, f"world_mat_inv_{i}": np.linalg.inv(world_mat),
                       f"scale_mat_{i}": scale_mat, f"scale_mat_inv_{i}": np.linalg.inv(scale_mat)})
    arrays.update(extra or {})
    with atomic_path(path) as temporary:
        np.savez(temporary, **arrays)
