"""How close a NeuS run's surface is to the built-in scene's exact one."""
from typing import Any, Dict

import numpy as np
import torch
from torch import nn

from ..data.builtin import SCALE_MAT, BuiltinShapes
from ..mesh import chamfer_distance, extract_mesh, outward_fraction, sample_mesh_points

# The built-in scene's world frame is a uniform scale (plus a shift) of the normalised one.
WORLD_SCALE = float(np.cbrt(np.linalg.det(SCALE_MAT[:3, :3])))


def score_builtin_surface(model: nn.Module, config, resolution: int, n_points: int, seed: int,
                          device: torch.device) -> Dict[str, Any]:
    """Chamfer distance (DTU's definition, see fastfield.mesh.chamfer_distance) between the
    mesh of ``model`` and the built-in scene's surface, and the mesh's orientation.

    Both surfaces are sampled with ``n_points`` area-uniform points in the normalised
    (unit-sphere) frame. ``sampling_floor`` is the Chamfer distance between two independent
    samples of the exact surface: what a perfect mesh would score at this ``n_points``.

    Returns:
        {"chamfer", "accuracy" (mesh -> truth), "completeness" (truth -> mesh),
        "sampling_floor", "chamfer_world" (world units of the scene files),
        "outward_fraction" (faces whose normal points along the SDF gradient), "n_vertices",
        "n_faces", "resolution", "points", "frame"}.
    """
    if config.model != "neus":
        raise ValueError(f"Chamfer distances need a NeuS run (an SDF), got a {config.model} run")
    if config.data.path is not None:
        raise ValueError(f"Chamfer distances need the exact surface, which only the built-in "
                         f"scene has; this run trained on {config.data.path}")
    vertices, faces = extract_mesh(model, resolution, device=device)
    generator = torch.Generator().manual_seed(seed)
    shapes = BuiltinShapes()
    truth = shapes.surface_points(n_points, generator)
    distances = chamfer_distance(sample_mesh_points(vertices, faces, n_points, generator), truth)
    floor = chamfer_distance(shapes.surface_points(n_points, generator), truth)["mean"]
    return {"chamfer": distances["mean"], "accuracy": distances["a_to_b"],
            "completeness": distances["b_to_a"], "sampling_floor": floor,
            "chamfer_world": distances["mean"] * WORLD_SCALE,
            "outward_fraction": outward_fraction(vertices, faces, model, device=device),
            "n_vertices": len(vertices), "n_faces": len(faces), "resolution": resolution,
            "points": n_points, "frame": "normalised (unit sphere)"}
