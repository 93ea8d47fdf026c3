"""hash_encode: bad arguments, non-finite points with the value checks off, CPU determinism."""
import pytest
import torch

import fastfield
from fastfield.reference.encoding import corner_rows
from encoding_helpers import GRIDS, grid_levels, make_params, make_points


# ----------------------------------------------------------------------------- bad input

def test_bad_arguments_raise_clear_errors(device):
    grid = GRIDS["mixed"]
    x = make_points(5, device, dtype=torch.float32)
    params = make_params(grid, device, torch.float32)
    he = fastfield.hash_encode
    with pytest.raises(ValueError, match=r"x must be \[n, 3\], got \[5, 2\]"):
        he(x[:, :2], params, *grid)
    with pytest.raises(ValueError, match=r"x must be \[n, 3\]"):
        he(x[0], params, *grid)
    with pytest.raises(ValueError, match=r"params must be .* = \[4, 64, 2\], got \[4, 32, 2\]"):
        he(x, params[:, :32], *grid)
    with pytest.raises(ValueError, match=r"params must be"):
        he(x, params, 5, *grid[1:])
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        he(x.long(), params.long(), *grid)
    with pytest.raises(TypeError, match="params must have the dtype of x"):
        he(x, params.double(), *grid)
    with pytest.raises(TypeError, match="bfloat16"):
        he(x.bfloat16(), params, *grid)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        he([[0.5, 0.5, 0.5]], params, *grid)
    bad = {"n_levels": (0, ValueError), "n_features": (-1, ValueError),
           "log2_table_size": (-1, ValueError), "base_resolution": (0.5, ValueError),
           "per_level_scale": (0.9, ValueError), "n_levels ": (65, ValueError),
           "n_features ": (2.5, ValueError), "base_resolution ": ("16", TypeError),
           "per_level_scale ": (float("nan"), ValueError)}
    names = ["n_levels", "n_features", "log2_table_size", "base_resolution", "per_level_scale"]
    for key, (value, error) in bad.items():
        args = list(grid)
        args[names.index(key.strip())] = value
        with pytest.raises(error, match=key.strip()):
            he(x, params, *args)
    with pytest.raises(ValueError, match="finest level's scale"):
        he(x, params, 4, 2, 6, 16, 1000.0)
    if device.type == "cpu" and torch.cuda.is_available():
        with pytest.raises(ValueError, match="same device"):
            he(x, params.cuda(), *grid)


def test_ops_check_their_arguments():
    """The registered ops, called directly, check what the wrapper cannot have checked."""
    x, ops = torch.rand(4, 3), torch.ops.fastfield
    with pytest.raises(ValueError, match="power of two"):
        ops.hash_encode_fwd(x, torch.zeros(2, 48, 2), 16.0, 1.5)
    with pytest.raises(ValueError, match="1 to 64 levels"):
        ops.hash_encode_fwd(x, torch.zeros(65, 8, 2), 16.0, 1.0)
    with pytest.raises(ValueError, match="per_level_scale must be >= 1"):
        ops.hash_encode_fwd(x, torch.zeros(2, 8, 2), 16.0, 0.5)
    with pytest.raises(ValueError, match=r"grad_out must be \[n, n_levels \* n_features\]"):
        ops.hash_encode_bwd(torch.zeros(4, 3), x, torch.zeros(2, 8, 2), 16.0, 1.5, True, True)
    with pytest.raises(ValueError, match=r"gg_x must be \[n, 3\]"):
        ops.hash_encode_bwd_bwd(torch.zeros(3, 3), None, torch.zeros(4, 4), x,
                                torch.zeros(2, 8, 2), 16.0, 1.5, True, True, True)


def test_non_finite_points_stay_in_bounds(device, unchecked_values):
    """NaN and infinite coordinates with the value checks off: infinities clamp onto the cube,
    NaN gives NaN features (reading the origin's cell, never outside the table), and the other
    points' values and gradients are unaffected."""
    grid = GRIDS["instant_ngp"]
    params = make_params(grid, device, torch.float32).requires_grad_()
    good = make_points(50, device, dtype=torch.float32, seed=10).requires_grad_()
    inf, nan = float("inf"), float("nan")
    odd = torch.tensor([[nan, 0.5, 0.5], [inf, -inf, 0.5], [nan, nan, nan], [-inf, inf, 1e38]],
                       device=device)
    x = torch.cat([good.detach(), odd]).requires_grad_()
    out = fastfield.hash_encode(x, params, *grid)
    assert torch.isnan(out[[50, 52]]).all() and torch.isfinite(out[[51, 53]]).all()
    clamped = fastfield.hash_encode(odd[[1, 3]].clamp(0, 1), params, *grid)
    torch.testing.assert_close(out[[51, 53]], clamped, rtol=0, atol=0)
    expected = fastfield.hash_encode(good, params, *grid)
    torch.testing.assert_close(out[:50], expected, rtol=0, atol=0)
    # The table gradient: NaN exactly in the rows of the NaN points' cells, where a NaN
    # coordinate selects cell 0 along its axis, on every level.
    (gp,) = torch.autograd.grad(out.sum(), params, retain_graph=True)
    offsets = torch.tensor([[(k >> d) & 1 for d in range(3)] for k in range(8)], device=device)
    nan_rows = torch.zeros(params.shape[:2], dtype=torch.bool, device=device)
    for level, geometry in enumerate(grid_levels(grid)):
        for point in odd[[0, 2]].nan_to_num(0.0):
            corner = torch.floor(point * geometry.scale + 0.5).long()
            rows = corner_rows(corner + offsets, geometry.resolution, geometry.dense, 2 ** 14)
            nan_rows[level, rows] = True
    assert torch.isnan(gp[nan_rows]).all() and torch.isfinite(gp[~nan_rows]).all()
    # Infinite coordinates: zero gradient along the clamped axes, finite second derivatives.
    finite = [*range(50), 51, 53]
    (gx,) = torch.autograd.grad(out[finite].sum(), x, create_graph=True)
    assert torch.isfinite(gx[finite]).all() and (gx[51, :2] == 0).all() and (gx[53] == 0).all()
    (want,) = torch.autograd.grad(expected.sum(), good)
    torch.testing.assert_close(gx[:50], want, rtol=0, atol=0)
    x_finite = x.detach()[finite].requires_grad_()
    (gx,) = torch.autograd.grad(fastfield.hash_encode(x_finite, params, *grid).sum(), x_finite,
                                create_graph=True)
    (ggp,) = torch.autograd.grad(gx.pow(2).sum(), params)
    assert torch.isfinite(ggp).all()


# ----------------------------------------------------------------------------- determinism

def test_cpu_table_gradients_are_bitwise_reproducible_across_thread_counts():
    grid = GRIDS["instant_ngp"]
    x = make_points(20000, "cpu", dtype=torch.float32, seed=11).requires_grad_()
    params = make_params(grid, "cpu", dtype=torch.float32).requires_grad_()
    g = torch.Generator().manual_seed(12)
    grad_out = torch.randn(x.shape[0], 32, generator=g)
    threads = torch.get_num_threads()
    results = []
    try:
        for n_threads in (1, 2, 3, 1):
            torch.set_num_threads(n_threads)
            out = fastfield.hash_encode(x, params, *grid)
            gx, gp = torch.autograd.grad(out, (x, params), grad_out, create_graph=True)
            (second,) = torch.autograd.grad((gx ** 2).sum(), params)
            results.append((gp, second))
    finally:
        torch.set_num_threads(threads)
    for gp, second in results[1:]:
        assert torch.equal(gp, results[0][0]) and torch.equal(second, results[0][1])
