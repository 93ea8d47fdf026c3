"""Inputs shared by the hash encoding tests: grids that mix dense and hashed levels, points
(random, on cell faces, outside the cube) and tables."""
import torch

from fastfield.core.hash_grid import hash_grid_spec, level_geometry

F64 = torch.float64

# (n_levels, n_features, log2_table_size, base_resolution, per_level_scale): every one mixes
# dense levels (r^3 <= T) and hashed ones; base 17 with scale 2 puts level 0's cell faces at the
# exactly representable x = (m - 0.5) / 16.
GRIDS = {
    "mixed": (4, 2, 6, 2, 1.7),
    "faces": (4, 3, 13, 17, 2.0),
    "one_feature": (3, 1, 8, 3.5, 1.9),
    "four_features": (5, 4, 9, 4, 1.5),
    "instant_ngp": (16, 2, 14, 16, 1.3819),
}


def grid_levels(grid):
    return level_geometry(hash_grid_spec("test", *grid))


def make_points(n, device, dtype=F64, seed=0, grid=None, margin=0.0):
    """Random points in [0, 1]^3, plus (with margin > 0) only those whose cell coordinates at
    every level of ``grid`` stay `margin` away from the cell faces, for finite differences."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, generator=g, dtype=F64) * 0.9 + 0.05
    if margin > 0:
        keep = torch.ones(n, dtype=torch.bool)
        for level in grid_levels(grid):
            t = torch.frac(x * level.scale + 0.5)
            keep &= ((t > margin) & (t < 1 - margin)).all(-1)
        x = x[keep]
    return x.to(device, dtype)


def make_params(grid, device, dtype=F64, seed=1):
    g = torch.Generator().manual_seed(seed)
    shape = hash_grid_spec("test", *grid).params_shape
    return torch.randn(shape, generator=g, dtype=F64).to(device, dtype)


def edge_points(device):
    """Corners and faces of the unit cube, level 0 cell faces of the "faces" grid, outside."""
    corners = torch.tensor([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=F64)
    faces = (torch.arange(1, 17, dtype=F64) - 0.5) / 16
    on_faces = torch.stack([faces, faces.flip(0), torch.full_like(faces, 0.3)], -1)
    outside = torch.tensor([[-0.5, 0.2, 1.5], [2.0, -3.0, 0.5], [1e30, -1e30, 0.5]], dtype=F64)
    return torch.cat([corners, on_faces, outside]).to(device)


def compiled_eikonal_gradient(sdf_of, x, param):
    """The gradient of ``param`` from NeuS's eikonal loss mean((|d sdf_of(x, param) / dx| - 1)^2),
    with the loss compiled (fullgraph, aot_eager; dynamo traces autograd.grad only with
    trace_autograd_ops=True) and eager: (compiled, eager)."""
    def eikonal(x, param):
        sdf = sdf_of(x, param)
        (normal,) = torch.autograd.grad(sdf.sum(), x, create_graph=True)
        return ((normal.norm(dim=-1) - 1) ** 2).mean()

    grads = []
    with torch._dynamo.config.patch(trace_autograd_ops=True):
        compiled = torch.compile(eikonal, fullgraph=True, backend="aot_eager")
        for fn in (compiled, eikonal):
            leaf = param.clone().requires_grad_()
            fn(x.clone().requires_grad_(), leaf).backward()
            grads.append(leaf.grad)
    return grads
