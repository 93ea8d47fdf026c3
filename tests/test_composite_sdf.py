"""composite_sdf (NeuS render_core): values, gradients, layouts, saturation, errors, compile."""
import math

import pytest
import torch

import fastfield
# The wrapper module loads the kernels and registers the fake functions that opcheck and the
# direct torch.ops calls below need, whichever test a worker runs first.
import fastfield.ops.composite  # noqa: F401
from fastfield import reference
from helpers import assert_close_per_ray, random_offsets

F64, F32 = torch.float64, torch.float32
DIFFERENTIABLE = ("sdf", "cos", "inv_s", "rgb", "bg_alpha", "bg_rgb")
OUTPUTS = ("rgb", "acc", "weights", "alpha")
# The reference forms P - N + 1e-5 directly, which keeps only ~1e-16 absolute (not relative)
# accuracy of the ~1e-5 alphas of empty space; rays made only of such samples need this slack.
ATOL64 = 1e-15
# float32 outputs against the float64 reference, relative to each ray's norm: T is a product of
# up to n_in + n_out = 160 float32 factors 1 - alpha + 1e-7, each rounded twice.
F32_VALUES = 5e-6


def random_inputs(n_rays, n_in, device, n_out=None, seed=0, inv_s=(20.0, 100.0)):
    """Generic inputs: SDF values around 0, cos in (-1, 1), inv_s per ray (log-uniform in
    ``inv_s``), and with n_out not None a background model (inside mask, bg_alpha, bg_rgb)."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = inv_s
    inp = {
        "sdf": torch.randn(n_rays, n_in, generator=g, dtype=F64) * 0.1,
        "cos": torch.rand(n_rays, n_in, generator=g, dtype=F64) * 2 - 1,
        "dists": 0.005 + 0.03 * torch.rand(n_rays, n_in, generator=g, dtype=F64),
        "inv_s": torch.exp(math.log(lo) + math.log(hi / lo) * torch.rand(n_rays, generator=g,
                                                                        dtype=F64)),
        "rgb": torch.rand(n_rays, n_in, 3, generator=g, dtype=F64),
    }
    if n_out is not None:
        inp["inside"] = (torch.rand(n_rays, n_in, generator=g) < 0.7).to(F64)
        inp["bg_alpha"] = 1 - torch.exp(-torch.rand(n_rays, n_in + n_out, generator=g,
                                                     dtype=F64) * 2)
        inp["bg_rgb"] = torch.rand(n_rays, n_in + n_out, 3, generator=g, dtype=F64)
    return {k: v.to(device) for k, v in inp.items()}


def neus_inputs(n_rays, n_in, device, n_out=None, seed=0, inv_s=(20.0, 2000.0)):
    """NeuS-like inputs: rays from a camera sphere of radius 3 through the unit sphere, sampled
    as NeuS does (near/far = closest approach -/+ 1, one shift per ray, midpoints, last dist
    2/n_in), a wobbly sphere of radius 0.5 as the SDF with noisy gradients, inside = |x| < 1, and
    a background model over n_out samples beyond far."""
    g = torch.Generator().manual_seed(seed)
    cam = torch.randn(n_rays, 3, generator=g, dtype=F64)
    cam = 3 * cam / cam.norm(dim=-1, keepdim=True)
    target = 0.6 * (torch.rand(n_rays, 3, generator=g, dtype=F64) * 2 - 1)
    d = target - cam
    d = d / d.norm(dim=-1, keepdim=True)
    near = -(cam * d).sum(-1) - 1
    shift = (torch.rand(n_rays, 1, generator=g, dtype=F64) - 0.5) / n_in
    z = near[:, None] + 2 * (torch.linspace(0, 1, n_in, dtype=F64)[None] + shift)
    dists = torch.cat([z[:, 1:] - z[:, :-1], torch.full((n_rays, 1), 2.0 / n_in, dtype=F64)], -1)
    pts = cam[:, None] + d[:, None] * (z + dists * 0.5)[..., None]
    radius = pts.norm(dim=-1)
    sdf = radius - 0.5 + 0.02 * torch.sin(5 * pts).prod(-1)
    normal = pts / radius[..., None] + 0.05 * torch.randn(pts.shape, generator=g, dtype=F64)
    lo, hi = inv_s
    inp = {
        "sdf": sdf, "cos": (normal * d[:, None]).sum(-1), "dists": dists,
        "inv_s": torch.exp(math.log(lo) + math.log(hi / lo) * torch.rand(n_rays, generator=g,
                                                                        dtype=F64)),
        "rgb": torch.rand(n_rays, n_in, 3, generator=g, dtype=F64),
    }
    if n_out is not None:
        inp["inside"] = (radius < 1.0).to(F64)
        sigma = torch.nn.functional.softplus(torch.randn(n_rays, n_in + n_out, generator=g,
                                                         dtype=F64) * 3)
        inp["bg_alpha"] = 1 - torch.exp(-sigma * 2.0 / n_in)
        inp["bg_rgb"] = torch.rand(n_rays, n_in + n_out, 3, generator=g, dtype=F64)
    return {k: v.to(device) for k, v in inp.items()}


def cast(inp, dtype):
    return {k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
            for k, v in inp.items()}


def call(fn, inp, anneal, ray_offsets=None):
    return fn(inp["sdf"], inp["cos"], inp["dists"], inp["inv_s"], inp["rgb"], anneal,
              inp.get("inside"), inp.get("bg_alpha"), inp.get("bg_rgb"), ray_offsets)


def cotangents(out, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(o.shape, generator=g, dtype=F64).to(o.device, o.dtype) for o in out]


def outputs_and_grads(fn, inp, anneal, ray_offsets=None, grad_outputs=None):
    """Outputs of fn and the gradients of sum(out_k * cotangent_k) over all four outputs."""
    leaves = {k: inp[k].detach().clone().requires_grad_() for k in DIFFERENTIABLE
              if isinstance(inp.get(k), torch.Tensor)}
    out = call(fn, {**inp, **leaves}, anneal, ray_offsets)
    grad_outputs = cotangents(out) if grad_outputs is None else grad_outputs
    grads = torch.autograd.grad(list(out), list(leaves.values()), grad_outputs)
    return out, dict(zip(leaves, grads))


def to_packed(inp):
    """Padded inputs without background as packed ones, all rays full."""
    n_rays, n_in = inp["sdf"].shape
    packed = {k: inp[k].reshape(n_rays * n_in, *inp[k].shape[2:])
              for k in ("sdf", "cos", "dists", "rgb")}
    packed["inv_s"] = inp["inv_s"]
    return packed, random_offsets([n_in] * n_rays, inp["sdf"].device)


# ----------------------------------------------------------------------------- values

SHAPES = [(1, 1), (7, 1), (5, 2), (16, 64), (33, 128)]


@pytest.mark.parametrize("n_rays,n_in", SHAPES)
@pytest.mark.parametrize("background", [None, 0, 32], ids=["no_bg", "bg_n_out_0", "bg_n_out_32"])
def test_matches_float64_reference(device, n_rays, n_in, background):
    inp = random_inputs(n_rays, n_in, device, n_out=background)
    expected = call(reference.composite_sdf, inp, 0.5)
    width = n_in + (background or 0)
    for dtype, tol in ((F64, 1e-12), (F32, F32_VALUES)):
        x = cast(inp, dtype)
        out = call(fastfield.composite_sdf, x, 0.5)
        assert out.rgb.dtype == dtype and out.weights.shape == out.alpha.shape == (n_rays, width)
        # The float64 reference on the same (rounded) inputs isolates the kernel's own error.
        want = call(reference.composite_sdf, cast(x, F64), 0.5) if dtype == F32 else expected
        for name in OUTPUTS:
            assert_close_per_ray(getattr(out, name), getattr(want, name), rtol=tol, atol=ATOL64)


@pytest.mark.parametrize("anneal", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("inv_s_kind", ["python_float", "0-d", "[1]", "[n_rays]"])
def test_inv_s_forms_and_anneal(device, anneal, inv_s_kind):
    inp = random_inputs(9, 24, device, n_out=8, seed=3)
    inv_s = {"python_float": 37.5, "0-d": torch.tensor(37.5, dtype=F64, device=device),
             "[1]": torch.tensor([37.5], dtype=F64, device=device),
             "[n_rays]": inp["inv_s"]}[inv_s_kind]
    inp["inv_s"] = inv_s
    out = call(fastfield.composite_sdf, inp, anneal)
    expected = call(reference.composite_sdf, inp, anneal)
    for name in OUTPUTS:
        assert_close_per_ray(getattr(out, name), getattr(expected, name), rtol=1e-12, atol=ATOL64)
    if inv_s_kind != "python_float":
        _, grads = outputs_and_grads(fastfield.composite_sdf, inp, anneal)
        _, want = outputs_and_grads(reference.composite_sdf, inp, anneal)
        assert grads["inv_s"].shape == inv_s.shape
        torch.testing.assert_close(grads["inv_s"], want["inv_s"], rtol=1e-10, atol=1e-12)
        for name in ("sdf", "cos", "rgb", "bg_alpha", "bg_rgb"):
            assert_close_per_ray(grads[name], want[name], rtol=1e-10, atol=1e-14)


def test_scalar_inv_s_gradient_is_the_sum_over_rays(device):
    inp = random_inputs(6, 16, device, seed=4)
    inp["inv_s"] = torch.tensor(50.0, dtype=F64, device=device)
    _, scalar = outputs_and_grads(fastfield.composite_sdf, inp, 0.3)
    inp["inv_s"] = inp["inv_s"].expand(6).clone()
    _, per_ray = outputs_and_grads(fastfield.composite_sdf, inp, 0.3)
    assert scalar["inv_s"].shape == ()
    torch.testing.assert_close(scalar["inv_s"], per_ray["inv_s"].sum(), rtol=1e-13, atol=0)


@pytest.mark.parametrize("inv_s", [1e4, 1e6])
@pytest.mark.parametrize("dtype", [F64, F32])
def test_saturated_sigmoids_and_the_clip(device, inv_s, dtype):
    """Large inv_s saturates the sigmoids: alpha reaches exactly 1 at the surface crossing (the
    clip's upper bound) and ~1e-5 elsewhere; a few negative dists make raw < 0 (clipped to 0,
    zero gradient there, as torch.clamp). Values and gradients still follow the reference."""
    inp = neus_inputs(32, 64, device, n_out=16, seed=5, inv_s=(inv_s, inv_s))
    inp["sdf"][:4, 10] = 0.0
    inp["dists"][:4, 10] = -0.05
    inp["cos"][:4, 10] = -0.8
    x = cast(inp, dtype)
    out, grads = outputs_and_grads(fastfield.composite_sdf, x, 0.5)
    want, want_grads = outputs_and_grads(reference.composite_sdf, cast(x, F64), 0.5)
    assert (out.alpha == 1).any() and (out.alpha[:4, 10] == 0).all()
    assert (grads["sdf"][:4, 10] == 0).all() and (grads["cos"][:4, 10] == 0).all()
    tol = 1e-12 if dtype == F64 else F32_VALUES
    for name in OUTPUTS:
        assert_close_per_ray(getattr(out, name), getattr(want, name), rtol=tol, atol=ATOL64)
    for name, grad in grads.items():
        assert torch.isfinite(grad).all()
        if name != "inv_s":
            # Absolute slack: the reference's own sigmoid'(x) = y (1 - y) is only exact to
            # ~1e-16 absolute where y saturates, which inv_s multiplies. At inv_s = 1e6 the SDF
            # gradients are ~1e-52 (below float32's range; torch versions differ on whether
            # float64 sigmoid' keeps them): below 1e-30, a gradient counts as zero.
            floor = 1e-10 * want_grads[name].abs().max().item() + 1e-30
            assert_close_per_ray(grad, want_grads[name], rtol=tol * 10, atol=floor)


# ----------------------------------------------------------------------------- gradients

def inv_s_terms(inp, anneal, grad_outputs):
    """[n_rays, n_in]: each SDF sample's term of dL/dinv_s (float64 reference, padded inputs):
    the reference run with inv_s expanded to one leaf per sample."""
    x = cast(inp, F64)
    per_sample = x["inv_s"][:, None].expand_as(x["sdf"]).clone().requires_grad_()
    out = call(reference.composite_sdf, {**x, "inv_s": per_sample}, anneal)
    return torch.autograd.grad(list(out), [per_sample], grad_outputs)[0]


@pytest.mark.parametrize("layout", ["padded", "padded_bg", "packed"])
def test_float32_gradients_match_float64_neus_like(device, layout):
    """NeuS-like rays, inv_s 20..2000: float32 gradients within 1e-4 of each ray's gradient
    norm of the float64 reference (evaluated on the same float32 inputs), plus an absolute
    1e-10 of the largest ray norm for rays whose gradient all but vanishes (their samples sit
    where s * sdf > 30, in which the reference itself only carries ~1e-16 * inv_s absolute).
    dL/dinv_s is one number per ray, the sum of its samples' terms, which cancel (samples before
    and behind the surface pull inv_s both ways: the sum of their sizes is up to 1600x the
    total here): its norm is that of its terms, whose float32 rounding alone moves the sum by
    ~1e-4 of itself on such rays, whichever order they are added in (the CPU walk and the CUDA
    tiles land on either side of 1e-4)."""
    n_rays, n_in = 128, 128
    padded = cast(neus_inputs(n_rays, n_in, device, n_out=32 if layout == "padded_bg" else None,
                              seed=6), F32)
    inp, offsets = to_packed(padded) if layout == "packed" else (padded, None)
    out, grads = outputs_and_grads(fastfield.composite_sdf, inp, 0.5, offsets)
    cot = [c.double() for c in cotangents(out)]
    want, want_grads = outputs_and_grads(reference.composite_sdf, cast(inp, F64), 0.5, offsets,
                                         cot)
    terms = inv_s_terms(padded, 0.5, [c.reshape(o.shape) for c, o in zip(cot, call(
        reference.composite_sdf, cast(padded, F64), 0.5))])
    for name, grad in grads.items():
        got, expected = grad.reshape(n_rays, -1), want_grads[name].reshape(n_rays, -1)
        scale = (terms if name == "inv_s" else expected).norm(dim=1, keepdim=True)
        floor = 1e-10 * expected.norm(dim=1).max().item()
        bad = (got.double() - expected).abs() > 1e-4 * scale + floor
        assert not bad.any(), f"{name}: {int(bad.sum())} values off, rays {bad.any(1).nonzero()[:5, 0].tolist()}"
    torch.testing.assert_close(want_grads["inv_s"], terms.sum(1), rtol=1e-10, atol=1e-14)
    for name in OUTPUTS:
        assert_close_per_ray(getattr(out, name).reshape(n_rays, -1),
                             getattr(want, name).reshape(n_rays, -1), rtol=F32_VALUES)


@pytest.mark.parametrize("layout", ["padded", "padded_bg", "packed", "scalar_inv_s"])
def test_gradcheck(device, layout):
    """Finite differences need a smooth neighbourhood, so the inputs stay away from the kinks:
    cos in +-[0.2, 0.8] (relu(-cos) bends at 0, relu(0.5 - 0.5 cos) at 1), moderate inv_s and
    small |sdf| so that no sigmoid saturates and raw stays strictly inside (0, 1) (the clip)."""
    inp = random_inputs(3, 5, device, n_out=2 if layout == "padded_bg" else None, seed=7,
                        inv_s=(5.0, 15.0))
    sign = torch.where(torch.arange(15, device=device).reshape(3, 5) % 2 == 0, 1.0, -1.0)
    inp["cos"] = sign.to(F64) * (0.2 + 0.6 * inp["cos"].abs())
    offsets = None
    if layout == "packed":
        inp, offsets = to_packed(inp)
    if layout == "scalar_inv_s":
        inp["inv_s"] = torch.tensor(9.0, dtype=F64, device=device)
    names = [k for k in DIFFERENTIABLE if k in inp]
    raw = call(fastfield.composite_sdf, inp, 0.4, offsets).alpha
    assert (raw > 0).all() and (raw < 1).all()

    def fn(*leaves):
        return tuple(call(fastfield.composite_sdf, {**inp, **dict(zip(names, leaves))}, 0.4,
                          offsets))

    leaves = [inp[k].detach().clone().requires_grad_() for k in names]
    assert torch.autograd.gradcheck(fn, leaves)


def test_relu_kinks_follow_torch(device):
    """At cos = 0 and cos = 1 exactly (the kinks of relu(-cos) and relu(-0.5 cos + 0.5)), the
    gradient uses relu'(0) = 0, as torch's autograd does."""
    inp = random_inputs(4, 9, device, n_out=2, seed=18)
    inp["cos"][:, :3] = torch.tensor([0.0, 1.0, -1.0], dtype=F64, device=device)
    for anneal in (0.0, 0.5, 1.0):
        _, grads = outputs_and_grads(fastfield.composite_sdf, inp, anneal)
        _, want = outputs_and_grads(reference.composite_sdf, inp, anneal)
        assert_close_per_ray(grads["cos"], want["cos"], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("output", OUTPUTS)
def test_each_output_alone_drives_the_backward(device, output):
    """With set_materialize_grads(False), only the used output sends a gradient; each must
    reach the inputs exactly as the reference's autograd says."""
    inp = random_inputs(8, 12, device, n_out=4, seed=8)
    grads = {}
    for name, fn in (("kernel", fastfield.composite_sdf), ("reference", reference.composite_sdf)):
        leaves = {k: inp[k].clone().requires_grad_() for k in DIFFERENTIABLE}
        out = getattr(call(fn, {**inp, **leaves}, 0.7), output)
        g = torch.Generator().manual_seed(9)
        weight = torch.randn(out.shape, generator=g, dtype=F64).to(device)
        grads[name] = torch.autograd.grad((out * weight).sum(), list(leaves.values()),
                                          allow_unused=True)
    for got, want in zip(grads["kernel"], grads["reference"]):
        want = torch.zeros_like(got) if want is None else want
        assert_close_per_ray(got.reshape(8, -1), want.reshape(8, -1), rtol=1e-10, atol=1e-14)


# ----------------------------------------------------------------------------- layouts

def test_packed_equals_padded(device):
    inp = random_inputs(10, 24, device, seed=10)
    packed, offsets = to_packed(inp)
    out_p, grads_p = outputs_and_grads(fastfield.composite_sdf, inp, 0.5)
    cot = [c.reshape(-1) if c.dim() == 2 and c.shape[1] == 24 else c for c in cotangents(out_p)]
    out_k, grads_k = outputs_and_grads(fastfield.composite_sdf, packed, 0.5, offsets, cot)
    torch.testing.assert_close(out_k.rgb, out_p.rgb, rtol=0, atol=0)
    torch.testing.assert_close(out_k.acc, out_p.acc, rtol=0, atol=0)
    torch.testing.assert_close(out_k.weights, out_p.weights.reshape(-1), rtol=0, atol=0)
    torch.testing.assert_close(out_k.alpha, out_p.alpha.reshape(-1), rtol=0, atol=0)
    for name in ("sdf", "cos", "rgb", "inv_s"):
        torch.testing.assert_close(grads_k[name], grads_p[name].reshape(grads_k[name].shape),
                                   rtol=0, atol=0)


def test_packed_ragged_with_empty_rays_matches_reference(device):
    counts = [24, 0, 3, 24, 0, 11]
    inp = random_inputs(6, 24, device, seed=11)
    keep = torch.arange(24, device=device)[None, :] < torch.tensor(counts, device=device)[:, None]
    packed = {k: inp[k][keep] for k in ("sdf", "cos", "dists", "rgb")}
    packed["inv_s"] = inp["inv_s"]
    offsets = random_offsets(counts, device)
    out, grads = outputs_and_grads(fastfield.composite_sdf, packed, 0.5, offsets)
    want, want_grads = outputs_and_grads(reference.composite_sdf, packed, 0.5, offsets)
    for name in OUTPUTS:
        torch.testing.assert_close(getattr(out, name), getattr(want, name), rtol=1e-12,
                                   atol=1e-14)
    for name in grads:
        torch.testing.assert_close(grads[name], want_grads[name], rtol=1e-10, atol=1e-13)
    for ray in (1, 4):  # empty rays: nothing composited, no gradient to their inv_s
        assert out.acc[ray].item() == 0.0 and (out.rgb[ray] == 0).all()
        assert grads["inv_s"][ray].item() == 0.0


def test_zero_rays_and_zero_samples(device):
    for n_rays, n_in, n_out in ((0, 8, None), (0, 8, 4), (4, 0, None), (4, 0, 3), (4, 3, 0)):
        inp = random_inputs(n_rays, n_in, device, n_out=n_out)
        out, grads = outputs_and_grads(fastfield.composite_sdf, inp, 0.5)
        assert out.rgb.shape == (n_rays, 3) and out.acc.shape == (n_rays,)
        assert out.weights.shape == (n_rays, n_in + (n_out or 0))
        for name, grad in grads.items():
            assert grad.shape == inp[name].shape
        if n_out is None:
            assert (out.acc == 0).all() and (out.rgb == 0).all()
        want = call(reference.composite_sdf, inp, 0.5)
        torch.testing.assert_close(out.rgb, want.rgb, rtol=1e-12, atol=1e-14)
    empty = torch.zeros(0, dtype=F64, device=device)
    out = fastfield.composite_sdf(empty, empty, empty, 10.0, empty.reshape(0, 3), 0.0,
                                  ray_offsets=torch.zeros(1, dtype=torch.long, device=device))
    assert out.rgb.shape == (0, 3) and out.weights.shape == (0,)


def test_bool_inside_equals_float_inside(device):
    inp = random_inputs(5, 9, device, n_out=3, seed=12)
    as_bool = {**inp, "inside": inp["inside"] > 0.5}
    for a, b in zip(call(fastfield.composite_sdf, as_bool, 0.5),
                    call(fastfield.composite_sdf, inp, 0.5)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_non_contiguous_inputs(device):
    inp = random_inputs(8, 12, device, n_out=5, seed=13)
    expected = call(fastfield.composite_sdf, inp, 0.5)
    strided = {k: v.t().contiguous().t() if v.dim() == 2 else v for k, v in inp.items()}
    for k in ("rgb", "bg_rgb"):
        strided[k] = inp[k].permute(2, 0, 1).contiguous().permute(1, 2, 0)
    strided["inv_s"] = torch.stack([inp["inv_s"], inp["inv_s"]], 1)[:, 0]
    assert not any(v.is_contiguous() for v in strided.values())
    for a, b in zip(call(fastfield.composite_sdf, strided, 0.5), expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_nan_stays_in_its_ray(device):
    inp = random_inputs(4, 16, device, seed=14)
    inp["sdf"][2, 5] = float("nan")
    out, grads = outputs_and_grads(fastfield.composite_sdf, inp, 0.5)
    assert torch.isnan(out.alpha[2, 5]) and torch.isnan(out.weights[2, 5:]).all()
    assert torch.isfinite(out.weights[2, :5]).all() and torch.isfinite(out.alpha[2, :5]).all()
    assert torch.isnan(out.rgb[2]).all() and torch.isnan(out.acc[2])
    others = [0, 1, 3]
    for t in (out.rgb, out.acc, out.weights, out.alpha, grads["sdf"], grads["cos"],
              grads["rgb"], grads["inv_s"]):
        assert torch.isfinite(t[others]).all()


# ----------------------------------------------------------------------------- dispatcher

def test_opcheck(device):
    inp = random_inputs(5, 7, device, n_out=3, seed=15)
    fwd, bwd = torch.ops.fastfield.composite_sdf_fwd, torch.ops.fastfield.composite_sdf_bwd
    leaf = inp["sdf"].clone().requires_grad_()
    background = (inp["inside"], inp["bg_alpha"], inp["bg_rgb"])
    torch.library.opcheck(fwd, (leaf, inp["cos"], inp["dists"], inp["inv_s"], inp["rgb"], 0.5,
                                *background, None))
    scalar = torch.tensor(30.0, dtype=F64, device=device, requires_grad=True)
    torch.library.opcheck(fwd, (leaf, inp["cos"], inp["dists"], scalar, inp["rgb"], 0.5,
                                None, None, None, None))
    packed, offsets = to_packed(inp)
    torch.library.opcheck(fwd, (packed["sdf"].requires_grad_(), packed["cos"], packed["dists"],
                                packed["inv_s"], packed["rgb"], 1.0, None, None, None, offsets))
    r = lambda *shape: torch.rand(*shape, dtype=F64, device=device)  # noqa: E731
    torch.library.opcheck(bwd, (r(5, 3), r(5), r(5, 10), r(5, 10), inp["sdf"], inp["cos"],
                                inp["dists"], inp["inv_s"], inp["rgb"], 0.5, *background, None))
    torch.library.opcheck(bwd, (None, r(5), None, None, packed["sdf"].detach(), packed["cos"],
                                packed["dists"], scalar.detach(), packed["rgb"], 0.0, None, None,
                                None, offsets))


def test_torch_compile_fullgraph():
    inp = cast(random_inputs(8, 16, "cpu", n_out=4), F32)
    inv_s = torch.tensor(40.0, requires_grad=True)

    def render(sdf, rgb):
        out = fastfield.composite_sdf(sdf, inp["cos"], inp["dists"], inv_s, torch.sigmoid(rgb),
                                      0.5, inp["inside"], inp["bg_alpha"], inp["bg_rgb"])
        return (out.rgb - 0.5).abs().mean() + out.acc.mean()

    compiled = torch.compile(render, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(inp["sdf"], inp["rgb"]), render(inp["sdf"], inp["rgb"]))
    s = inp["sdf"].clone().requires_grad_()
    compiled(s, inp["rgb"]).backward()
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
    assert inv_s.grad is not None and torch.isfinite(inv_s.grad)


def test_autocast_upcasts_half_precision():
    inp = cast(random_inputs(4, 6, "cpu"), F32)
    low = {**inp, "sdf": inp["sdf"].bfloat16(), "rgb": inp["rgb"].bfloat16()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = call(fastfield.composite_sdf, low, 0.5)
    assert out.rgb.dtype == F32
    expected = call(fastfield.composite_sdf, cast(low, F32), 0.5)
    torch.testing.assert_close(out.rgb, expected.rgb)


def test_cuda_matches_cpu(cuda):
    """Same float32 inputs on both devices: per-ray outputs to ~1e-6 relative, per-sample values
    and gradients relative to each ray's norm (expf differs in the last bits between the CPU
    polynomial and CUDA's, and (p + 1e-5) / (c + 1e-5) amplifies that for single samples)."""
    for layout in ("padded", "padded_bg", "packed"):
        inp = cast(neus_inputs(300, 96, "cpu", n_out=32 if layout == "padded_bg" else None,
                               seed=16), F32)
        offsets = None
        if layout == "packed":
            inp, offsets = to_packed(inp)
        results = {}
        for dev in ("cpu", cuda):
            x = {k: v.to(dev) for k, v in inp.items()}
            out, grads = outputs_and_grads(fastfield.composite_sdf, x, 0.5,
                                           None if offsets is None else offsets.to(dev))
            results[str(dev)] = (out, grads)
        (cpu_out, cpu_grads), (cuda_out, cuda_grads) = results["cpu"], results["cuda"]
        for name in OUTPUTS:
            assert_close_per_ray(getattr(cuda_out, name).cpu().reshape(300, -1),
                                 getattr(cpu_out, name).reshape(300, -1), rtol=F32_VALUES)
        for name, grad in cpu_grads.items():
            floor = 1e-10 * grad.reshape(300, -1).norm(dim=1).max().item()
            assert_close_per_ray(cuda_grads[name].cpu().reshape(300, -1), grad.reshape(300, -1),
                                 rtol=1e-4, atol=floor)


# ----------------------------------------------------------------------------- bad input

def test_bad_shapes_dtypes(device):
    inp = cast(random_inputs(4, 6, device, n_out=2), F32)
    cs = lambda **kw: call(fastfield.composite_sdf, {**inp, **kw}, 0.5)  # noqa: E731
    with pytest.raises(ValueError, match=r"sdf must be \[n_rays, n_in\]"):
        cs(sdf=inp["sdf"][None])
    with pytest.raises(ValueError, match=r"cos must be \[n_rays, n_in\]"):
        cs(cos=inp["cos"][:, :5])
    with pytest.raises(ValueError, match=r"dists must be \[n_rays, n_in\]"):
        cs(dists=inp["dists"][:3])
    with pytest.raises(ValueError, match=r"rgb must be \[n_rays, n_in, 3\]"):
        cs(rgb=inp["rgb"][..., :2])
    with pytest.raises(ValueError, match=r"inside must be \[n_rays, n_in\]"):
        cs(inside=inp["inside"][:, :5])
    with pytest.raises(ValueError, match=r"bg_alpha must be \[n_rays, n_in \+ n_out\]"):
        cs(bg_alpha=inp["bg_alpha"][:, :5])
    with pytest.raises(ValueError, match=r"bg_rgb must be \[n_rays, n_in \+ n_out, 3\]"):
        cs(bg_rgb=inp["bg_rgb"][:, :7])
    with pytest.raises(ValueError, match=r"inv_s must be a scalar \(0-d or \[1\]\) or \[n_rays\]"):
        cs(inv_s=inp["inv_s"][:3])
    with pytest.raises(ValueError, match=r"inv_s must be a scalar"):
        cs(inv_s=inp["inv_s"][:, None])
    with pytest.raises(TypeError, match="inv_s must be a float or a tensor"):
        cs(inv_s="40")
    with pytest.raises(TypeError, match="sdf must be float32 or float64"):
        cs(sdf=inp["sdf"].long())
    with pytest.raises(TypeError, match="cos must have the dtype of sdf"):
        cs(cos=inp["cos"].double())
    with pytest.raises(TypeError, match="inv_s must have the dtype of sdf"):
        cs(inv_s=inp["inv_s"].double())
    with pytest.raises(TypeError, match="inside must have the dtype of sdf"):
        cs(inside=inp["inside"].long())
    with pytest.raises(TypeError, match="bfloat16"):
        cs(sdf=inp["sdf"].bfloat16())
    with pytest.raises(TypeError, match="rgb must be a torch.Tensor"):
        cs(rgb=[0.5, 0.5, 0.5])
    if device.type == "cpu" and torch.cuda.is_available():
        with pytest.raises(ValueError, match="same device"):
            cs(rgb=inp["rgb"].cuda())


@pytest.mark.parametrize("missing", ["inside", "bg_alpha", "bg_rgb"])
def test_background_needs_all_three(missing):
    inp = random_inputs(3, 4, "cpu", n_out=2)
    with pytest.raises(ValueError, match=f"inside, bg_alpha and bg_rgb together, but {missing}"):
        call(fastfield.composite_sdf, {**inp, missing: None}, 0.5)


def test_packed_rejects_background():
    inp = random_inputs(3, 4, "cpu", n_out=2)
    packed, offsets = to_packed(inp)
    with pytest.raises(ValueError, match="packed layout .* takes no background model"):
        call(fastfield.composite_sdf, {**packed, "inside": inp["inside"].reshape(-1),
                                       "bg_alpha": inp["bg_alpha"], "bg_rgb": inp["bg_rgb"]},
             0.5, offsets)


BAD_OFFSETS = {
    "decreasing": ([0, 5, 3, 12], "non-decreasing"),
    "past the samples": ([0, 5, 9, 40], r"ray_offsets\[-1\] must equal"),
    "negative start": ([-3, 5, 9, 12], r"ray_offsets\[0\] must be 0"),
    "short of the samples": ([0, 5, 9, 11], r"ray_offsets\[-1\] must equal"),
}


def packed_12():
    inp, _ = to_packed(random_inputs(3, 4, "cpu", seed=17))
    return inp


@pytest.mark.parametrize("case", sorted(BAD_OFFSETS))
def test_bad_ray_offsets(case):
    values, message = BAD_OFFSETS[case]
    with pytest.raises(ValueError, match=message):
        call(fastfield.composite_sdf, packed_12(), 0.5, torch.tensor(values))


def test_ray_offsets_dtype_and_shape():
    inp = packed_12()
    with pytest.raises(TypeError, match="ray_offsets must be int64"):
        call(fastfield.composite_sdf, inp, 0.5, torch.tensor([0, 4, 8, 12], dtype=torch.int32))
    with pytest.raises(ValueError, match=r"ray_offsets must be \[n_rays \+ 1\]"):
        call(fastfield.composite_sdf, inp, 0.5, torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"sdf must be \[n_samples\] \(packed"):
        call(fastfield.composite_sdf, {**inp, "sdf": inp["sdf"].reshape(3, 4)}, 0.5,
             torch.tensor([0, 4, 8, 12]))
    with pytest.raises(ValueError, match=r"inv_s must be a scalar .* \[n_rays\] = \[3\]"):
        call(fastfield.composite_sdf, {**inp, "inv_s": inp["inv_s"][:2]}, 0.5,
             torch.tensor([0, 4, 8, 12]))


def test_bad_incoming_gradients():
    inp = random_inputs(3, 4, "cpu", n_out=2)
    args = (inp["sdf"], inp["cos"], inp["dists"], inp["inv_s"], inp["rgb"], 0.5, inp["inside"],
            inp["bg_alpha"], inp["bg_rgb"], None)
    bwd = torch.ops.fastfield.composite_sdf_bwd
    with pytest.raises(ValueError, match=r"grad_weights must have the shape of the weights"):
        bwd(None, None, torch.ones(3, 4, dtype=F64), None, *args)
    with pytest.raises(ValueError, match=r"grad_rgb must be \[n_rays, 3\]"):
        bwd(torch.ones(3, 4, dtype=F64), None, None, None, *args)


@pytest.mark.parametrize("case", sorted(BAD_OFFSETS))
def test_unchecked_bad_offsets_stay_in_bounds(case, unchecked_values):
    """With value checks off (CUDA's default), invalid offsets are clamped inside the kernel:
    results are defined and finite, nothing is read or written outside the tensors."""
    values, _ = BAD_OFFSETS[case]
    out, grads = outputs_and_grads(fastfield.composite_sdf, packed_12(), 0.5,
                                   torch.tensor(values))
    assert all(torch.isfinite(o).all() for o in out)
    assert all(torch.isfinite(g).all() for g in grads.values())
