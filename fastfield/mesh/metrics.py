"""How good a mesh is: orientation against its SDF, points sampled on it, and the Chamfer
distance (DTU's definition) between point clouds."""
from typing import Dict, Optional

import numpy as np
import torch
from torch import Tensor

from ..core.checks import int_at_least
from .arrays import ArrayLike, as_matrix, face_cross, mesh_arrays
from .extract import points_per_chunk, resolve_sdf


def outward_fraction(vertices: ArrayLike, faces: ArrayLike, sdf_fn,
                     scale_mat: Optional[ArrayLike] = None,
                     device: Optional[torch.device] = None, chunk: Optional[int] = None) -> float:
    """Fraction of faces whose right-hand normal points along the SDF gradient at the face
    centroid, i.e. away from the inside (1.0 for a correctly oriented mesh). Zero-area faces
    are not counted.

    Args:
        vertices [V, 3], faces [F, 3]: a mesh (numpy arrays or tensors).
        sdf_fn: as extract_mesh's ``model`` (NeuS, SDFNetwork, ``.sdf`` or a callable);
            differentiable with torch autograd.
        scale_mat: the [4, 4] the vertices were mapped to world coordinates with (the SDF is
            evaluated in its normalised frame, its gradient mapped to world). None: the
            vertices are in the SDF's frame.
        device, chunk: where and how many faces at a time the gradient is evaluated.
    """
    vertices, faces = mesh_arrays(vertices, faces)
    cross = face_cross(vertices, faces)
    keep = np.linalg.norm(cross, axis=-1) > 0
    if not keep.any():
        raise ValueError("the mesh has no faces with non-zero area")
    cross = cross[keep]
    centroids = vertices[faces[keep]].mean(1)
    # The SDF lives in the normalised frame x = A^-1 (world - t); its world gradient is
    # A^-T grad (rows: grad @ A^-1), which also handles reflections.
    to_normalised = np.linalg.inv(as_matrix(scale_mat)) if scale_mat is not None else np.eye(4)
    centroids = centroids @ to_normalised[:3, :3].T + to_normalised[:3, 3]
    function, device, dtype = resolve_sdf(sdf_fn, device)
    if chunk is None:
        chunk = points_per_chunk(sdf_fn, device, dtype, with_gradient=True)
    int_at_least(None, "chunk", chunk, 1)
    n_outward = 0
    for start in range(0, len(centroids), chunk):
        with torch.enable_grad():
            points = torch.as_tensor(centroids[start:start + chunk], dtype=dtype,
                                     device=device).requires_grad_(True)
            (gradient,) = torch.autograd.grad(function(points).sum(), points)
        world_gradient = gradient.double().cpu().numpy() @ to_normalised[:3, :3]
        alignment = (world_gradient * cross[start:start + chunk]).sum(-1)
        n_outward += int((alignment > 0).sum())
    return n_outward / len(centroids)


def sample_mesh_points(vertices: ArrayLike, faces: ArrayLike, n: int,
                       generator: Optional[torch.Generator] = None) -> Tensor:
    """[n, 3] float64 points uniform over the mesh's area (CPU tensor).

    A face is drawn with probability proportional to its area, then a uniform point of it
    (barycentrics (u, v) uniform on the unit square, reflected into the triangle).
    ``generator`` is a CPU torch.Generator.
    """
    int_at_least(None, "n", n, 0)
    vertices, faces = mesh_arrays(vertices, faces)
    vertices, faces = torch.from_numpy(vertices), torch.from_numpy(faces)
    corner, edge1, edge2 = (vertices[faces[:, 0]], vertices[faces[:, 1]] - vertices[faces[:, 0]],
                            vertices[faces[:, 2]] - vertices[faces[:, 0]])
    cumulative_area = torch.linalg.cross(edge1, edge2).norm(dim=-1).cumsum(0)
    if len(faces) == 0 or not cumulative_area[-1] > 0:
        raise ValueError("cannot sample points from a mesh with no area")
    # searchsorted over the cumulative area (torch.multinomial is limited to 2^24 faces);
    # right=True never picks a zero-area face.
    target = torch.rand(n, generator=generator, dtype=torch.float64) * cumulative_area[-1]
    picked = torch.searchsorted(cumulative_area, target, right=True).clamp_max(len(faces) - 1)
    u, v = torch.rand(2, n, generator=generator, dtype=torch.float64)
    outside = u + v > 1
    u, v = torch.where(outside, 1 - u, u), torch.where(outside, 1 - v, v)
    return corner[picked] + u[:, None] * edge1[picked] + v[:, None] * edge2[picked]


def chamfer_distance(a: ArrayLike, b: ArrayLike, chunk: int = 4096) -> Dict[str, float]:
    """Symmetric Chamfer distance between two point clouds, defined as DTU's evaluation does.

    a_to_b is the mean over the points of ``a`` of the Euclidean (not squared) distance to
    the nearest point of ``b`` (DTU's accuracy when ``a`` is the reconstruction), b_to_a the
    same the other way (completeness), and mean = (a_to_b + b_to_a) / 2. Unlike DTU's script
    there is no down-sampling, observation mask or outlier cut-off.

    Computed in float64 on ``a``'s device, in blocks of torch.cdist: at most chunk x chunk
    distances exist at once (chunk 4096: 128 MiB); each block updates the nearest distances
    of both clouds.

    Args:
        a: [N, 3], b: [M, 3] (numpy arrays or tensors; N, M >= 1).
    Returns:
        {"mean": float, "a_to_b": float, "b_to_a": float}
    """
    a = torch.as_tensor(a).detach().to(torch.float64)
    b = torch.as_tensor(b).detach().to(a.device, torch.float64)
    for name, cloud in (("a", a), ("b", b)):
        if cloud.dim() != 2 or cloud.shape[1] != 3 or len(cloud) == 0:
            raise ValueError(f"{name} must be a non-empty [n, 3] point cloud, "
                             f"got {list(cloud.shape)}")
    int_at_least(None, "chunk", chunk, 1)
    nearest_in_b = torch.full((len(a),), float("inf"), dtype=torch.float64, device=a.device)
    nearest_in_a = torch.full((len(b),), float("inf"), dtype=torch.float64, device=a.device)
    for i in range(0, len(a), chunk):
        for j in range(0, len(b), chunk):
            # Direct differences: the matrix-product form loses the small distances that
            # matter here to cancellation (and gives identical points a non-zero distance).
            distance = torch.cdist(a[i:i + chunk], b[j:j + chunk],
                                   compute_mode="donot_use_mm_for_euclid_dist")
            nearest_in_b[i:i + chunk] = torch.minimum(nearest_in_b[i:i + chunk],
                                                      distance.amin(1))
            nearest_in_a[j:j + chunk] = torch.minimum(nearest_in_a[j:j + chunk],
                                                      distance.amin(0))
    a_to_b, b_to_a = nearest_in_b.mean().item(), nearest_in_a.mean().item()
    return {"mean": 0.5 * (a_to_b + b_to_a), "a_to_b": a_to_b, "b_to_a": b_to_a}
