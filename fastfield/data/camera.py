"""Pinhole cameras as the ray kernels consume them."""
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
import torch
from torch import Tensor

from ..core.checks import int_at_least

CONVENTIONS = ("opengl", "opencv")


@dataclass
class Camera:
    """One or more pinhole cameras of the same image size.

    ``fastfield.generate_rays(camera.c2w, camera.intrinsics, pixels, convention=camera.convention)``
    turns pixels (camera index, row, col) into rays. Camera-space directions are
    ((col + o - cx)/fx, -(row + o - cy)/fy, -1) for "opengl" (Blender/LLFF: looks down -z, y up)
    and ((col + o - cx)/fx, (row + o - cy)/fy, 1) for "opencv" (DTU/NeuS: +z forward, y down).

    Attributes:
        c2w: [n_cams, 3, 4] camera-to-world rotation | position (float32 from the loaders).
        intrinsics: [n_cams, 4] (fx, fy, cx, cy) in pixels, same dtype and device as ``c2w``.
        height, width: image size in pixels.
        convention: "opengl" or "opencv".
    """

    c2w: Tensor
    intrinsics: Tensor
    height: int
    width: int
    convention: str

    def __post_init__(self):
        if not isinstance(self.c2w, Tensor) or self.c2w.dim() != 3 or self.c2w.shape[1:] != (3, 4):
            raise ValueError(f"Camera.c2w must be a [n_cams, 3, 4] tensor, got {_shape(self.c2w)}")
        if (not isinstance(self.intrinsics, Tensor)
                or self.intrinsics.shape != (self.c2w.shape[0], 4)):
            raise ValueError(f"Camera.intrinsics must be [n_cams, 4] = [{self.c2w.shape[0]}, 4] "
                             f"(fx, fy, cx, cy), got {_shape(self.intrinsics)}")
        if not self.c2w.is_floating_point() or self.intrinsics.dtype != self.c2w.dtype:
            raise ValueError(f"Camera.c2w and Camera.intrinsics must share one floating dtype, got "
                             f"{self.c2w.dtype} and {self.intrinsics.dtype}")
        if self.intrinsics.device != self.c2w.device:
            raise ValueError(f"Camera.c2w and Camera.intrinsics must be on one device, got "
                             f"{self.c2w.device} and {self.intrinsics.device}")
        for field in ("height", "width"):
            setattr(self, field, int_at_least(None, f"Camera.{field}", getattr(self, field), 1))
        if self.convention not in CONVENTIONS:
            raise ValueError(f"Camera.convention must be one of {CONVENTIONS}, "
                             f"got {self.convention!r}")

    @classmethod
    def from_numpy(cls, c2w: np.ndarray, intrinsics: Union[Sequence[float], np.ndarray],
                   height: int, width: int, convention: str,
                   dtype: torch.dtype = torch.float32) -> "Camera":
        """Camera from numpy poses [n, 3, 4] (or [n, 4, 4]) and intrinsics [4] or [n, 4]."""
        c2w = torch.tensor(np.asarray(c2w)[:, :3, :4], dtype=dtype)  # a copy, never a view
        intrinsics = torch.tensor(np.asarray(intrinsics), dtype=dtype)
        intrinsics = intrinsics.expand(c2w.shape[0], 4).clone()
        return cls(c2w.contiguous(), intrinsics, height, width, convention)

    def __len__(self) -> int:
        return self.c2w.shape[0]

    def __getitem__(self, idx) -> "Camera":
        """Cameras selected by an int, a slice or an index/bool tensor; the camera dim is kept."""
        if isinstance(idx, (int, np.integer)):
            if not -len(self) <= idx < len(self):
                raise IndexError(f"camera index {idx} out of range for {len(self)} cameras")
            idx = [int(idx) % len(self)]
        return Camera(self.c2w[idx], self.intrinsics[idx], self.height, self.width,
                      self.convention)

    def to(self, device=None, dtype=None) -> "Camera":
        return Camera(self.c2w.to(device=device, dtype=dtype),
                      self.intrinsics.to(device=device, dtype=dtype),
                      self.height, self.width, self.convention)


def _shape(value) -> str:
    return str(list(value.shape)) if isinstance(value, Tensor) else type(value).__name__
