"""Your own captures: a folder of photos or a video in, a trainable scene folder out.

``process(source, out)`` runs COLMAP through pycolmap (``pip install -e ".[capture]"``; only
this package imports it): frames from a video (frames.py), SIFT features with one shared
camera, matching, incremental mapping and undistortion to pinhole images (sfm.py); the scene
oriented, centred and scaled (normalize.py) and written as nerfstudio's ``transforms.json`` with
``images/`` (+ ``images_2/4/8``), ``sparse_pc.ply`` and NeuS's ``cameras_sphere.npz``
(writer.py), which ``fastfield.data.load_scene`` reads back for the NeRF and NeuS presets.
"""
from .normalize import Similarity, align
from .process import process
from .summary import format_summary

__all__ = ["process", "format_summary", "Similarity", "align", "scene_to_colmap"]


def scene_to_colmap(points, transforms: dict):
    """[..., 3] points in a processed scene's frame (meshes, renders' points) -> COLMAP's world.

    Args:
        transforms: the scene's transforms.json, as a dict (its ``applied_transform``
            [3, 4] = [s R | s t] maps COLMAP's world to the scene frame).
    """
    import numpy as np

    applied = np.asarray(transforms["applied_transform"], dtype=np.float64)
    linear, shift = applied[:, :3], applied[:, 3]
    return (np.asarray(points, dtype=np.float64) - shift) @ np.linalg.inv(linear).T
