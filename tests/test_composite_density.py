"""composite_density: values, gradients, layouts, numerics at alpha == 1, errors, compile."""
import math
import platform

import pytest
import torch

import fastfield
# The wrapper module loads the kernels and registers the fake functions that opcheck and the
# direct torch.ops calls below need, whichever test a worker runs first.
import fastfield.ops.composite  # noqa: F401
from fastfield import reference
from helpers import assert_close_per_ray, random_offsets

F64 = torch.float64


def make_inputs(n_rays, n_samples, device, dtype=F64, seed=0, last_delta=1e10):
    """Padded NeRF-like inputs: ReLU densities with exact zeros, the 1e10 last delta."""
    g = torch.Generator().manual_seed(seed)
    sigma = torch.relu(torch.randn(n_rays, n_samples, generator=g, dtype=F64) * 3)
    rgb = torch.rand(n_rays, n_samples, 3, generator=g, dtype=F64)
    t = torch.sort(2 + 4 * torch.rand(n_rays, n_samples, generator=g, dtype=F64), -1).values
    deltas = torch.cat([t[:, 1:] - t[:, :-1], torch.full((n_rays, 1), last_delta, dtype=F64)], -1)
    if n_rays > 1 and n_samples > 0:
        sigma[0, -1] = 0.0  # ReLU zero at the 1e10 delta: alpha 0, d alpha / d sigma = 1e10
        sigma[1, -1] = 5.0  # alpha == 1 exactly
    return [x.to(device, dtype) for x in (sigma, rgb, deltas, t)]


def as_packed(sigma, rgb, deltas, t):
    n_rays, n_samples = sigma.shape
    offsets = random_offsets([n_samples] * n_rays, sigma.device)
    return sigma.reshape(-1), rgb.reshape(-1, 3), deltas.reshape(-1), t.reshape(-1), offsets


@pytest.mark.parametrize("n_rays,n_samples", [(1, 1), (7, 1), (16, 64), (33, 192), (5, 2)])
@pytest.mark.parametrize("with_t", [True, False])
@pytest.mark.parametrize("background", [None, "shared", "per_ray"])
def test_matches_float64_reference(device, n_rays, n_samples, with_t, background):
    sigma, rgb, deltas, t = make_inputs(n_rays, n_samples, device)
    bg = {None: None, "shared": torch.tensor([1.0, 0.5, 0.0], dtype=F64, device=device),
          "per_ray": torch.rand(n_rays, 3, dtype=F64, device=device)}[background]
    t_arg = t if with_t else None
    expected = reference.composite_density(sigma, rgb, deltas, t_arg, None, bg)
    for dtype, tol in ((F64, 1e-12), (torch.float32, 2e-6)):
        cast = lambda x: None if x is None else x.to(dtype)  # noqa: E731
        out = fastfield.composite_density(cast(sigma), cast(rgb), cast(deltas), cast(t_arg), None,
                                          cast(bg))
        assert out.rgb.dtype == dtype and out.weights.shape == sigma.shape
        torch.testing.assert_close(out.rgb, expected.rgb.to(dtype), rtol=tol, atol=tol)
        torch.testing.assert_close(out.acc, expected.acc.to(dtype), rtol=tol, atol=tol)
        assert_close_per_ray(out.weights, expected.weights, rtol=tol)
        if with_t:
            torch.testing.assert_close(out.depth, expected.depth.to(dtype), rtol=tol, atol=tol * 6)
        else:
            assert out.depth is None


def test_alpha_one_and_relu_zero_at_last_sample(device):
    sigma, rgb, deltas, t = make_inputs(4, 8, device)
    out = fastfield.composite_density(sigma, rgb, deltas, t)
    # Ray 1 ends opaque: its weights sum to 1 (to rounding: the CPU walk and the CUDA tiles add
    # them in different orders). Ray 0's last sample has alpha 0 exactly.
    assert abs(out.acc[1].item() - 1.0) <= 4 * torch.finfo(F64).eps
    assert out.weights[0, -1].item() == 0.0
    s0 = sigma.clone().requires_grad_()
    fastfield.composite_density(s0, rgb, deltas, t).acc.sum().backward()
    # d acc / d sigma_last = T_last * delta_last = T_last * 1e10 on the ReLU-zero ray ...
    t_last = torch.prod(torch.exp(-sigma[0, :-1] * deltas[0, :-1]))
    torch.testing.assert_close(s0.grad[0, -1], t_last * 1e10, rtol=1e-12, atol=0)
    # ... and 0 where alpha is already 1.
    assert s0.grad[1, -1].item() == 0.0


@pytest.mark.parametrize("layout", ["padded", "packed"])
def test_float32_gradients_match_float64_at_1e10_delta(device, layout):
    """nerf-pytorch's 1e10 last delta: float32 backward within 1e-4 of each ray's gradient norm."""
    sigma, rgb, deltas, t = make_inputs(64, 128, device, seed=3)
    bg = torch.rand(3, dtype=F64, device=device)
    args64 = [sigma, rgb, deltas, t, None]
    if layout == "packed":
        args64 = list(as_packed(sigma, rgb, deltas, t))
    grads_out = None
    results = {}
    for dtype in (F64, torch.float32):
        s, c, d, tt, off = [a if a is None or a.dtype == torch.long else a.to(dtype).clone()
                            for a in args64]
        leaves = [x.requires_grad_() for x in (s, c, tt)] + [bg.to(dtype).detach().clone().requires_grad_()]
        fn = reference.composite_density if dtype == F64 else fastfield.composite_density
        out = fn(leaves[0], leaves[1], d, leaves[2], off, leaves[3])
        if grads_out is None:
            g = torch.Generator().manual_seed(1)
            grads_out = [torch.randn(o.shape, generator=g, dtype=F64).to(device) for o in out]
        torch.autograd.backward(list(out), [gr.to(dtype) for gr in grads_out])
        results[dtype] = [x.grad for x in leaves]
    for got, want in zip(results[torch.float32][:3], results[F64][:3]):
        assert_close_per_ray(got.reshape(64, -1), want.reshape(64, -1), rtol=1e-4)
    torch.testing.assert_close(results[torch.float32][3], results[F64][3].float(), rtol=1e-4,
                               atol=1e-4)


def test_backward_matches_reference_autograd_float64(device):
    sigma, rgb, deltas, t = make_inputs(16, 32, device, seed=5)
    bg = torch.rand(16, 3, dtype=F64, device=device)
    grads = {}
    for name, fn in (("kernel", fastfield.composite_density),
                     ("reference", reference.composite_density)):
        leaves = [x.clone().requires_grad_() for x in (sigma, rgb, t, bg)]
        out = fn(leaves[0], leaves[1], deltas, leaves[2], None, leaves[3])
        g = torch.Generator().manual_seed(2)
        torch.autograd.backward(list(out), [torch.randn(o.shape, generator=g, dtype=F64).to(device)
                                            for o in out])
        grads[name] = [x.grad for x in leaves]
    for got, want in zip(grads["kernel"], grads["reference"]):
        assert_close_per_ray(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("layout", ["padded", "packed"])
def test_gradcheck(device, layout):
    """Finite differences need a smooth neighbourhood: moderate deltas, strictly positive sigma."""
    sigma, rgb, deltas, t = make_inputs(3, 5, device, seed=7, last_delta=0.3)
    sigma = sigma + 0.1
    offsets = None
    if layout == "packed":
        sigma, rgb, deltas, t, offsets = as_packed(sigma, rgb, deltas, t)
    bg = torch.rand(3, dtype=F64, device=device)
    leaves = [x.clone().requires_grad_() for x in (sigma, rgb, t, bg)]

    def fn(s, c, tt, b):
        out = fastfield.composite_density(s, c, deltas, tt, offsets, b)
        return out.rgb, out.depth, out.acc, out.weights

    assert torch.autograd.gradcheck(fn, leaves)


def test_packed_equals_padded_with_empty_rays(device):
    sigma, rgb, deltas, t = make_inputs(6, 10, device, seed=11)
    counts = [10, 0, 3, 10, 0, 7]
    keep = torch.arange(10, device=device)[None, :] < torch.tensor(counts, device=device)[:, None]
    offsets = random_offsets(counts, device)
    bg = torch.tensor([0.2, 0.3, 0.4], dtype=F64, device=device)
    leaves = [x[keep].clone().requires_grad_() for x in (sigma, rgb, t)]
    packed = fastfield.composite_density(leaves[0], leaves[1], deltas[keep], leaves[2], offsets, bg)
    # Padded twin: the missing samples have zero density, so they change nothing.
    sigma_p = torch.where(keep, sigma, torch.zeros_like(sigma)).requires_grad_()
    rgb_p, t_p = rgb.clone().requires_grad_(), t.clone().requires_grad_()
    padded = fastfield.composite_density(sigma_p, rgb_p, deltas, t_p, None, bg)
    torch.testing.assert_close(packed.rgb, padded.rgb, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(packed.depth, padded.depth, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(packed.acc, padded.acc, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(packed.weights, padded.weights[keep], rtol=1e-12, atol=1e-12)
    # Empty rays: no colour, no acc, no depth, only the background.
    for ray in (1, 4):
        assert packed.acc[ray].item() == 0.0 and packed.depth[ray].item() == 0.0
        torch.testing.assert_close(packed.rgb[ray], bg)
    g = torch.Generator().manual_seed(0)
    grads = [torch.randn(o.shape, generator=g, dtype=F64).to(device) for o in padded[:3]]
    torch.autograd.backward(list(packed[:3]), grads)
    torch.autograd.backward(list(padded[:3]), grads)
    torch.testing.assert_close(leaves[0].grad, sigma_p.grad[keep], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(leaves[1].grad, rgb_p.grad[keep], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(leaves[2].grad, t_p.grad[keep], rtol=1e-10, atol=1e-10)


def test_zero_rays_and_zero_samples(device):
    for shape in ((0, 8), (4, 0)):
        sigma = torch.zeros(shape, dtype=F64, device=device, requires_grad=True)
        rgb = torch.zeros(shape + (3,), dtype=F64, device=device)
        out = fastfield.composite_density(sigma, rgb, torch.zeros(shape, dtype=F64, device=device),
                                          torch.zeros(shape, dtype=F64, device=device),
                                          background=(1.0, 1.0, 1.0))
        assert out.rgb.shape == (shape[0], 3) and out.weights.shape == shape
        assert torch.all(out.rgb == 1.0) and torch.all(out.acc == 0.0)
        (out.rgb.sum() + out.acc.sum()).backward()
        assert sigma.grad.shape == shape
    empty = torch.zeros(0, dtype=F64, device=device)
    out = fastfield.composite_density(empty, empty.reshape(0, 3), empty, None,
                                      torch.zeros(1, dtype=torch.long, device=device))
    assert out.rgb.shape == (0, 3)


def test_non_contiguous_inputs(device):
    sigma, rgb, deltas, t = make_inputs(8, 12, device)
    expected = fastfield.composite_density(sigma, rgb, deltas, t)
    # Transposed storage and channel-first colours viewed back to [n_rays, n_samples, 3].
    out = fastfield.composite_density(sigma.t().contiguous().t(), rgb.permute(2, 0, 1).contiguous()
                                      .permute(1, 2, 0), deltas.t().contiguous().t(), t[:, :])
    for a, b in zip(out, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_nan_stays_in_its_ray(device):
    sigma, rgb, deltas, t = make_inputs(4, 16, device)
    sigma[2, 5] = float("nan")
    out = fastfield.composite_density(sigma, rgb, deltas, t)
    assert torch.isnan(out.rgb[2]).all() and torch.isnan(out.weights[2, 5:]).all()
    assert not torch.isnan(out.weights[2, :5]).any()
    others = [0, 1, 3]
    assert torch.isfinite(out.rgb[others]).all() and torch.isfinite(out.weights[others]).all()


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the subnormal flush is x86 (MXCSR)")
def test_cpu_flushes_subnormals_and_keeps_the_callers_mode():
    """Each sample keeps 1% of the light: the transmittance 0.01^k is normal up to k = 18 and
    subnormal from k = 19 (float32's smallest normal is 1.2e-38). The CPU kernels compute those
    as 0 (cpu_launch.h, FlushSubnormals); the eager reference keeps them. The calling thread's
    floating-point mode is what it was before."""
    n_rays, n_samples = 4, 24
    sigma = torch.full((n_rays, n_samples), math.log(100.0), requires_grad=True)
    rgb = torch.rand(n_rays, n_samples, 3, generator=torch.Generator().manual_seed(0))
    deltas = torch.ones(n_rays, n_samples)
    out = fastfield.composite_density(sigma, rgb, deltas)
    expected = reference.composite_density(sigma, rgb, deltas).weights.detach()
    tiny = torch.finfo(torch.float32).tiny
    normal, subnormal = expected >= 1e3 * tiny, (expected > 0) & (expected < tiny)
    assert normal[:, :18].all() and subnormal[:, 19:21].all()  # the inputs do what they say
    torch.testing.assert_close(out.weights[normal], expected[normal], rtol=1e-4, atol=0)
    assert (out.weights[:, 19:] == 0).all()
    (grad,) = torch.autograd.grad(out.rgb.sum(), sigma)
    assert torch.isfinite(grad).all()

    probe = torch.tensor([1e-39])  # subnormal in float32
    assert (probe * 1.0).item() != 0  # gradual underflow outside the kernels
    if torch.set_flush_denormal(True):  # a caller that flushes keeps flushing
        try:
            fastfield.composite_density(sigma.detach(), rgb, deltas)
            assert (probe * 1.0).item() == 0
        finally:
            torch.set_flush_denormal(False)
    assert (probe * 1.0).item() != 0


def test_opcheck(device):
    sigma, rgb, deltas, t = make_inputs(5, 7, device, last_delta=0.5)
    sigma = sigma.requires_grad_()
    bg = torch.rand(3, dtype=F64, device=device)
    torch.library.opcheck(torch.ops.fastfield.composite_density_fwd,
                          (sigma, rgb, deltas, t, None, bg))
    packed = as_packed(sigma.detach(), rgb, deltas, t)
    torch.library.opcheck(torch.ops.fastfield.composite_density_fwd,
                          (packed[0].requires_grad_(), packed[1], packed[2], None, packed[4], None))
    grads = (torch.rand(5, 3, dtype=F64, device=device), torch.rand(5, dtype=F64, device=device),
             None, torch.rand(5, 7, dtype=F64, device=device))
    torch.library.opcheck(torch.ops.fastfield.composite_density_bwd,
                          grads + (sigma.detach(), rgb, deltas, t, None, bg))


def test_torch_compile_fullgraph():
    sigma, rgb, deltas, t = make_inputs(8, 16, "cpu", dtype=torch.float32)

    def render(sigma, rgb):
        out = fastfield.composite_density(torch.relu(sigma), torch.sigmoid(rgb), deltas, t,
                                          background=torch.ones(3))
        return out.rgb.sum() + out.depth.mean()

    compiled = torch.compile(render, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(sigma, rgb), render(sigma, rgb))
    s = sigma.clone().requires_grad_()
    compiled(s, rgb).backward()
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def test_cuda_matches_cpu(cuda):
    sigma, rgb, deltas, t = make_inputs(300, 96, "cpu", dtype=torch.float32, seed=9)
    bg = torch.rand(3)
    results = {}
    for dev in ("cpu", cuda):
        # Detached copies: .to() of a tensor that requires grad is not a leaf, and its .grad
        # would stay None (the gradients would not be compared at all).
        leaves = [x.detach().to(dev).requires_grad_() for x in (sigma, rgb, t)]
        out = fastfield.composite_density(leaves[0], leaves[1], deltas.to(dev), leaves[2],
                                          None, bg.to(dev))
        torch.autograd.backward(list(out), [torch.ones_like(o) for o in out])
        assert all(x.grad is not None for x in leaves)
        results[str(dev)] = list(out) + [x.grad for x in leaves]
    # Outputs (rgb, depth, acc, weights) to 2e-6 per ray, gradients to 1e-5: the CPU walks each
    # ray with a polynomial expf and float32 products, the GPU's tiles use CUDA's expf, double
    # products and other summation orders (the CPU emulation of the tiles measures up to 1.4e-6
    # on these gradients against the CPU kernels: tests/test_tile.py).
    for k, (got, want) in enumerate(zip(results["cuda"], results["cpu"])):
        assert_close_per_ray(got.cpu(), want, rtol=2e-6 if k < 4 else 1e-5)


# ----------------------------------------------------------------------------- bad input

def test_bad_shapes_dtypes_devices(device):
    sigma, rgb, deltas, t = make_inputs(4, 6, device, dtype=torch.float32)
    cd = fastfield.composite_density
    with pytest.raises(ValueError, match=r"rgb must be \[n_rays, n_samples, 3\]"):
        cd(sigma, rgb[:, :5], deltas, t)
    with pytest.raises(ValueError, match=r"sigma must be \[n_rays, n_samples\]"):
        cd(sigma[None], rgb, deltas, t)
    with pytest.raises(ValueError, match=r"deltas must be"):
        cd(sigma, rgb, deltas[:, :3], t)
    with pytest.raises(ValueError, match=r"background must be \[n_rays, 3\]"):
        cd(sigma, rgb, deltas, t, background=torch.ones(3, 3, device=device))
    with pytest.raises(TypeError, match="sigma must be float32 or float64"):
        cd(sigma.long(), rgb, deltas, t)
    with pytest.raises(TypeError, match="rgb must have the dtype of sigma"):
        cd(sigma, rgb.double(), deltas, t)
    with pytest.raises(TypeError, match="bfloat16"):
        cd(sigma.bfloat16(), rgb, deltas, t)
    with pytest.raises(TypeError, match="sigma must be a torch.Tensor"):
        cd([1.0], rgb, deltas, t)
    if device.type == "cpu" and torch.cuda.is_available():
        with pytest.raises(ValueError, match="same device"):
            cd(sigma, rgb.cuda(), deltas, t)


def test_autocast_upcasts_half_precision():
    sigma, rgb, deltas, t = make_inputs(4, 6, "cpu", dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fastfield.composite_density(sigma.bfloat16(), rgb.bfloat16(), deltas, t)
    assert out.rgb.dtype == torch.float32
    expected = fastfield.composite_density(sigma.bfloat16().float(), rgb.bfloat16().float(),
                                           deltas, t)
    torch.testing.assert_close(out.rgb, expected.rgb)


BAD_OFFSETS = {
    "decreasing": ([0, 5, 3, 12], "non-decreasing"),
    "past the samples": ([0, 5, 9, 40], r"ray_offsets\[-1\] must equal"),
    "negative start": ([-3, 5, 9, 12], r"ray_offsets\[0\] must be 0"),
    "short of the samples": ([0, 5, 9, 11], r"ray_offsets\[-1\] must equal"),
}


@pytest.mark.parametrize("case", sorted(BAD_OFFSETS))
def test_bad_ray_offsets(case):
    values, message = BAD_OFFSETS[case]
    sigma, rgb, deltas, t = [x.reshape(12, *x.shape[2:]) for x in make_inputs(2, 6, "cpu")]
    offsets = torch.tensor(values)
    with pytest.raises(ValueError, match=message):
        fastfield.composite_density(sigma, rgb, deltas, t, offsets)


def test_ray_offsets_dtype_and_shape():
    sigma, rgb, deltas, t = [x.reshape(12, *x.shape[2:]) for x in make_inputs(2, 6, "cpu")]
    with pytest.raises(TypeError, match="ray_offsets must be int64"):
        fastfield.composite_density(sigma, rgb, deltas, t, torch.tensor([0, 6, 12], dtype=torch.int32))
    with pytest.raises(ValueError, match=r"ray_offsets must be \[n_rays \+ 1\]"):
        fastfield.composite_density(sigma, rgb, deltas, t, torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"background must be \[n_rays, 3\]"):
        fastfield.composite_density(sigma, rgb, deltas, t, torch.tensor([0, 6, 12]),
                                    torch.ones(3, 3, dtype=F64))


@pytest.mark.parametrize("case", sorted(BAD_OFFSETS))
def test_unchecked_bad_offsets_stay_in_bounds(case, unchecked_values):
    """With value checks off (CUDA's default), invalid offsets are clamped inside the kernel:
    results are defined and finite, nothing is read or written outside the tensors."""
    values, _ = BAD_OFFSETS[case]
    sigma, rgb, deltas, t = [x.reshape(12, *x.shape[2:]).requires_grad_(x.dtype == F64)
                             for x in make_inputs(2, 6, "cpu", last_delta=0.5)]
    out = fastfield.composite_density(sigma, rgb, deltas, t, torch.tensor(values),
                                      torch.ones(3, dtype=F64))
    assert all(torch.isfinite(o).all() for o in out)
    (out.rgb.sum() + out.depth.sum() + out.weights.sum()).backward()
    assert torch.isfinite(sigma.grad).all()
