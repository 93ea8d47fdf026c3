"""hash_encode: values, first and second derivatives, edge cases, opcheck, compile, CUDA parity."""
import pytest
import torch

import fastfield
from fastfield import reference
from fastfield.core.hash_grid import hash_grid_spec
from encoding_helpers import (F64, GRIDS, compiled_eikonal_gradient, edge_points, grid_levels,
                              make_params, make_points)


def test_grids_exercise_dense_and_hashed_levels():
    for grid in GRIDS.values():
        dense = [level.dense for level in grid_levels(grid)]
        assert any(dense) and not all(dense), grid


# ----------------------------------------------------------------------------- geometry, values

def test_level_geometry_by_hand():
    # base 16, scale 2: s = 15, 31, 63, 127; r = 16, 32, 64, 128; 128^3 > 2^19 is hashed.
    levels = grid_levels((4, 2, 19, 16, 2.0))
    assert [lv.scale for lv in levels] == [15, 31, 63, 127]
    assert [lv.resolution for lv in levels] == [16, 32, 64, 128]
    assert [lv.dense for lv in levels] == [True, True, True, False]
    # instant-ngp's level 1: s = 16 * 1.3819 - 1 = 21.1104, r = 23.
    level1 = grid_levels((2, 2, 19, 16, 1.3819))[1]
    assert level1.scale == pytest.approx(21.1104, abs=1e-12) and level1.resolution == 23


def test_values_by_hand(device):
    """Dense level: params[row] = row, a linear function of the corner (i + 2j + 4k on r = 2),
    which trilinear interpolation reproduces exactly. Hashed level: a point on a grid point
    reads that point's row, hashed here with Python integers."""
    params = torch.arange(16, dtype=F64, device=device)[None, :, None]
    x = torch.tensor([[0.25, 0.5, 0.75]], dtype=F64, device=device)  # pos (0.75, 1, 1.25)
    out = fastfield.hash_encode(x, params, 1, 1, 4, base_resolution=2, per_level_scale=1)
    assert out.item() == pytest.approx(0.75 + 2 * 1.0 + 4 * 1.25, abs=1e-14)
    params = torch.randn(1, 64, 2, dtype=F64, device=device)
    x = torch.tensor([[0.375, 0.625, 0.875]], dtype=F64, device=device)  # s = 4: (2, 3, 4)
    row = (2 ^ (3 * 2654435761 % 2**32) ^ (4 * 805459861 % 2**32)) % 64
    out = fastfield.hash_encode(x, params, 1, 2, 6, base_resolution=5, per_level_scale=1)
    torch.testing.assert_close(out[0], params[0, row], rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_matches_float64_reference(device, name):
    grid = GRIDS[name]
    x = torch.cat([make_points(500, device), edge_points(device)])
    params = make_params(grid, device)
    expected = reference.hash_encode(x, params, *grid)
    out = fastfield.hash_encode(x, params, *grid)
    assert out.shape == (x.shape[0], grid[0] * grid[1]) and out.dtype == F64
    torch.testing.assert_close(out, expected, rtol=1e-13, atol=1e-13)
    # float32: the twin's float32 arithmetic to rounding, and float64 to the precision of a
    # float32 position at the finest level (x * s carries an error of about s * 2^-24).
    out32 = fastfield.hash_encode(x.float(), params.float(), *grid)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32, reference.hash_encode(x.float(), params.float(), *grid),
                               rtol=1e-6, atol=1e-6)
    finest = grid_levels(grid)[-1].scale
    bound = 8 * 2.0 ** -24 * (finest + 1) * params.abs().max().item()
    torch.testing.assert_close(out32.double(), expected, rtol=0, atol=bound)


def test_outside_points_read_the_clamped_point(device):
    grid = GRIDS["mixed"]
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(200, 3, generator=g, dtype=F64) * 3 - 1).to(device)
    params = make_params(grid, device)
    torch.testing.assert_close(fastfield.hash_encode(x, params, *grid),
                               fastfield.hash_encode(x.clamp(0, 1), params, *grid), rtol=0, atol=0)


def test_zero_points(device):
    grid = GRIDS["mixed"]
    x = torch.zeros(0, 3, dtype=F64, device=device, requires_grad=True)
    params = make_params(grid, device).requires_grad_()
    out = fastfield.hash_encode(x, params, *grid)
    assert out.shape == (0, 8)
    (gx,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    assert gx.shape == (0, 3)
    gx.sum().backward()
    assert params.grad is None or (params.grad == 0).all()
    fastfield.hash_encode(x, params, *grid).sum().backward()
    assert params.grad.shape == params.shape and (params.grad == 0).all()


# ----------------------------------------------------------------------------- derivatives

def _first_and_second(fn, x, params, seed=4):
    """dL/d(x, params) for L = <G, y>, then the gradients of a loss on those (an eikonal-like
    term on dL/dx and a nonlinear one on dL/dparams) with respect to x, params and G."""
    g = torch.Generator().manual_seed(seed)
    x = x.clone().requires_grad_()
    params = params.clone().requires_grad_()
    out = fn(x, params)
    grad_out = torch.randn(out.shape, generator=g, dtype=F64).to(x.device, x.dtype)
    grad_out.requires_grad_()
    gx, gp = torch.autograd.grad(out, (x, params), grad_out, create_graph=True)
    loss = ((gx.norm(dim=-1) - 1) ** 2).sum() + (torch.sin(gp) * gp).sum()
    return (gx, gp) + torch.autograd.grad(loss, (x, params, grad_out))


@pytest.mark.parametrize("name", ["mixed", "faces", "four_features"])
def test_first_and_second_derivatives_match_reference_autograd(device, name):
    grid = GRIDS[name]
    x = torch.cat([make_points(300, device, seed=5), edge_points(device)])
    params = make_params(grid, device)
    got = _first_and_second(lambda a, b: fastfield.hash_encode(a, b, *grid), x, params)
    want = _first_and_second(lambda a, b: reference.hash_encode(a, b, *grid), x, params)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_eikonal_gradient_reaches_params_only_through_x_gradient(device):
    """NeuS's use: grad_x with create_graph, a loss on it alone, gradients to params."""
    grid = GRIDS["faces"]
    x = make_points(200, device, seed=6).requires_grad_()
    grads = []
    for fn in (fastfield.hash_encode, reference.hash_encode):
        params = make_params(grid, device).requires_grad_()
        sdf = fn(x, params, *grid).sum(-1)
        (normal,) = torch.autograd.grad(sdf.sum(), x, create_graph=True)
        ((normal.norm(dim=-1) - 1) ** 2).mean().backward()
        grads.append(params.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-10, atol=1e-12)
    assert grads[0].abs().sum() > 0


@pytest.mark.parametrize("grid", [(3, 2, 5, 2, 1.7), (3, 1, 6, 1.5, 2.0)], ids=["f2", "f1"])
def test_gradcheck_and_gradgradcheck(device, grid):
    """Small tables (every entry is perturbed), dense and hashed levels; finite differences
    need smooth neighbourhoods: points away from every cell face."""
    dense = [level.dense for level in grid_levels(grid)]
    assert any(dense) and not all(dense)
    x = make_points(24, device, seed=7, grid=grid, margin=1e-3).requires_grad_()
    params = make_params(grid, device).requires_grad_()
    assert x.shape[0] >= 8

    def fn(a, b):
        return fastfield.hash_encode(a, b, *grid)

    assert torch.autograd.gradcheck(fn, (x, params))
    assert torch.autograd.gradgradcheck(fn, (x, params))


def test_third_derivative_raises():
    grid = GRIDS["mixed"]
    x = make_points(10, "cpu").requires_grad_()
    params = make_params(grid, "cpu").requires_grad_()
    (gx,) = torch.autograd.grad(fastfield.hash_encode(x, params, *grid).sum(), x,
                                create_graph=True)
    (ggx,) = torch.autograd.grad((gx ** 2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="hash_encode_bwd_bwd"):
        torch.autograd.grad(ggx.sum(), params)


def test_opcheck(device):
    grid = GRIDS["mixed"]
    spec = hash_grid_spec("test", *grid)
    x = make_points(20, device)
    params = make_params(grid, device)
    ops = torch.ops.fastfield
    geometry = (spec.base_resolution, spec.per_level_scale)
    torch.library.opcheck(ops.hash_encode_fwd, (x.requires_grad_(), params.requires_grad_())
                          + geometry)
    grad_out = torch.rand(20, 8, dtype=F64, device=device)
    for x_grad, params_grad in ((True, True), (True, False), (False, True)):
        torch.library.opcheck(ops.hash_encode_bwd, (grad_out.requires_grad_(), x, params)
                              + geometry + (x_grad, params_grad))
    x, params, grad_out = x.detach(), params.detach(), grad_out.detach()
    gg_x, gg_params = torch.rand_like(x), torch.rand_like(params)
    for gg in ((gg_x, gg_params), (gg_x, None), (None, gg_params)):
        torch.library.opcheck(ops.hash_encode_bwd_bwd, gg + (grad_out, x, params) + geometry
                              + (True, True, True))


def test_torch_compile_fullgraph():
    """Forward and backward compile as one graph, traced through the fake functions and the
    registered autograd (aot_eager)."""
    grid = GRIDS["faces"]
    x = make_points(64, "cpu", dtype=torch.float32)
    params = make_params(grid, "cpu", dtype=torch.float32)

    def field(x, params):
        return torch.tanh(fastfield.hash_encode(x, params, *grid)).sum(-1)

    compiled = torch.compile(field, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x, params), field(x, params))
    grads = []
    for fn in (compiled, field):
        leaves = [x.clone().requires_grad_(), params.clone().requires_grad_()]
        fn(*leaves).sum().backward()
        grads.append([leaf.grad for leaf in leaves])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


@pytest.mark.skipif(not hasattr(torch._dynamo.config, "trace_autograd_ops"),
                    reason="this torch's dynamo cannot trace torch.autograd.grad")
def test_torch_compile_fullgraph_eikonal():
    """The NeuS eikonal term: autograd.grad(create_graph=True) inside the compiled function.
    Dynamo traces autograd.grad only with trace_autograd_ops=True (off by default: a graph
    break, an error under fullgraph); a create_graph backward through a function compiled
    without it fails in torch itself (aot_autograd has no double backward)."""
    grid = GRIDS["faces"]
    x = make_points(64, "cpu", dtype=torch.float32)
    params = make_params(grid, "cpu", dtype=torch.float32) * 0.1

    grads = compiled_eikonal_gradient(
        lambda x, params: torch.tanh(fastfield.hash_encode(x, params, *grid)).sum(-1), x, params)
    torch.testing.assert_close(grads[0], grads[1])
    assert grads[0].abs().sum() > 0


def test_cuda_matches_cpu(cuda):
    """float64 first and second derivatives to rounding (CUDA sums the table gradients with
    atomics, in no fixed order); float32 values and gradients to float32 rounding."""
    grid = GRIDS["instant_ngp"]
    x = torch.cat([make_points(4000, "cpu", seed=9), edge_points("cpu")])
    params = make_params(grid, "cpu")
    results = {}
    for dev in ("cpu", cuda):
        def fn(a, b):
            return fastfield.hash_encode(a, b, *grid)

        float64 = _first_and_second(fn, x.to(dev), params.to(dev))
        float32 = _first_and_second(fn, x.float().to(dev), params.float().to(dev))[:2]
        out = fn(x.float().to(dev), params.float().to(dev))
        results[str(dev)] = [t.cpu() for t in float64 + float32 + (out,)]
    for i, (a, b) in enumerate(zip(results["cuda"], results["cpu"])):
        tol = 1e-10 if a.dtype == F64 else 1e-5
        torch.testing.assert_close(a, b, rtol=tol, atol=tol, msg=f"result {i}")
