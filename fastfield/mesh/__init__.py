"""Meshes from SDF models: marching cubes (extract.py), mesh arrays and normals (arrays.py),
quality measures such as the Chamfer distance (metrics.py) and PLY files (ply.py).

Orientation convention everywhere: a face's right-hand normal cross(v1 - v0, v2 - v0) points
away from the inside (sdf < level), i.e. along the SDF gradient.
"""
from .arrays import vertex_normals
from .extract import extract_mesh
from .metrics import chamfer_distance, outward_fraction, sample_mesh_points
from .ply import read_ply, write_ply

__all__ = ["extract_mesh", "vertex_normals", "outward_fraction", "sample_mesh_points",
           "chamfer_distance", "write_ply", "read_ply"]
