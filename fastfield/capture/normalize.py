"""From COLMAP's world to the frame ``fastfield process`` writes, and what the capture tells
about its scene: the region of interest, the depth range, a bounding box, whether it is
forward-facing.

The scene frame: +z is the cameras' mean up direction, the origin is the centre of the region
of interest, and the scale puts every camera centre in the box [-1, 1]^3 (the largest
|coordinate| of a camera centre is 1). It is a similarity of COLMAP's world,
x_scene = s (R x_colmap + t); ``transforms.json`` records it, so results (meshes, points) map
back to COLMAP's world with its inverse (``Similarity.inverse``).

Inlier points: mean reprojection error at most INLIER_MAX_ERROR pixels and seen by at least
INLIER_MIN_TRACK images. The region of interest is the sphere around their per-axis median
that holds ROI_QUANTILE of them, widened by ROI_MARGIN: points beyond it are the outliers.
"""
from dataclasses import dataclass

import numpy as np

INLIER_MAX_ERROR, INLIER_MIN_TRACK = 2.0, 3
ROI_QUANTILE, ROI_MARGIN = 0.95, 1.1
# Forward-facing: every viewing direction within this angle of their mean and (almost) every
# inlier point in front of every camera: the LLFF setting, where NDC fits.
FORWARD_MAX_ANGLE_DEG, FORWARD_MIN_IN_FRONT = 30.0, 0.98
DEPTH_PERCENTILES = (0.1, 99.9)  # per camera, of the points it sees (LLFF's imgs2poses)
AABB_PERCENTILES, AABB_MARGIN = (1.0, 99.0), 0.05


@dataclass
class Similarity:
    """x -> scale * (rotation @ x + translation)."""

    scale: float
    rotation: np.ndarray     # [3, 3]
    translation: np.ndarray  # [3]

    def matrix(self) -> np.ndarray:
        """[4, 4] homogeneous form."""
        matrix = np.eye(4)
        matrix[:3, :3] = self.scale * self.rotation
        matrix[:3, 3] = self.scale * self.translation
        return matrix

    def apply(self, points: np.ndarray) -> np.ndarray:
        """[..., 3] points mapped."""
        return self.scale * (points @ self.rotation.T + self.translation)

    def inverse(self) -> "Similarity":
        return Similarity(1.0 / self.scale, self.rotation.T,
                          -self.scale * (self.rotation.T @ self.translation))

    def cameras(self, w2c: np.ndarray) -> np.ndarray:
        """World-to-camera [n, 3, 4] (OpenCV) -> camera-to-world [n, 3, 4] in the mapped frame,
        still OpenCV."""
        rotations = np.einsum("ij,nkj->nik", self.rotation, w2c[:, :, :3])  # R @ R_cw^T
        centres = -np.einsum("nji,nj->ni", w2c[:, :, :3], w2c[:, :, 3])
        return np.concatenate([rotations, self.apply(centres)[:, :, None]], axis=2)


def align(source: np.ndarray, target: np.ndarray) -> Similarity:
    """The similarity minimising sum |S(source_i) - target_i|^2 (Umeyama 1991), e.g. recovered
    camera centres onto reference ones: [n, 3] point sets, float64, n >= 3 not collinear."""
    source_mean, target_mean = source.mean(0), target.mean(0)
    a, b = source - source_mean, target - target_mean
    u, singular, vt = np.linalg.svd(b.T @ a / len(a))
    flip = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        flip[2, 2] = -1
    rotation = u @ flip @ vt
    scale = float(np.trace(np.diag(singular) @ flip) / (a ** 2).sum(1).mean())
    # S(x) = scale (R x + t): t = target_mean / scale - R source_mean.
    return Similarity(scale, rotation, target_mean / scale - rotation @ source_mean)


def inliers(errors: np.ndarray, track_lengths: np.ndarray) -> np.ndarray:
    """[m] bool: points with a small reprojection error seen by enough images (all points
    when fewer than 10 qualify)."""
    good = (errors <= INLIER_MAX_ERROR) & (track_lengths >= INLIER_MIN_TRACK)
    return good if good.sum() >= 10 else np.ones_like(good)


def region_of_interest(points: np.ndarray):
    """(centre [3], radius) of the sphere around the points' median holding ROI_QUANTILE of
    them, times ROI_MARGIN."""
    centre = np.median(points, axis=0)
    radius = np.quantile(np.linalg.norm(points - centre, axis=1), ROI_QUANTILE) * ROI_MARGIN
    return centre, float(max(radius, 1e-9))


def rotation_to_z(up: np.ndarray) -> np.ndarray:
    """The rotation [3, 3] taking direction ``up`` to +z by the shortest arc."""
    up = up / np.linalg.norm(up)
    axis, cosine = np.cross(up, [0.0, 0.0, 1.0]), float(up[2])
    if np.linalg.norm(axis) < 1e-12:
        return np.eye(3) if cosine > 0 else np.diag([1.0, -1.0, -1.0])
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + cross + cross @ cross / (1.0 + cosine)


def scene_similarity(w2c: np.ndarray, roi_centre: np.ndarray) -> Similarity:
    """COLMAP world -> scene frame (see the module docstring).

    Args:
        w2c: [n, 3, 4] OpenCV world-to-camera. roi_centre: [3] in COLMAP's world.
    """
    up = -w2c[:, 1, :3].sum(0)  # each camera's -y axis (up in the image) in the world
    rotation = rotation_to_z(up) if np.linalg.norm(up) > 1e-9 else np.eye(3)
    translation = -rotation @ roi_centre
    centred = Similarity(1.0, rotation, translation).cameras(w2c)[:, :, 3]
    extent = float(np.abs(centred).max())
    return Similarity(1.0 / extent if extent > 0 else 1.0, rotation, translation)


def camera_depths(w2c: np.ndarray, points: np.ndarray) -> np.ndarray:
    """[n, m] depth (camera z) of every point in every camera."""
    return np.einsum("nj,mj->nm", w2c[:, 2, :3], points) + w2c[:, 2, 3][:, None]


def forward_facing(w2c: np.ndarray, points: np.ndarray):
    """(is forward-facing, largest angle in degrees between a viewing direction and their
    mean, fraction of ``points`` in front of every camera)."""
    directions = w2c[:, 2, :3]  # each camera's +z (viewing direction) in the world
    mean = directions.sum(0)
    mean = mean / max(np.linalg.norm(mean), 1e-12)
    angle = float(np.degrees(np.arccos(np.clip(directions @ mean, -1.0, 1.0))).max())
    in_front = float((camera_depths(w2c, points) > 0).all(axis=0).mean()) if len(points) else 0.0
    return (angle <= FORWARD_MAX_ANGLE_DEG and in_front >= FORWARD_MIN_IN_FRONT), angle, in_front


def depth_range(w2c: np.ndarray, points: np.ndarray, observed, good: np.ndarray):
    """(closest, farthest) depth of the inlier points each camera sees: the smallest of the
    cameras' DEPTH_PERCENTILES[0] percentiles and the largest of their [1] percentiles, in the
    units of ``w2c`` and ``points``."""
    low, high = [], []
    for camera, seen in zip(w2c, observed):
        seen = seen[good[seen]]
        depths = camera_depths(camera[None], points[seen])[0]
        depths = depths[depths > 0]
        if len(depths):
            low.append(np.percentile(depths, DEPTH_PERCENTILES[0]))
            high.append(np.percentile(depths, DEPTH_PERCENTILES[1]))
    if not low:
        raise ValueError("no sparse point lies in front of a camera that sees it: the model is "
                         "degenerate")
    return float(min(low)), float(max(high))


def bounding_box(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """[2, 3] axis-aligned box holding the points between their AABB_PERCENTILES per axis and
    the camera centres, widened by AABB_MARGIN of its size on every side."""
    low, high = np.percentile(points, AABB_PERCENTILES, axis=0) if len(points) else (
        centres.min(0), centres.max(0))
    low, high = np.minimum(low, centres.min(0)), np.maximum(high, centres.max(0))
    pad = AABB_MARGIN * (high - low).max()
    return np.stack([low - pad, high + pad])
