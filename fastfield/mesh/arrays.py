"""A triangle mesh as arrays: validation, face and vertex normals, and the affine maps between
the normalised frame and world coordinates."""
from typing import Tuple, Union

import numpy as np
import torch
from torch import Tensor

ArrayLike = Union[np.ndarray, Tensor]


def as_matrix(scale_mat: ArrayLike) -> np.ndarray:
    matrix = torch.as_tensor(scale_mat, dtype=torch.float64).cpu().numpy()
    if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
        raise ValueError(f"scale_mat must be a finite 4x4 matrix, got shape {list(matrix.shape)}")
    return matrix


def mesh_arrays(vertices: ArrayLike, faces: ArrayLike) -> Tuple[np.ndarray, np.ndarray]:
    """float64 [V, 3] and int64 [F, 3] numpy copies, validated."""
    vertices = torch.as_tensor(vertices).detach().cpu().numpy().astype(np.float64)
    faces = torch.as_tensor(faces).detach().cpu().numpy()
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must be [V, 3], got {list(vertices.shape)}")
    if faces.ndim != 2 or faces.shape[1] != 3 or (faces.size and faces.dtype.kind not in "iu"):
        raise ValueError(f"faces must be [F, 3] integer vertex indices, got "
                         f"{list(faces.shape)} {faces.dtype}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"faces index vertices 0..{len(vertices) - 1}, got indices "
                         f"{faces.min()}..{faces.max()}")
    return vertices, faces.astype(np.int64)


def face_cross(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[F, 3] cross(v1 - v0, v2 - v0): the right-hand face normal, of length twice the area."""
    v0, v1, v2 = (vertices[faces[:, k]] for k in range(3))
    return np.cross(v1 - v0, v2 - v0)


def vertex_normals(vertices: ArrayLike, faces: ArrayLike) -> np.ndarray:
    """[V, 3] float32 unit vertex normals: the area-weighted mean of the adjacent faces'
    right-hand normals (outward for extract_mesh's meshes); zero for unused vertices."""
    vertices, faces = mesh_arrays(vertices, faces)
    cross = face_cross(vertices, faces)
    corners = faces.reshape(-1)
    summed = np.stack([np.bincount(corners, np.repeat(cross[:, k], 3), minlength=len(vertices))
                       for k in range(3)], -1)
    length = np.linalg.norm(summed, axis=-1, keepdims=True)
    return np.divide(summed, length, out=np.zeros_like(summed), where=length > 0).astype(np.float32)
