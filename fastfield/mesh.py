"""Meshes from a NeuS SDF, PLY files, and the Chamfer distance meshes are scored with.

``extract_mesh`` follows NeuS's ``extract_geometry``: the SDF on a resolution^3 grid over
[-bound, bound]^3 (the unit sphere's cube in the normalised scene), marching cubes, and the
vertices mapped back to world coordinates with ``scale_mat`` (NeuS: scale_mat_0, fastfield:
``Scene.scale_mat``).

Orientation: faces are wound so that the right-hand normal cross(v1 - v0, v2 - v0) points
away from the inside (sdf < level), i.e. along the SDF gradient. NeuS runs PyMCubes on -sdf;
fastfield runs scikit-image's marching cubes on the SDF itself, whose winding with the default
``gradient_direction="descent"`` is exactly this (tests/test_mesh.py checks it with
``outward_fraction``). A scale_mat with a reflection would turn the mesh inside out, so the
winding is reversed then.
"""
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

from .core.atomic import atomic_path
from .render import memory_budget

ArrayLike = Union[np.ndarray, Tensor]
SdfFunction = Callable[[Tensor], Tensor]


# ----------------------------------------------------------------------------- SDF access

def _resolve_sdf(model, device: Optional[torch.device]
                 ) -> Tuple[SdfFunction, torch.device, torch.dtype]:
    """(points [N, 3] -> sdf [N], device, dtype) to evaluate ``model`` with.

    ``model`` is anything with ``.sdf(points)`` (an SDFNetwork, BuiltinShapes), a NeuS model
    (its ``sdf_network(points)`` returns (sdf, feature)) or a plain callable. The device is
    ``device`` or else the parameters' (CPU without parameters); the dtype is the
    parameters' (float32 without).
    """
    if callable(getattr(model, "sdf", None)):
        function = model.sdf
    elif callable(getattr(model, "sdf_network", None)):
        def function(points: Tensor) -> Tensor:
            return model.sdf_network(points)[0]
    elif callable(model) and not isinstance(model, nn.Module):
        function = model
    else:
        raise TypeError(f"expected an SDF model (NeuS, SDFNetwork, an object with "
                        f".sdf(points) or a callable points -> sdf), got {type(model).__name__} "
                        f"(density fields such as NeRF have no surface to extract)")
    parameters = model.parameters() if callable(getattr(model, "parameters", None)) else ()
    first = next((p for p in parameters if p.is_floating_point()), None)
    if device is None:
        device = first.device if first is not None else torch.device("cpu")
    return function, torch.device(device), first.dtype if first is not None else torch.float32


def _points_per_chunk(model, device: torch.device, dtype: torch.dtype, with_gradient: bool) -> int:
    """Points per SDF evaluation within ``memory_budget(device)``.

    A generous estimate per point: a few activations of the widest layer, plus every layer's
    activations when autograd keeps the graph; 1 KiB for SDFs without nn.Linear layers
    (analytic ones).
    """
    network = getattr(model, "sdf_network", model)
    linears = ([m for m in network.modules() if isinstance(m, nn.Linear)]
               if isinstance(network, nn.Module) else [])
    if linears:
        width = max(m.out_features for m in linears)
        per_point = dtype.itemsize * width * (8 + (3 * len(linears) if with_gradient else 0))
    else:
        per_point = 1024
    return max(4096, memory_budget(device) // per_point)


def _sdf_volume(function: SdfFunction, device: torch.device, dtype: torch.dtype,
                resolution: int, bound: float, chunk: int) -> np.ndarray:
    """The SDF at the grid points linspace(-bound, bound, resolution)^3: a float32 numpy
    volume [R, R, R] indexed [x, y, z], on the CPU.

    Points are generated and evaluated ``chunk`` at a time on the device (a 512^3 grid of
    points would not fit); only the float32 values come back.
    """
    n_points = resolution ** 3
    axis = torch.linspace(-bound, bound, resolution, dtype=torch.float64).to(device, dtype)
    volume = np.empty(n_points, dtype=np.float32)
    with torch.no_grad():
        for start in range(0, n_points, chunk):
            index = torch.arange(start, min(start + chunk, n_points), device=device)
            points = torch.stack([axis[index // (resolution * resolution)],
                                  axis[index // resolution % resolution],
                                  axis[index % resolution]], -1)
            values = function(points)
            if values.numel() != len(index):
                raise ValueError(f"the SDF must map points [N, 3] to [N] values; got "
                                 f"{list(values.shape)} for N = {len(index)}")
            volume[start:start + len(index)] = values.reshape(-1).float().cpu().numpy()
    return volume.reshape(resolution, resolution, resolution)


def _require_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


def _as_matrix(scale_mat: ArrayLike) -> np.ndarray:
    matrix = torch.as_tensor(scale_mat, dtype=torch.float64).cpu().numpy()
    if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
        raise ValueError(f"scale_mat must be a finite 4x4 matrix, got shape {list(matrix.shape)}")
    return matrix


# ----------------------------------------------------------------------------- extraction

def extract_mesh(model, resolution: Optional[int] = None, scale_mat: Optional[ArrayLike] = None,
                 device: Optional[torch.device] = None, chunk: Optional[int] = None,
                 level: float = 0.0, bound: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """The ``level`` iso-surface of an SDF by marching cubes (NeuS ``extract_geometry``).

    Args:
        model: a NeuS model (its sdf_network is evaluated), an SDFNetwork, any object with
            ``.sdf(points [N, 3]) -> [N]`` (e.g. BuiltinShapes) or such a callable.
        resolution: grid points per axis; default 512 on a GPU, 128 on a CPU. The float32
            volume (resolution^3 x 4 bytes, 512 MiB at 512) is held on the CPU.
        scale_mat: [4, 4] affine from the normalised frame to world coordinates (NeuS
            scale_mat_0, ``Scene.scale_mat``); None keeps the normalised frame.
        device: where the SDF is evaluated; default the model's (CPU for parameter-free SDFs).
        chunk: grid points per evaluation; default sized to the device's memory budget.
            The mesh does not depend on it.
        level: iso-value (0: the surface).
        bound: the grid spans [-bound, bound]^3 in the normalised frame.

    Returns:
        (vertices [V, 3] float32, world coordinates; faces [F, 3] int64), wound so that
        face normals point outward (module docstring). No degenerate (zero-area) faces.

    Raises:
        ValueError: the SDF is not finite on the grid, or never crosses ``level`` there.
    """
    try:
        from skimage.measure import marching_cubes
    except ImportError:
        raise ImportError("extract_mesh needs scikit-image for marching cubes: "
                          "pip install scikit-image (or fastfield[full])") from None
    function, device, dtype = _resolve_sdf(model, device)
    if resolution is None:
        resolution = 512 if device.type == "cuda" else 128
    if chunk is None:
        chunk = _points_per_chunk(model, device, dtype, with_gradient=False)
    _require_int("resolution", resolution, 2)
    _require_int("chunk", chunk, 1)
    if not bound > 0:
        raise ValueError(f"bound must be positive, got {bound!r}")
    volume = _sdf_volume(function, device, dtype, resolution, bound, chunk)
    n_bad = int(volume.size - np.isfinite(volume).sum())
    if n_bad:
        raise ValueError(f"the SDF is not finite at {n_bad} of the {resolution}^3 grid points "
                         f"(a diverged model?)")
    low, high = float(volume.min()), float(volume.max())
    if not low < level < high:
        raise ValueError(f"the SDF never crosses level {level} in [-{bound}, {bound}]^3 (its "
                         f"values there span [{low:.4g}, {high:.4g}]): there is no surface")
    vertices, faces, _, _ = marching_cubes(volume, level=level, allow_degenerate=False)
    vertices = vertices.astype(np.float64) * (2.0 * bound / (resolution - 1)) - bound
    faces = faces.astype(np.int64)
    if scale_mat is not None:
        matrix = _as_matrix(scale_mat)
        vertices = vertices @ matrix[:3, :3].T + matrix[:3, 3]
        if np.linalg.det(matrix[:3, :3]) < 0:  # a reflection turns the mesh inside out
            faces = faces[:, ::-1]
    return vertices.astype(np.float32), np.ascontiguousarray(faces)


# ----------------------------------------------------------------------------- geometry

def _mesh_arrays(vertices: ArrayLike, faces: ArrayLike) -> Tuple[np.ndarray, np.ndarray]:
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


def _face_cross(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[F, 3] cross(v1 - v0, v2 - v0): the right-hand face normal, of length twice the area."""
    v0, v1, v2 = (vertices[faces[:, k]] for k in range(3))
    return np.cross(v1 - v0, v2 - v0)


def vertex_normals(vertices: ArrayLike, faces: ArrayLike) -> np.ndarray:
    """[V, 3] float32 unit vertex normals: the area-weighted mean of the adjacent faces'
    right-hand normals (outward for extract_mesh's meshes); zero for unused vertices."""
    vertices, faces = _mesh_arrays(vertices, faces)
    cross = _face_cross(vertices, faces)
    corners = faces.reshape(-1)
    summed = np.stack([np.bincount(corners, np.repeat(cross[:, k], 3), minlength=len(vertices))
                       for k in range(3)], -1)
    length = np.linalg.norm(summed, axis=-1, keepdims=True)
    return np.divide(summed, length, out=np.zeros_like(summed), where=length > 0).astype(np.float32)


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
    vertices, faces = _mesh_arrays(vertices, faces)
    cross = _face_cross(vertices, faces)
    keep = np.linalg.norm(cross, axis=-1) > 0
    if not keep.any():
        raise ValueError("the mesh has no faces with non-zero area")
    cross = cross[keep]
    centroids = vertices[faces[keep]].mean(1)
    # The SDF lives in the normalised frame x = A^-1 (world - t); its world gradient is
    # A^-T grad (rows: grad @ A^-1), which also handles reflections.
    to_normalised = np.linalg.inv(_as_matrix(scale_mat)) if scale_mat is not None else np.eye(4)
    centroids = centroids @ to_normalised[:3, :3].T + to_normalised[:3, 3]
    function, device, dtype = _resolve_sdf(sdf_fn, device)
    if chunk is None:
        chunk = _points_per_chunk(sdf_fn, device, dtype, with_gradient=True)
    _require_int("chunk", chunk, 1)
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
    _require_int("n", n, 0)
    vertices, faces = _mesh_arrays(vertices, faces)
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
    _require_int("chunk", chunk, 1)
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


# ----------------------------------------------------------------------------- PLY files

_PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2",
              "int16": "i2", "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4",
              "uint": "u4", "uint32": "u4", "float": "f4", "float32": "f4", "double": "f8",
              "float64": "f8"}
_FACE_RECORD = np.dtype([("count", "u1"), ("indices", "<i4", (3,))])  # packed: 13 bytes


def write_ply(path, vertices: ArrayLike, faces: ArrayLike,
              normals: Optional[ArrayLike] = None) -> Path:
    """Write a triangle mesh as binary little-endian PLY, atomically (a reader never sees a
    partial file).

    Vertices are ``float x, y, z`` (+ ``float nx, ny, nz`` with normals), faces
    ``list uchar int vertex_indices``: what MeshLab, Open3D, trimesh and plyfile read.

    Args:
        vertices: [V, 3]; faces: [F, 3] indices into vertices; normals: [V, 3] or None.
    Returns:
        ``path`` as a Path.
    """
    vertices, faces = _mesh_arrays(vertices, faces)
    if len(vertices) >= 2 ** 31:
        raise ValueError(f"PLY int indices address < 2^31 vertices, got {len(vertices)}")
    columns, names = [vertices], ["x", "y", "z"]
    if normals is not None:
        normals = torch.as_tensor(normals).detach().cpu().numpy()
        if normals.shape != vertices.shape:
            raise ValueError(f"normals must be [V, 3] = {list(vertices.shape)}, got "
                             f"{list(normals.shape)}")
        columns.append(normals)
        names += ["nx", "ny", "nz"]
    header = ["ply", "format binary_little_endian 1.0", "comment written by fastfield",
              f"element vertex {len(vertices)}", *(f"property float {n}" for n in names),
              f"element face {len(faces)}", "property list uchar int vertex_indices",
              "end_header"]
    face_records = np.empty(len(faces), dtype=_FACE_RECORD)
    face_records["count"] = 3
    face_records["indices"] = faces
    path = Path(path)
    with atomic_path(path) as temporary, open(temporary, "wb") as file:
        file.write(("\n".join(header) + "\n").encode("ascii"))
        file.write(np.concatenate(columns, 1).astype("<f4").tobytes())
        file.write(face_records.tobytes())
    return path


def _read_ply_header(file, path: Path):
    """[(element name, count, [(property name, numpy type) or (name, (count type, item type))])]."""
    if file.readline().strip() != b"ply":
        raise ValueError(f"{path}: not a PLY file (no 'ply' magic line)")
    elements, file_format = [], None
    while True:
        line = file.readline()
        if not line:
            raise ValueError(f"{path}: PLY header has no end_header")
        words = line.decode("ascii", errors="replace").split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "end_header":
            if file_format != "binary_little_endian":
                raise ValueError(f"{path}: read_ply reads binary_little_endian PLY, got "
                                 f"format {file_format}")
            return elements
        if words[0] == "format":
            file_format = words[1] if len(words) > 1 else None
            continue
        try:
            if words[0] == "element":
                elements.append((words[1], int(words[2]), []))
            elif words[0] == "property" and words[1] == "list":
                elements[-1][2].append((words[4], ("<" + _PLY_TYPES[words[2]],
                                                   "<" + _PLY_TYPES[words[3]])))
            elif words[0] == "property":
                elements[-1][2].append((words[2], "<" + _PLY_TYPES[words[1]]))
        except (IndexError, KeyError, ValueError):
            raise ValueError(f"{path}: unsupported PLY header line {line.strip()!r}") from None


def read_ply(path) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """Read a binary little-endian triangle-mesh PLY such as ``write_ply`` writes.

    Vertex properties may be of any PLY scalar type; faces must be one list property of
    triangles; elements after the faces are ignored.

    Returns:
        (vertices [V, 3] float32, faces [F, 3] int64, normals [V, 3] float32 or None).
    """
    path = Path(path)
    with open(path, "rb") as file:
        elements = _read_ply_header(file, path)
        data = file.read()
    names = [name for name, _, _ in elements]
    if names[:2] != ["vertex", "face"]:
        raise ValueError(f"{path}: expected elements 'vertex' then 'face', got {names}")
    (_, n_vertices, vertex_properties), (_, n_faces, face_properties) = elements[:2]
    if any(isinstance(kind, tuple) for _, kind in vertex_properties):
        raise ValueError(f"{path}: list properties on vertices are not supported")
    vertex_dtype = np.dtype(vertex_properties)
    if any(axis not in vertex_dtype.names for axis in "xyz"):
        raise ValueError(f"{path}: vertices need x, y, z properties, got {vertex_dtype.names}")
    if len(face_properties) != 1 or not isinstance(face_properties[0][1], tuple):
        raise ValueError(f"{path}: faces must have exactly one list property")
    count_type, index_type = face_properties[0][1]
    face_dtype = np.dtype([("count", count_type), ("indices", index_type, (3,))])
    expected = vertex_dtype.itemsize * n_vertices + face_dtype.itemsize * n_faces
    if len(data) < expected:
        raise ValueError(f"{path}: truncated: {len(data)} bytes after the header, the header "
                         f"announces {expected} (or faces are not all triangles)")
    records = np.frombuffer(data, vertex_dtype, count=n_vertices)
    vertices = np.stack([records[axis] for axis in "xyz"], -1).astype(np.float32)
    normals = (np.stack([records[axis] for axis in ("nx", "ny", "nz")], -1).astype(np.float32)
               if {"nx", "ny", "nz"} <= set(vertex_dtype.names) else None)
    faces = np.frombuffer(data, face_dtype, count=n_faces,
                          offset=vertex_dtype.itemsize * n_vertices)
    if (faces["count"] != 3).any():
        raise ValueError(f"{path}: read_ply reads triangle meshes; found faces with "
                         f"{sorted(set(faces['count'].tolist()) - {3})} vertices")
    return vertices, faces["indices"].astype(np.int64), normals
