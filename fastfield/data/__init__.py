"""Scenes: images, cameras and bounds, loaded the way nerf-pytorch and NeuS load them.

``load_scene(path)`` reads a Blender (NeRF synthetic), LLFF, NeuS/DTU or nerfstudio
(``transforms.json``, what ``fastfield process`` writes) folder;
``builtin_scene()`` generates (once, then caches) a small scene with a known surface and loads
it through the same loaders. Images stay uint8 on the CPU; rays are never precomputed.
"""
from pathlib import Path

from .blender import load_blender
from .builtin import BuiltinShapes, builtin_scene, write_builtin_scene
from .camera import Camera
from .llff import load_llff
from .nerfstudio import load_nerfstudio
from .neus import load_neus
from .paths import orbit_path, spiral_path
from .scene import Scene, Split

# Checked in this order: a fastfield capture holds transforms.json and cameras_sphere.npz.
_FORMATS = (("transforms_train.json", "blender", load_blender),
            ("poses_bounds.npy", "llff", load_llff),
            ("transforms.json", "nerfstudio", load_nerfstudio),
            ("cameras_sphere.npz", "neus", load_neus))


def load_scene(path, kind: str = "auto", **options) -> Scene:
    """Load the scene in folder ``path``; ``options`` go to the format's loader.

    ``kind="auto"`` picks the format from the file present: transforms_train.json -> Blender
    (``load_blender``), poses_bounds.npy -> LLFF (``load_llff``), transforms.json -> nerfstudio
    (``load_nerfstudio``), cameras_sphere.npz -> NeuS (``load_neus``), checked in that order.
    """
    loaders = {name: loader for _, name, loader in _FORMATS}
    if kind == "auto":
        kind = scene_format(path)
    if kind not in loaders:
        raise ValueError(f"kind must be 'auto' or one of {sorted(loaders)}, got {kind!r}")
    return loaders[kind](Path(path), **options)


def scene_format(path) -> str:
    """"blender", "llff", "nerfstudio" or "neus": the format of the scene in folder ``path``,
    from the file present (see ``load_scene``); ValueError when the folder is missing or holds
    none."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: scene folder not found")
    for marker, name, _ in _FORMATS:
        if (path / marker).is_file():
            return name
    raise ValueError(f"{path}: cannot tell the scene format: expected one of "
                     f"{', '.join(marker for marker, _, _ in _FORMATS)}")


__all__ = ["Camera", "Split", "Scene", "load_scene", "load_blender", "load_llff", "load_neus",
           "load_nerfstudio",
           "builtin_scene", "write_builtin_scene", "BuiltinShapes", "orbit_path", "spiral_path",
           "scene_format"]
