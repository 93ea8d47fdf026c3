"""frequency_encode: bad arguments, no points, NaN and infinite coordinates, the reference
backend's plain-PyTorch encodings."""
import math

import pytest
import torch

import fastfield
from fastfield import reference
from fastfield.fields import PositionalEncoding
from fastfield.fields import encoding as field_encoding
from encoding_helpers import F64


def test_wrapper_checks_its_arguments(device):
    x = torch.rand(5, 3, device=device)
    fe = fastfield.frequency_encode
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        fe([[0.5, 0.5, 0.5]], 4)
    for value, error in ((-1, ValueError), (31, ValueError), (2.5, ValueError),
                         ("3", TypeError), (True, TypeError)):
        with pytest.raises(error, match="n_frequencies"):
            fe(x, value)
    with pytest.raises(ValueError, match=r"x must be \[\.\.\., d\] with d >= 1, got \[5, 0\]"):
        fe(x[:, :0], 4)
    with pytest.raises(ValueError, match=r"x must be \[\.\.\., d\]"):
        fe(x[0, 0], 4)
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        fe(x.long(), 4)
    with pytest.raises(TypeError, match="bfloat16"):
        fe(x.bfloat16(), 4)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        out = fe(x.bfloat16(), 4)  # upcast to float32 under autocast, as every op
    assert out.dtype == torch.float32


def test_ops_check_their_arguments(device):
    """The registered ops, called directly, check what the wrapper cannot have checked."""
    ops = torch.ops.fastfield
    x = torch.rand(4, 3, device=device)
    grad = torch.rand(4, 27, device=device)
    with pytest.raises(ValueError, match=r"frequency_encode_fwd: x must be \[n, d\]"):
        ops.frequency_encode_fwd(x[0], 4)
    with pytest.raises(ValueError, match="at least one coordinate"):
        ops.frequency_encode_fwd(x[:, :0], 4)
    with pytest.raises(TypeError, match="x must be float32 or float64, got Int"):
        ops.frequency_encode_fwd(x.int(), 4)
    with pytest.raises(TypeError, match="x must be float32 or float64, got BFloat16"):
        ops.frequency_encode_fwd(x.bfloat16(), 4)
    for bad in (-1, 31):
        with pytest.raises(ValueError, match=r"n_frequencies must be in 0\.\.30, got " + str(bad)):
            ops.frequency_encode_fwd(x, bad)
    with pytest.raises(ValueError, match=r"grad_out must be \[n, d \* \(1 \+ 2 \* n_frequencies"
                                         r"\)\] = \[4, 27\], got \[4, 26\]"):
        ops.frequency_encode_bwd(grad[:, :26], x, 4)
    with pytest.raises(ValueError, match=r"grad_out must be .*got \[3, 27\]"):
        ops.frequency_encode_bwd(grad[:3], x, 4)
    with pytest.raises(TypeError, match="grad_out must have the dtype of x"):
        ops.frequency_encode_bwd(grad.double(), x, 4)
    with pytest.raises(ValueError, match=r"gg_x must be \[n, d\] \(the shape of x\) = \[4, 3\]"):
        ops.frequency_encode_bwd_bwd(x[:, :2], grad, x, 4, True, True)
    with pytest.raises(ValueError, match=r"grad_out must be"):
        ops.frequency_encode_bwd_bwd(x, grad, x, 5, True, True)
    if device.type == "cpu" and torch.cuda.is_available():
        with pytest.raises(ValueError, match="grad_out is on cuda"):
            ops.frequency_encode_bwd(grad.cuda(), x, 4)
        with pytest.raises(ValueError, match="same device"):
            ops.frequency_encode_bwd_bwd(x.cuda(), grad, x, 4, True, True)


def test_zero_points(device):
    x = torch.zeros(0, 3, dtype=F64, device=device, requires_grad=True)
    out = fastfield.frequency_encode(x, 6)
    assert out.shape == (0, 39)
    (gx,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    assert gx.shape == (0, 3)
    (ggx,) = torch.autograd.grad(gx.sum(), x, allow_unused=True)
    assert ggx is None or ggx.shape == (0, 3)
    assert fastfield.frequency_encode(torch.zeros(2, 0, 3, device=device), 2).shape == (2, 0, 15)


def test_zero_frequencies_give_a_copy(device):
    x = torch.rand(7, 3, device=device)
    out = fastfield.frequency_encode(x, 0)
    assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()


def test_nan_and_infinity_propagate(device):
    """A NaN coordinate gives NaN in its own columns only (and in its gradient); an infinite one
    keeps its value in the input column and NaN sines and cosines, as torch.sin does."""
    nan, inf = float("nan"), float("inf")
    for dtype in (torch.float32, F64):
        good = torch.rand(200, 3, dtype=dtype, device=device) * 2 - 1
        x = good.clone()
        x[3, 1], x[150, 0], x[151, 2] = nan, inf, -inf
        out = fastfield.frequency_encode(x, 5)
        expected = reference.frequency_encode(x, 5)
        assert torch.equal(torch.isnan(out), torch.isnan(expected))
        odd = torch.zeros_like(x, dtype=torch.bool)
        odd[3, 1] = odd[150, 0] = odd[151, 2] = True
        column_is_odd = odd.repeat(1, 11)
        assert torch.isnan(out[column_is_odd]).sum() == 3 * 10 + 1
        assert torch.isfinite(out[~column_is_odd]).all()
        assert out[150, 0] == inf and out[151, 2] == -inf
        fine = ~odd.any(-1)
        torch.testing.assert_close(out[fine], fastfield.frequency_encode(good[fine], 5))
        leaf = x.clone().requires_grad_()
        (gx,) = torch.autograd.grad(fastfield.frequency_encode(leaf, 5).sum(), leaf,
                                    create_graph=True)
        assert torch.isnan(gx[3, 1]) and torch.isfinite(gx[fine]).all()
        (ggx,) = torch.autograd.grad(gx[fine].pow(2).sum(), leaf)
        assert torch.isfinite(ggx[fine]).all()


def test_reference_backend_keeps_the_encodings_plain(monkeypatch):
    """render(..., backend="reference") runs the fields' encodings as PyTorch: the fused op is
    not called; the kernels backend calls it."""
    from fastfield.fields import MLPConfig, NeRFField
    from fastfield.render import render
    import fastfield.ops.encoding as op_module

    calls = []
    original = op_module.frequency_encode

    def counting(x, n_frequencies):
        calls.append(n_frequencies)
        return original(x, n_frequencies)

    monkeypatch.setattr(op_module, "frequency_encode", counting)
    torch.manual_seed(0)
    model = NeRFField(MLPConfig(depth=2, width=16, skips=()))
    rays_o = torch.zeros(4, 3)
    rays_d = torch.nn.functional.normalize(torch.randn(4, 3), dim=-1)
    pipeline_args = dict(pipeline=_one_field_pipeline(model))
    render(model, rays_o, rays_d, 0.5, 2.0, backend="reference", **pipeline_args)
    assert calls == [] and field_encoding._USE_KERNELS
    render(model, rays_o, rays_d, 0.5, 2.0, backend="kernels", **pipeline_args)
    assert sorted(set(calls)) == sorted({model.config.pos_frequencies,
                                         model.config.dir_frequencies})


def _one_field_pipeline(model):
    """A pipeline that evaluates the field at the rays' midpoints (the encodings are what the
    test watches)."""
    def pipeline(rays, ctx):
        points = rays.origins + rays.directions * ((rays.near + rays.far) / 2)[:, None]
        sigma, rgb = model(points, rays.viewdirs)
        return {"rgb": rgb, "sigma": sigma}
    return pipeline


def test_module_keeps_plain_expression_beyond_the_op_range():
    module = PositionalEncoding(2, 40)  # more octaves than the op takes
    x = torch.rand(5, 2, dtype=F64)
    torch.testing.assert_close(module(x), reference.frequency_encode(x, 40), rtol=0, atol=0)
    assert module(x)[0, 2] == pytest.approx(math.sin(x[0, 0].item()), abs=1e-15)
