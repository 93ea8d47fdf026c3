"""Tiles against the production CPU kernels and the float64 reference, op by op: the CUDA
kernels' tile code (csrc/common/tile.h), emulated on the CPU at widths 1, 8 and 32, computes the
same function with its additions and products reordered; how far that moves each result, per
ray, is bounded here. Long rays, many short packed ones, the samples no ray owns."""
import pytest
import torch

import fastfield
from fastfield import reference
from fastfield._backend import cpu_tile_emulation, value_checks
from helpers import assert_close_per_ray, random_offsets
from test_tile import width  # noqa: F401  (the fixture: tiles emulated at 1, 8, 32 lanes)
import test_composite_sdf as sdf
import test_pdf as pdf

F64, F32 = torch.float64, torch.float32
CPU = torch.device("cpu")


# ----------------------------------------------------------------------------- tiles against the
# production CPU kernels: the same function, the scans' additions and products reordered.

def packed_lengths(n_rays, high, seed):
    """Ray lengths drawn from 0 .. high (some empty), as occupancy-grid marching leaves them."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, high + 1, (n_rays,), generator=g)
    lengths[::7] = 0
    return lengths


def density_packed(lengths, dtype, seed=0):
    n = int(lengths.sum())
    g = torch.Generator().manual_seed(seed)
    sigma = torch.relu(torch.randn(n, generator=g, dtype=F64) * 3)
    rgb = torch.rand(n, 3, generator=g, dtype=F64)
    deltas = 0.005 + 0.05 * torch.rand(n, generator=g, dtype=F64)
    t = torch.rand(n, generator=g, dtype=F64) * 4 + 2
    return [x.to(dtype) for x in (sigma, rgb, deltas, t)], random_offsets(lengths, CPU)


def density_outputs_and_grads(sigma, rgb, deltas, t, offsets, bg,
                              fn=fastfield.composite_density):
    leaves = [x.detach().clone().requires_grad_() for x in (sigma, rgb, t, bg)]
    out = fn(leaves[0], leaves[1], deltas, leaves[2], offsets, leaves[3])
    g = torch.Generator().manual_seed(5)
    cot = [torch.randn(o.shape, generator=g, dtype=F64).to(o.dtype) for o in out]
    grads = torch.autograd.grad(list(out), leaves, cot)
    return list(out) + list(grads)


def per_ray_rows(x, offsets):
    """Per-sample values [n_samples, ...] as [n_rays, max_len * ...] rows (zero-padded), so that
    assert_close_per_ray compares each ray relative to its own norm."""
    lengths = (offsets[1:] - offsets[:-1]).tolist()
    width = max(lengths + [1])
    rows = x.new_zeros(len(lengths), width, *x.shape[1:])
    for r, (start, n) in enumerate(zip(offsets[:-1].tolist(), lengths)):
        rows[r, :n] = x[start:start + n]
    return rows.reshape(len(lengths), -1)


def assert_density_close(got, want, offsets, rtol):
    """composite_density outputs and gradients (density_outputs_and_grads order) per ray: the
    per-sample ones as rows of their ray; the background's gradient g_rgb (1 - acc) absolutely,
    as acc's error scaled by g_rgb (relative to itself it is noise where acc is 1)."""
    names = ["rgb", "depth", "acc", "weights", "grad_sigma", "grad_rgb", "grad_t", "grad_bg"]
    for name, a, b in zip(names, got, want):
        if name in ("weights", "grad_sigma", "grad_rgb", "grad_t"):
            a, b = per_ray_rows(a, offsets), per_ray_rows(b, offsets)
        tol = rtol[name.startswith("grad")]
        assert_close_per_ray(a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1), rtol=tol,
                             atol=tol if name == "grad_bg" else 0.0)


@pytest.mark.parametrize("high", [40, 512], ids=["short_rays", "long_rays"])
def test_density_tiles_match_production_per_ray(width, high):
    """float32, packed rays of 0 .. high samples, per ray relative to the ray's norm:
    - against width 1 (the same exp; the chunked scans alone: products within a chunk with the
      transmittance carried multiplicatively, per-lane sums, the backward's reverse affine
      scan): 3e-6, the reordering of the additions and products;
    - against the production kernels (sequential scans over a polynomial exp within 2 ulp):
      1e-5, the exp's last bits amplified by alpha = 1 - exp(-sigma delta) where it is small;
    - against the float64 reference: 3e-5 for the outputs (the same cancellation in float32;
      rays of a few thin samples have it throughout), 1e-4 for the gradients."""
    lengths = packed_lengths(300, high, seed=high)
    (sigma, rgb, deltas, t), offsets = density_packed(lengths, F32)
    bg = torch.rand(300, 3)
    tiles = density_outputs_and_grads(sigma, rgb, deltas, t, offsets, bg)
    with cpu_tile_emulation(1):
        one_lane = density_outputs_and_grads(sigma, rgb, deltas, t, offsets, bg)
    with cpu_tile_emulation(0):
        production = density_outputs_and_grads(sigma, rgb, deltas, t, offsets, bg)
        exact = density_outputs_and_grads(*(x.double() for x in (sigma, rgb, deltas, t)), offsets,
                                          bg.double(), reference.composite_density)
    assert_density_close(tiles, one_lane, offsets, (3e-6, 3e-6))
    assert_density_close(tiles, production, offsets, (1e-5, 1e-5))
    assert_density_close(tiles, exact, offsets, (3e-5, 1e-4))


def test_density_one_ray_of_10000_samples(width):
    """One ray of 10000 thin samples (313 chunks of 32) through which light reaches the far end:
    float64 values and gradients against the reference to rounding; float32 against the float64
    reference on the same inputs. The float32 bounds: 5e-6 for rgb, depth, acc and dL/dsigma
    (10000 float32 additions in sequence -- the production walk's and width 1's -- lose ~3.5e-6;
    the wider tiles' shorter per-lane sums less); 2e-4 for weights, dL/drgb, dL/dt (alpha =
    1 - exp(-sigma delta) in float32 keeps ~1e-4 of alpha at sigma delta ~ 1e-4, identically in
    every implementation, nerf-pytorch's included); 2e-5 absolute for the background's
    gradient g_rgb (1 - acc)."""
    g = torch.Generator().manual_seed(0)
    n = 10000
    sigma = torch.rand(1, n, generator=g, dtype=F64) * 0.05
    rgb = torch.rand(1, n, 3, generator=g, dtype=F64)
    t = torch.linspace(2, 60, n, dtype=F64)[None]
    deltas = torch.full((1, n), 58.0 / n, dtype=F64)
    bg = torch.rand(3, dtype=F64)
    want = density_outputs_and_grads(sigma, rgb, deltas, t, None, bg, reference.composite_density)
    assert 0.5 < want[2].item() < 0.95  # light reaches the far end: every chunk matters
    got = density_outputs_and_grads(sigma, rgb, deltas, t, None, bg)
    for a, b in zip(got, want):
        assert_close_per_ray(a.reshape(1, -1), b.reshape(1, -1), rtol=1e-12)
    x32 = [v.float() for v in (sigma, rgb, deltas, t, bg)]
    want = density_outputs_and_grads(*(v.double() for v in x32[:4]), None, x32[4].double(),
                                     reference.composite_density)
    got = density_outputs_and_grads(*x32[:4], None, x32[4])
    bounds = [(5e-6, 0), (5e-6, 0), (5e-6, 0), (2e-4, 0), (5e-6, 0), (2e-4, 0), (2e-4, 0),
              (0, 2e-5)]
    for a, b, (rtol, atol) in zip(got, want, bounds):
        assert_close_per_ray(a.reshape(1, -1), b.reshape(1, -1), rtol=rtol, atol=atol)


def sdf_packed(lengths, dtype, seed=0):
    inp = sdf.neus_inputs(len(lengths), int(lengths.max()), CPU, seed=seed)
    keep = torch.arange(inp["sdf"].shape[1])[None] < lengths[:, None]
    packed = {k: inp[k][keep].to(dtype) for k in ("sdf", "cos", "dists", "rgb")}
    packed["inv_s"] = inp["inv_s"].to(dtype)
    return packed, random_offsets(lengths, CPU)


@pytest.mark.parametrize("layout", ["packed", "padded_bg"])
def test_sdf_tiles_match_production_per_ray(width, layout):
    """float32 NeuS-like rays: tiles against the production kernels (vectorised passes around a
    sequential scan) per ray, gradients within 1e-4 of each ray's norm."""
    if layout == "packed":
        inp, offsets = sdf_packed(packed_lengths(200, 160, seed=3), F32)
    else:
        inp, offsets = sdf.cast(sdf.neus_inputs(64, 96, CPU, n_out=32, seed=4), F32), None
    out, grads = sdf.outputs_and_grads(fastfield.composite_sdf, inp, 0.5, offsets)
    with cpu_tile_emulation(0):
        prod_out, prod_grads = sdf.outputs_and_grads(fastfield.composite_sdf, inp, 0.5, offsets,
                                                     sdf.cotangents(out))
    n_rays = out.rgb.shape[0]

    def rows(x):
        return per_ray_rows(x, offsets) if offsets is not None and x.shape[0] != n_rays else \
            x.reshape(n_rays, -1)

    for name in sdf.OUTPUTS:
        assert_close_per_ray(rows(getattr(out, name)), rows(getattr(prod_out, name)),
                             rtol=sdf.F32_VALUES)
    for name, grad in grads.items():
        got, want = rows(grad.reshape(-1, *grad.shape[2:]) if name != "inv_s" else grad), \
            rows(prod_grads[name].reshape(-1, *grad.shape[2:]) if name != "inv_s"
                 else prod_grads[name])
        floor = 1e-10 * want.norm(dim=1).max().item()
        assert_close_per_ray(got, want, rtol=1e-4, atol=floor)


def test_sdf_one_ray_of_10000_samples(width):
    """One NeuS ray of 10000 samples in empty space (alpha ~1e-5 each, so light reaches the far
    end): float64 values and gradients against the reference to rounding."""
    inp = sdf.random_inputs(1, 10000, CPU, n_out=None, seed=9, inv_s=(30.0, 30.0))
    inp["sdf"] = 0.3 + inp["sdf"].abs()
    out, grads = sdf.outputs_and_grads(fastfield.composite_sdf, inp, 0.5)
    want, want_grads = sdf.outputs_and_grads(reference.composite_sdf, inp, 0.5, None,
                                             sdf.cotangents(out))
    assert 0.05 < want.acc.item() < 0.95
    for name in sdf.OUTPUTS:
        assert_close_per_ray(getattr(out, name), getattr(want, name), rtol=1e-12, atol=sdf.ATOL64)
    for name, grad in grads.items():
        assert_close_per_ray(grad.reshape(1, -1), want_grads[name].reshape(1, -1), rtol=1e-10,
                             atol=1e-14)


@pytest.mark.parametrize("kind", ["relu", "peaked", "zeros"])
def test_sample_pdf_tiles_bitwise_in_float32(width, kind):
    """float32: a double sum of float32 pdf values is exact in any order (pdf.h), so the tiles'
    CDF is the walk's and so is every sample, whatever the quantile order."""
    bins = pdf.make_bins(64, 62, CPU, F32, seed=2)
    weights = pdf.make_weights(64, 62, kind, CPU, F32, seed=3)
    for kwargs in ({"det": True}, {"det": "midpoint"}, {"u": torch.rand(64, 128)}):
        got = fastfield.sample_pdf(bins, weights, 128, **kwargs)
        with cpu_tile_emulation(0):
            want = fastfield.sample_pdf(bins, weights, 128, **kwargs)
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_neus_upsample_tiles_match_production(width):
    """The NeuS transmittance as a double product scan (carried multiplicatively) rounds to the
    same float32 weights as the walk's running product but for rare last-bit cases."""
    (o, d, t, s), _ = pdf.neus_inputs(200, 64, CPU, F32, seed=7)
    got = fastfield.neus_upsample(o, d, t, s, 16, 256)
    with cpu_tile_emulation(0):
        want = fastfield.neus_upsample(o, d, t, s, 16, 256)
    w = reference.neus_upsample_weights(o.double(), d.double(), t.double(), s.double(), 256)
    flips = pdf.assert_same_samples(got, want, t, w, 2e-6, torch.ones_like(got, dtype=torch.bool))
    assert flips <= 0.005 * got.numel()


@pytest.mark.parametrize("na,nb", [(64, 128), (3, 40), (40, 3), (1, 1), (0, 7), (100, 100)])
def test_merge_tiles_equal_the_walk(width, na, nb):
    """Sorted rows with ties and NaN: the tile merge (ranks by binary search over the other
    window) is the walk's merge exactly, index included; with descents (unchecked unsorted
    input) it hands the row to the walk from where it stands, which is still the walk's."""
    g = torch.Generator().manual_seed(na * 1000 + nb)
    a = ((torch.rand(16, na, generator=g) * 8).floor() / 8).sort(-1).values
    b = ((torch.rand(16, nb, generator=g) * 8).floor() / 8).sort(-1).values
    if na:
        a[3, -1] = float("nan")
    if nb > 1:
        b[5, -2:] = float("nan")
    for rows in ((a, b), (a.flip(-1), b)):
        with value_checks(-1):
            got = fastfield.merge_sorted(*rows)
            with cpu_tile_emulation(0):
                want = fastfield.merge_sorted(*rows)
        torch.testing.assert_close(got.index, want.index, rtol=0, atol=0)
        torch.testing.assert_close(got.merged, want.merged, rtol=0, atol=0, equal_nan=True)


def test_negative_weights_stay_in_bounds(width):
    """Weights below zero (a precondition violation) make the CDF descend, where the tiles'
    binary search and the walk may pick different bins: every sample still lies in the ray's
    bins, or is NaN where the walk's is."""
    bins = pdf.make_bins(32, 20, CPU)
    weights = torch.randn(32, 20, dtype=F64, generator=torch.Generator().manual_seed(0))
    out = fastfield.sample_pdf(bins, weights, 50, det="midpoint")
    inside = (out >= bins[:, :1]) & (out <= bins[:, -1:])
    assert (inside | torch.isnan(out)).all() and inside.float().mean() > 0.9


@pytest.mark.parametrize("jitter", ["per_sample", "per_ray", "none"])
@pytest.mark.parametrize("lindisp", [False, True])
def test_stratified_samples_per_sample_equal_per_ray(width, jitter, lindisp):
    """stratified_samples on CUDA computes each sample alone (a thread per sample); the CPU
    walks each ray in vectorised loops over the same per-sample formula (whose AVX2/AVX-512
    clones contract a * b + c into FMAs: the last bits may differ)."""
    g = torch.Generator().manual_seed(1)
    near = 0.5 + torch.rand(300, generator=g, dtype=F64)
    far = near + 3 * torch.rand(300, generator=g, dtype=F64)
    for n in (1, 2, 64):
        got = fastfield.stratified_samples(near, far, n, lindisp=lindisp, jitter=jitter,
                                           generator=torch.Generator().manual_seed(2))
        with cpu_tile_emulation(0):
            want = fastfield.stratified_samples(near, far, n, lindisp=lindisp, jitter=jitter,
                                                generator=torch.Generator().manual_seed(2))
        torch.testing.assert_close(got, want, rtol=1e-14, atol=1e-14)


# Clamped as ray_samples clamps them, rays leave samples unowned only before the first ray
# and after the last one (a decrease makes rays overlap or empty, never a gap between them).
UNOWNED_OFFSETS = {
    "before the first ray": [3, 5, 9, 12],
    "after the last ray": [0, 5, 9, 10],
    "both ends and a decrease": [2, 8, 4, 7],
    "no ray at all": [5],
}


@pytest.mark.parametrize("case", sorted(UNOWNED_OFFSETS))
def test_tiles_zero_the_samples_no_ray_owns(width, case):
    """The tiles write zeros to the packed samples that no ray owns (unchecked invalid offsets)
    instead of relying on zero-initialised outputs (csrc/common/math.h, unowned_samples): the
    outputs and gradients there are exactly 0 even in memory that held NaN before."""
    offsets = torch.tensor(UNOWNED_OFFSETS[case])
    n = 12
    owned = torch.zeros(n, dtype=torch.bool)
    for begin, end in zip(offsets[:-1].clamp(0, n).tolist(), offsets[1:].clamp(0, n).tolist()):
        owned[begin:max(begin, end)] = True
    assert not owned.all()
    (sigma, rgb, deltas, t), _ = density_packed(torch.tensor([n]), F64, seed=1)
    inp = {k: v.reshape(n, *v.shape[2:]) for k, v in
           sdf.random_inputs(1, n, CPU, seed=2).items() if k != "inv_s"}
    inp["inv_s"] = torch.full((len(offsets) - 1,), 40.0, dtype=F64)
    for _ in range(3):
        # Freed buffers of the outputs' sizes, full of NaN: the outputs' allocations may
        # recycle them.
        junk = [torch.full(shape, float("nan"), dtype=F64) for shape in [(n,), (n, 3)] * 8]
        del junk
        with value_checks(-1):
            out = density_outputs_and_grads(sigma, rgb, deltas, t, offsets, torch.ones(3,
                                                                                       dtype=F64))
            s_out, s_grads = sdf.outputs_and_grads(fastfield.composite_sdf, inp, 0.5, offsets)
        for x in (out[3], out[4], out[5], out[6], s_out.weights, s_out.alpha, s_grads["sdf"],
                  s_grads["cos"], s_grads["rgb"]):
            assert (x[~owned] == 0).all() and torch.isfinite(x).all()
