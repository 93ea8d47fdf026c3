"""frequency_encode: values, first and second derivatives, opcheck, compile, the NeuS eikonal use,
the CUDA kernels' items run on the CPU, CUDA parity."""
import math

import pytest
import torch

import fastfield
import fastfield._backend
from fastfield import reference
from fastfield.fields import PositionalEncoding, SDFField
from fastfield.fields.encoding import positional_encoding_kernels
from fastfield.fields.sdf import SDFConfig, sdf_and_gradient
from encoding_helpers import F64, compiled_eikonal_gradient

# (d, n_frequencies): NeRF's points (3, 10) and directions (3, 4), NeuS's SDF (3, 6), odd sizes.
SHAPES = [(3, 10), (3, 4), (3, 6), (1, 1), (4, 3), (2, 0), (5, 12)]


def make_points(n, d, device, dtype=F64, seed=0, spread=2.0):
    """Random coordinates in [-spread, spread], plus zeros, -0.0 and multiples of pi / 2."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, d, generator=g, dtype=F64) * 2 - 1) * spread
    special = torch.tensor([0.0, -0.0, math.pi / 2, -math.pi, 1.0, -1.0], dtype=F64)
    x[: len(special), 0] = special[:n]
    return x.to(device, dtype)


def uses_fused_op(module, x):
    """Whether module(x) ran frequency_encode_fwd (its autograd node names the op)."""
    out = module(x.detach().clone().requires_grad_())
    return "frequency_encode" in type(out.grad_fn).__name__


def test_layout_by_hand(device):
    a, b = 0.3, -1.7
    x = torch.tensor([[a, b]], dtype=F64, device=device)
    want = [a, b]
    for k in range(3):
        want += [math.sin(2 ** k * a), math.sin(2 ** k * b), math.cos(2 ** k * a),
                 math.cos(2 ** k * b)]
    out = fastfield.frequency_encode(x, 3)
    torch.testing.assert_close(out[0].cpu(), torch.tensor(want, dtype=F64), rtol=0, atol=1e-15)


@pytest.mark.parametrize("d,n_frequencies", SHAPES)
def test_matches_float64_reference(device, d, n_frequencies):
    # 300 points: three CPU blocks of 128, the last one partial.
    x = make_points(300, d, device)
    out = fastfield.frequency_encode(x, n_frequencies)
    expected = reference.frequency_encode(x, n_frequencies)
    assert out.shape == (300, d * (1 + 2 * n_frequencies)) and out.dtype == F64
    torch.testing.assert_close(out, expected, rtol=0, atol=4e-16 * 2 ** n_frequencies)
    # float32: sin and cos of the exact float32 product 2^k x, rounded once on the CPU (half an
    # ulp, at most 2^-25 on values below 1); CUDA's sinf/cosf are within 2 ulp.
    x32 = x.float()
    out32 = fastfield.frequency_encode(x32, n_frequencies)
    bound = 2.0 ** -24 if device.type == "cpu" else 2.0 ** -22
    torch.testing.assert_close(out32.double(), reference.frequency_encode(x32.double(),
                                                                          n_frequencies),
                               rtol=0, atol=bound)
    # ... and PyTorch's float32 expression (its sin/cos are within an ulp or two as well).
    torch.testing.assert_close(out32, reference.frequency_encode(x32, n_frequencies),
                               rtol=0, atol=4 * 2.0 ** -24)


def test_float32_against_float64_at_high_octaves(device):
    """float32 coordinates carry their rounding error e = |x32 - x| into octave k as 2^k e:
    sin(2^9 x) in float32 is off by up to 2^9 * 2^-24 * |x| (3e-5 for |x| near 1) however
    sin is computed. The bound per column is that propagated error plus a float32 rounding."""
    n_frequencies = 10
    x = make_points(1000, 3, device, spread=1.0)
    x32 = x.float()
    err = (fastfield.frequency_encode(x32, n_frequencies).double()
           - fastfield.frequency_encode(x, n_frequencies)).abs()
    input_error = (x32.double() - x).abs()
    for k in range(n_frequencies):
        bound = 2 ** k * input_error + 2.0 ** -23
        for column in (3 * (1 + 2 * k), 3 * (2 + 2 * k)):
            assert (err[:, column:column + 3] <= bound).all(), k
    assert err[:, -3:].max() > 1e-6  # the high octaves do show the float32 input's rounding


def test_large_arguments_take_the_exact_path(device):
    """Coordinates whose scaled value leaves the CPU polynomial's range (2^20) send their block
    of points through the C library; the values stay sin/cos of the float32 argument."""
    x = make_points(400, 3, device, spread=1.0).float()
    x[5, 1] = 3.0e5    # block 0: 2^9 * 3e5 is beyond 2^20
    x[300, 2] = -7.5e6  # block 2
    out = fastfield.frequency_encode(x, 10)
    bound = 2.0 ** -24 if device.type == "cpu" else 2.0 ** -22
    torch.testing.assert_close(out.double(), reference.frequency_encode(x.double(), 10),
                               rtol=0, atol=bound)


def test_batched_shapes(device):
    x = make_points(24, 3, device).reshape(2, 4, 3, 3)
    out = fastfield.frequency_encode(x, 5)
    assert out.shape == (2, 4, 3, 33)
    torch.testing.assert_close(out, reference.frequency_encode(x, 5), rtol=0, atol=1e-14)


# ----------------------------------------------------------------------------- derivatives

def _first_and_second(fn, x, seed=4):
    """dL/dx for L = <G, y>, then the gradients of an eikonal-like loss on dL/dx with respect
    to x and G."""
    g = torch.Generator().manual_seed(seed)
    x = x.clone().requires_grad_()
    out = fn(x)
    grad_out = torch.randn(out.shape, generator=g, dtype=F64).to(x.device, x.dtype)
    grad_out.requires_grad_()
    (gx,) = torch.autograd.grad(out, x, grad_out, create_graph=True)
    loss = ((gx.norm(dim=-1) - 1) ** 2).sum() + torch.sin(gx).sum()
    return (gx,) + torch.autograd.grad(loss, (x, grad_out), allow_unused=True,
                                       materialize_grads=True)


@pytest.mark.parametrize("d,n_frequencies", [(3, 10), (3, 6), (1, 2), (4, 0)])
def test_first_and_second_derivatives_match_reference_autograd(device, d, n_frequencies):
    x = make_points(200, d, device, seed=5)
    got = _first_and_second(lambda a: fastfield.frequency_encode(a, n_frequencies), x)
    want = _first_and_second(lambda a: reference.frequency_encode(a, n_frequencies), x)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11 * 4 ** n_frequencies)


@pytest.mark.parametrize("d,n_frequencies", [(3, 4), (2, 1), (1, 3)])
def test_gradcheck_and_gradgradcheck(device, d, n_frequencies):
    x = make_points(12, d, device, seed=7, spread=1.0).requires_grad_()

    def fn(a):
        return fastfield.frequency_encode(a, n_frequencies)

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_third_derivative_raises():
    x = make_points(10, 3, "cpu").requires_grad_()
    (gx,) = torch.autograd.grad(fastfield.frequency_encode(x, 4).sum(), x, create_graph=True)
    (ggx,) = torch.autograd.grad((gx ** 2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="frequency_encode_bwd_bwd"):
        torch.autograd.grad(ggx.sum(), x)


def test_opcheck(device):
    ops = torch.ops.fastfield
    x = make_points(20, 3, device)
    torch.library.opcheck(ops.frequency_encode_fwd, (x.clone().requires_grad_(), 4))
    grad_out = torch.rand(20, 27, dtype=F64, device=device)
    torch.library.opcheck(ops.frequency_encode_bwd,
                          (grad_out.clone().requires_grad_(), x.clone().requires_grad_(), 4))
    gg_x = torch.rand_like(x)
    for flags in ((True, True), (True, False), (False, True)):
        torch.library.opcheck(ops.frequency_encode_bwd_bwd, (gg_x, grad_out, x, 4) + flags)


def test_torch_compile_fullgraph():
    x = make_points(64, 3, "cpu", dtype=torch.float32)

    def field(x):
        return torch.tanh(fastfield.frequency_encode(x, 6)).sum(-1)

    compiled = torch.compile(field, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), field(x))
    grads = []
    for fn in (compiled, field):
        leaf = x.clone().requires_grad_()
        fn(leaf).sum().backward()
        grads.append(leaf.grad)
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.skipif(not hasattr(torch._dynamo.config, "trace_autograd_ops"),
                    reason="this torch's dynamo cannot trace torch.autograd.grad")
def test_torch_compile_fullgraph_eikonal():
    """As hash_encode's: autograd.grad(create_graph=True) inside the compiled function."""
    x = make_points(64, 3, "cpu", dtype=torch.float32)
    weight = torch.randn(27, generator=torch.Generator().manual_seed(8))

    grads = compiled_eikonal_gradient(
        lambda x, weight: torch.tanh(fastfield.frequency_encode(x, 4)) @ weight, x, weight)
    torch.testing.assert_close(grads[0], grads[1])
    assert grads[0].abs().sum() > 0


def test_neus_eikonal_gradients_match_pytorch(device):
    """NeuS's SDF network on encoded points: the eikonal loss on the SDF gradient
    (create_graph=True) gives the PyTorch module's parameter gradients, in float64."""
    torch.manual_seed(0)
    field = SDFField(SDFConfig(depth=4, width=64, skips=(2,), frequencies=6,
                               feature_dim=8)).to(device, F64)
    points = make_points(256, 3, device, seed=9, spread=1.0)
    grads = []
    for fused in (True, False):
        field.zero_grad()
        with positional_encoding_kernels(fused):
            assert uses_fused_op(field.encoding, points) == fused
            sdf, feature, normal = sdf_and_gradient(field, points, create_graph=True)
        (((normal.norm(dim=-1) - 1) ** 2).mean() + sdf.abs().mean()).backward()
        grads.append([p.grad.clone() for p in field.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert sum(g.abs().sum() for g in grads[0]) > 0


def test_positional_encoding_module(device):
    """The fused op where it applies, the PyTorch expression for bfloat16 and when switched
    off; the same state_dict (the frequencies buffer is not persistent)."""
    module = PositionalEncoding(3, 10).to(device)
    assert list(module.state_dict()) == []
    x = make_points(50, 3, device, dtype=torch.float32)
    fused = module(x)
    with positional_encoding_kernels(False):
        plain = module(x)
    assert uses_fused_op(module, x)
    with positional_encoding_kernels(False):
        assert not uses_fused_op(module, x)
    assert not uses_fused_op(module, x.bfloat16())
    torch.testing.assert_close(plain, reference.frequency_encode(x, 10), rtol=0, atol=0)
    torch.testing.assert_close(fused, plain, rtol=0, atol=4 * 2.0 ** -24)
    low = x.bfloat16()
    torch.testing.assert_close(module(low), reference.frequency_encode(low, 10), rtol=0, atol=0)
    assert PositionalEncoding(3, 0)(x) is x


def test_cuda_items_run_on_the_cpu():
    """The CUDA kernels' items (one thread per output element / coordinate, std sin and cos),
    run on the CPU by the tile emulation, agree with the production CPU passes."""
    x = make_points(300, 3, "cpu", seed=10)
    results = []
    for width in (0, 32):
        with fastfield._backend.cpu_tile_emulation(width):
            results.append(_first_and_second(lambda a: fastfield.frequency_encode(a, 7), x)
                           + (fastfield.frequency_encode(x, 7),
                              fastfield.frequency_encode(x.float(), 7)))
    for a, b in zip(*results):
        tol = 1e-12 if a.dtype == F64 else 2.0 ** -23
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def test_cuda_matches_cpu(cuda):
    x = make_points(5000, 3, "cpu", seed=11)
    results = {}
    for dev in ("cpu", cuda):
        def fn(a):
            return fastfield.frequency_encode(a, 10)

        float64 = _first_and_second(fn, x.to(dev)) + (fn(x.to(dev)),)
        results[str(dev)] = [t.cpu() for t in float64 + (fn(x.float().to(dev)),)]
    for i, (a, b) in enumerate(zip(results["cuda"], results["cpu"])):
        tol = 1e-10 if a.dtype == F64 else 2.0 ** -22
        torch.testing.assert_close(a, b, rtol=tol, atol=tol, msg=f"result {i}")
