"""PLY files: binary little-endian triangle meshes, written atomically and read back."""
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch

from ..core.atomic import atomic_path
from .arrays import ArrayLike, mesh_arrays

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
    vertices, faces = mesh_arrays(vertices, faces)
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
