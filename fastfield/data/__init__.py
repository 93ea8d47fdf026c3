"""Scenes: images, cameras and bounds, loaded the way nerf-pytorch and NeuS load them.

``load_scene(path)`` reads a Blender (NeRF synthetic), LLFF or NeuS/DTU folder;
``builtin_scene()`` generates (once, then caches) a small scene with a known surface and loads
it through the same loaders. Images stay uint8 on the CPU; rays are never precomputed.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from .camera import Camera


@dataclass
class Split:
    """The images of one split and their cameras.

    Attributes:
        images: [n, H, W, 3] uint8 RGB (RGBA already composited onto the scene's background).
        cameras: ``Camera`` with n cameras of size H x W.
        masks: [n, H, W] float32 in [0, 1] (soft object masks / alpha), or None.
        names: the n image file names, for reports.
    """

    images: Tensor
    cameras: Camera
    masks: Optional[Tensor]
    names: List[str]

    def __post_init__(self):
        n, height, width = len(self.cameras), self.cameras.height, self.cameras.width
        if tuple(self.images.shape) != (n, height, width, 3):
            raise ValueError(f"Split.images must be [{n}, {height}, {width}, 3] to match its "
                             f"cameras, got {list(self.images.shape)}")
        if self.masks is not None and tuple(self.masks.shape) != (n, height, width):
            raise ValueError(f"Split.masks must be [{n}, {height}, {width}], "
                             f"got {list(self.masks.shape)}")
        if len(self.names) != n:
            raise ValueError(f"Split.names must hold {n} names, got {len(self.names)}")

    def __len__(self) -> int:
        return len(self.cameras)

    def __getitem__(self, idx) -> "Split":
        """The views selected by an int, a slice or an index tensor (the view dim is kept)."""
        ids = torch.arange(len(self))[idx].reshape(-1)
        return Split(self.images[ids], self.cameras[ids],
                     None if self.masks is None else self.masks[ids],
                     [self.names[i] for i in ids.tolist()])


@dataclass
class Scene:
    """A loaded scene.

    Attributes:
        name: folder name (or "builtin").
        kind: "blender" | "llff" | "neus".
        splits: "train", "val", "test" (those loaded). For NeuS, val and test are views that
            are also in train (NeuS validates on its training images).
        near, far: bounds along rays when ``bounds == "fixed"`` (Blender 2/6; LLFF 0/1 in NDC or
            the scaled depth bounds without NDC); 0/0 for NeuS.
        bounds: "fixed" (use near/far) or "sphere" (per-ray near/far from the unit sphere,
            NeuS ``near_far_from_sphere``).
        background: (1, 1, 1) / (0, 0, 0) the images were composited onto, or None for photos.
        ndc: LLFF NDC parameters {"H", "W", "focal", "near": 1.0}, or None.
        scale_mat: [4, 4] (NeuS) maps the normalised unit-sphere frame of the cameras back to
            world coordinates (apply it to meshes); None means identity.
        render_path: cameras for videos (an orbit for 360 scenes, a spiral for LLFF).
    """

    name: str
    kind: str
    splits: Dict[str, Split]
    near: float
    far: float
    bounds: str
    background: Optional[Tuple[float, float, float]]
    ndc: Optional[dict]
    scale_mat: Optional[Tensor]
    render_path: Camera

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise ValueError(f"scene {self.name!r} has no split {name!r}; "
                             f"it has {sorted(self.splits)}")
        return self.splits[name]


# The loaders import Split and Scene from this module, so they come after the definitions.
from .blender import load_blender  # noqa: E402
from .builtin import BuiltinShapes, builtin_scene, write_builtin_scene  # noqa: E402
from .llff import load_llff  # noqa: E402
from .neus import load_neus  # noqa: E402
from .paths import orbit_path, spiral_path  # noqa: E402

_FORMATS = (("transforms_train.json", "blender", load_blender),
            ("poses_bounds.npy", "llff", load_llff),
            ("cameras_sphere.npz", "neus", load_neus))


def load_scene(path, kind: str = "auto", **options) -> Scene:
    """Load the scene in folder ``path``; ``options`` go to the format's loader.

    ``kind="auto"`` picks the format from the file present: transforms_train.json -> Blender
    (``load_blender``), poses_bounds.npy -> LLFF (``load_llff``), cameras_sphere.npz -> NeuS
    (``load_neus``).
    """
    loaders = {name: loader for _, name, loader in _FORMATS}
    if kind == "auto":
        kind = scene_format(path)
    if kind not in loaders:
        raise ValueError(f"kind must be 'auto' or one of {sorted(loaders)}, got {kind!r}")
    return loaders[kind](Path(path), **options)


def scene_format(path) -> str:
    """"blender", "llff" or "neus": the format of the scene in folder ``path``, from the file
    present (see ``load_scene``); ValueError when the folder is missing or holds none."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: scene folder not found")
    for marker, name, _ in _FORMATS:
        if (path / marker).is_file():
            return name
    raise ValueError(f"{path}: cannot tell the scene format: expected one of "
                     f"{', '.join(marker for marker, _, _ in _FORMATS)}")


__all__ = ["Camera", "Split", "Scene", "load_scene", "load_blender", "load_llff", "load_neus",
           "builtin_scene", "write_builtin_scene", "BuiltinShapes", "orbit_path", "spiral_path",
           "scene_format"]
