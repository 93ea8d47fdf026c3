"""Meshes from an SDF by marching cubes (NeuS ``extract_geometry``).

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
from typing import Callable, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from ..core.checks import int_at_least
from ..core.memory import memory_budget
from .arrays import ArrayLike, as_matrix

SdfFunction = Callable[[Tensor], Tensor]


def resolve_sdf(model, device: Optional[torch.device]
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


def points_per_chunk(model, device: torch.device, dtype: torch.dtype, with_gradient: bool) -> int:
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
    function, device, dtype = resolve_sdf(model, device)
    if resolution is None:
        resolution = 512 if device.type == "cuda" else 128
    if chunk is None:
        chunk = points_per_chunk(model, device, dtype, with_gradient=False)
    int_at_least(None, "resolution", resolution, 2)
    int_at_least(None, "chunk", chunk, 1)
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
        matrix = as_matrix(scale_mat)
        vertices = vertices @ matrix[:3, :3].T + matrix[:3, 3]
        if np.linalg.det(matrix[:3, :3]) < 0:  # a reflection turns the mesh inside out
            faces = faces[:, ::-1]
    return vertices.astype(np.float32), np.ascontiguousarray(faces)
