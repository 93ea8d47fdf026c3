"""The scene types every loader returns: ``Split`` (images and cameras of one split) and
``Scene`` (the splits, bounds and render path of a loaded scene)."""
from dataclasses import dataclass
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
        kind: "blender" | "llff" | "neus" | "nerfstudio" (transforms.json, e.g. from
            ``fastfield process``).
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
        aabb: [2, 3] float32 (min corner, max corner) of the region the scene occupies in the
            cameras' frame (from a capture's sparse points and cameras), for occupancy grids
            and box bounds; None when the format gives none (Blender, LLFF, NeuS, NDC scenes).
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
    aabb: Optional[Tensor] = None

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise ValueError(f"scene {self.name!r} has no split {name!r}; "
                             f"it has {sorted(self.splits)}")
        return self.splits[name]
