"""sample_pdf, merge_sorted, neus_upsample: values against the references, edge cases, index
guards under invalid input, errors, opcheck, compile, CUDA parity."""
import warnings

import pytest
import torch

import fastfield
# The wrapper module loads the kernels and registers the fake functions that opcheck and the
# direct torch.ops calls below need, whichever test a worker runs first.
import fastfield.ops.pdf  # noqa: F401
from fastfield import reference

F64 = torch.float64
F32 = torch.float32
DET_MODES = [True, "linspace", "midpoint", "u", "generator"]


# ----------------------------------------------------------------------------- inputs

def make_bins(n_rays, n_bins, device, dtype=F64, seed=0):
    """Strictly ascending bin edges in [2, 6], of uneven widths."""
    g = torch.Generator().manual_seed(seed)
    widths = 0.2 + torch.rand(n_rays, n_bins + 1, generator=g, dtype=F64)
    edges = widths.cumsum(-1)
    edges = 2 + 4 * (edges - edges[:, :1]) / (edges[:, -1:] - edges[:, :1]).clamp_min(1e-12)
    return edges.to(device, dtype)


def make_weights(n_rays, n_bins, kind, device, dtype=F64, seed=1):
    g = torch.Generator().manual_seed(seed)
    if kind == "relu":  # many exact zeros: empty bins, the 1e-5 threshold in play
        w = torch.relu(torch.randn(n_rays, n_bins, generator=g, dtype=F64))
    elif kind == "peaked":  # NeRF-like: composited density around a surface
        centre = torch.rand(n_rays, 1, generator=g, dtype=F64) * n_bins
        k = torch.arange(n_bins, dtype=F64)
        w = torch.exp(-((k - centre) / 1.5) ** 2) + 1e-3 * torch.rand(n_rays, n_bins, generator=g,
                                                                      dtype=F64)
    elif kind == "zeros":
        w = torch.zeros(n_rays, n_bins, dtype=F64)
    else:
        raise ValueError(kind)
    return w.to(device, dtype)


def draw_kwargs(mode, n_rays, n_samples, device, dtype, seed=3):
    """Keyword arguments selecting the quantiles; fresh generators give identical draws."""
    if mode == "u":
        g = torch.Generator().manual_seed(seed)
        return {"u": torch.rand(n_rays, n_samples, generator=g, dtype=F64).to(device, dtype)}
    if mode == "generator":
        return {"generator": torch.Generator(device=device).manual_seed(seed)}
    return {"det": mode}


# ----------------------------------------------------------------------------- comparisons

def cdf_at(bins, weights, x):
    """The reference's CDF (pdf = (w + 1e-5) / sum, linear within a bin) at x, in float64."""
    bins, w, x = bins.double(), weights.double() + 1e-5, x.double()
    pdf = w / w.sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), pdf.cumsum(-1)], -1)
    i = (torch.searchsorted(bins.contiguous(), x.contiguous(), right=True) - 1)
    i = i.clamp(0, pdf.shape[1] - 1)
    lo = bins.gather(1, i)
    frac = ((x - lo) / (bins.gather(1, i + 1) - lo)).clamp(0, 1)
    return cdf.gather(1, i) + frac * pdf.gather(1, i)


def assert_same_samples(out, expected, bins, weights, rtol, may_flip):
    """Samples of the same quantiles agree within rtol * (bins[-1] - bins[0]) of their ray.

    nerf-pytorch's ``denom < 1e-5 -> 1`` makes the inverse CDF jump across a near-empty bin
    (probability mass ~1e-5): where two roundings of the CDF take different sides, a sample
    moves within such a bin. Samples in ``may_flip`` may therefore differ in position, but
    only by that mass in probability (|F(out) - F(expected)| <= 2e-5, F the float64 CDF).
    Returns how many did.
    """
    assert out.shape == expected.shape and out.dtype == expected.dtype
    span = (bins[:, -1:] - bins[:, :1]).double()
    diff = (out.double() - expected.double()).abs()
    off = ~(diff <= rtol * span)
    if off.any():
        assert may_flip[off].all(), f"{int((off & ~may_flip).sum())} samples off, max {diff.max()}"
        mass = (cdf_at(bins, weights, out) - cdf_at(bins, weights, expected)).abs()
        assert (mass[off] <= 2e-5).all(), f"samples a bin apart: {mass[off].max()}"
    return int(off.sum())


# ----------------------------------------------------------------------------- sample_pdf

PDF_SHAPES = [(1, 1, 1), (6, 1, 9), (7, 63, 128), (33, 16, 1), (9, 64, 33), (4, 5, 0),
              (2, 5000, 64)]  # more bins than the CPU table inversion takes: the walk


@pytest.mark.parametrize("n_rays,n_bins,n_samples", PDF_SHAPES)
@pytest.mark.parametrize("mode", DET_MODES)
@pytest.mark.parametrize("kind", ["relu", "peaked", "zeros"])
def test_sample_pdf_matches_float64_reference(device, n_rays, n_bins, n_samples, mode, kind):
    bins = make_bins(n_rays, n_bins, device)
    weights = make_weights(n_rays, n_bins, kind, device)
    out = fastfield.sample_pdf(bins, weights, n_samples,
                               **draw_kwargs(mode, n_rays, n_samples, device, F64))
    expected = reference.sample_pdf(bins, weights, n_samples,
                                    **draw_kwargs(mode, n_rays, n_samples, device, F64))
    assert out.shape == (n_rays, n_samples) and out.dtype == F64 and out.device == bins.device
    # float64 rounds alike on both sides (u == 1 included: both CDFs are capped at 1).
    assert_same_samples(out, expected, bins, weights, 1e-11,
                        may_flip=torch.zeros_like(out, dtype=torch.bool))
    assert (out[:, 1:] >= out[:, :-1]).all()
    assert (out >= bins[:, :1]).all() and (out <= bins[:, -1:]).all()


@pytest.mark.parametrize("mode", DET_MODES)
@pytest.mark.parametrize("kind", ["relu", "peaked"])
def test_sample_pdf_float32_matches_float32_reference(device, mode, kind):
    """Same dtype on both sides: float32 CDFs round alike except for the normaliser (see
    fastfield.sample_pdf), so only near-empty bins may flip, and only rarely."""
    n_rays, n_bins, n_samples = 200, 62, 128
    bins = make_bins(n_rays, n_bins, device, F32, seed=5)
    weights = make_weights(n_rays, n_bins, kind, device, F32, seed=6)
    out = fastfield.sample_pdf(bins, weights, n_samples,
                               **draw_kwargs(mode, n_rays, n_samples, device, F32))
    expected = reference.sample_pdf(bins, weights, n_samples,
                                    **draw_kwargs(mode, n_rays, n_samples, device, F32))
    flips = assert_same_samples(out, expected, bins, weights, 2e-5,
                                may_flip=torch.ones_like(out, dtype=torch.bool))
    assert flips <= 0.005 * out.numel()
    assert (out[:, 1:] >= out[:, :-1]).all()


def test_seeded_generator_draws_like_the_reference():
    bins, weights = make_bins(5, 8, "cpu"), make_weights(5, 8, "relu", "cpu")
    draws = [fastfield.sample_pdf(bins, weights, 16, generator=torch.Generator().manual_seed(7))
             for _ in range(2)]
    torch.testing.assert_close(draws[0], draws[1], rtol=0, atol=0)
    expected = reference.sample_pdf(bins, weights, 16, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(draws[0], expected, rtol=1e-12, atol=1e-12)
    other = fastfield.sample_pdf(bins, weights, 16, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(other, draws[0])


def test_generator_on_another_device(device):
    """A generator draws on its own device and the quantiles move to the tensors'
    (fastfield/core/random.py): a CPU generator serves tensors anywhere with the same values,
    so the same seed gives the same samples on every device."""
    bins, weights = make_bins(5, 8, device), make_weights(5, 8, "relu", device)
    out = fastfield.sample_pdf(bins, weights, 16, generator=torch.Generator().manual_seed(7))
    expected = fastfield.sample_pdf(bins.cpu(), weights.cpu(), 16,
                                    generator=torch.Generator().manual_seed(7))
    assert out.device == bins.device
    torch.testing.assert_close(out.cpu(), expected, rtol=0, atol=1e-12)
    twin = reference.sample_pdf(bins, weights, 16, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(twin.cpu(), expected, rtol=0, atol=1e-12)
    if torch.cuda.is_available():  # and the other way round: a CUDA generator, CPU tensors
        other = "cpu" if device.type == "cuda" else "cuda"
        g = torch.Generator(device=other).manual_seed(7)
        out = fastfield.sample_pdf(bins, weights, 16, generator=g)
        again = fastfield.sample_pdf(bins.to(other), weights.to(other), 16,
                                     generator=torch.Generator(device=other).manual_seed(7))
        torch.testing.assert_close(out.to(other), again, rtol=0, atol=1e-6)


def test_generator_draws_where_it_lives_for_any_tensor_device():
    """Tensors on the meta device (no data; the fake kernels give the shapes) with a CPU
    generator: every op and helper that draws moves the draw, none raises."""
    meta = torch.device("meta")
    g = torch.Generator().manual_seed(0)
    bins, weights = torch.empty(4, 9, device=meta), torch.empty(4, 8, device=meta)
    assert fastfield.sample_pdf(bins, weights, 16, generator=g).shape == (4, 16)
    assert reference.sample_pdf(bins, weights, 16, generator=g).device == meta
    near, far = torch.empty(4, device=meta), torch.empty(4, device=meta)
    for jitter in ("per_sample", "per_ray"):
        t = fastfield.stratified_samples(near, far, 8, jitter=jitter, generator=g)
        assert t.shape == (4, 8) and t.device == meta
    assert fastfield.random_pixels(6, 2, 4, 5, generator=g, device=meta).device == meta
    pixels = fastfield.random_pixels_in_camera(6, 1, 4, 5, generator=g, device=meta)
    assert pixels.shape == (6, 3) and pixels.device == meta


def test_random_u_is_sorted_first(device):
    bins, weights = make_bins(4, 10, device), make_weights(4, 10, "peaked", device)
    u = torch.rand(4, 20, dtype=F64, device=device)
    out = fastfield.sample_pdf(bins, weights, 20, u=u)
    torch.testing.assert_close(out, fastfield.sample_pdf(bins, weights, 20, u=u.sort(-1).values),
                               rtol=0, atol=0)
    assert (out[:, 1:] >= out[:, :-1]).all()


def test_uniform_weights_invert_linearly(device):
    """All-zero weights: pdf uniform over equal bins, so the sample is bins[0] + u * extent."""
    n_bins = 8
    bins = torch.linspace(2.0, 6.0, n_bins + 1, dtype=F64, device=device).repeat(3, 1)
    u = torch.rand(3, 50, dtype=F64, device=device).sort(-1).values
    out = fastfield.sample_pdf(bins, torch.zeros(3, n_bins, dtype=F64, device=device), 50, u=u)
    torch.testing.assert_close(out, 2.0 + 4.0 * u, rtol=0, atol=1e-12)


def test_one_hot_weights_put_every_sample_in_that_bin(device):
    n_rays, n_bins, hot = 6, 12, torch.tensor([0, 3, 5, 7, 10, 11])
    bins = make_bins(n_rays, n_bins, device)
    weights = torch.zeros(n_rays, n_bins, dtype=F64, device=device)
    weights[torch.arange(n_rays), hot] = 1.0
    for det in ("midpoint", False):
        out = fastfield.sample_pdf(bins, weights, 64, det=det,
                                   generator=torch.Generator().manual_seed(0))
        lo = bins.gather(1, hot[:, None].to(device))
        hi = bins.gather(1, hot[:, None].to(device) + 1)
        assert ((out >= lo) & (out <= hi)).all()


def test_denominator_threshold_on_an_empty_bin(device):
    """The middle bin is empty: its CDF step 1e-5 / total is above 1e-5 for total < 1
    (interpolated as usual) and below for total > 1 (denominator taken as 1, so the sample stays
    at the bottom of the bin). A quantile half-way up the step shows which one ran."""
    bins = torch.tensor([[0.0, 1.0, 2.0, 3.0]] * 2, dtype=F64, device=device)
    weights = torch.tensor([[0.4, 0.0, 0.4], [0.6, 0.0, 0.6]], dtype=F64, device=device)
    total = (weights + 1e-5).sum(-1)
    step = 1e-5 / total
    u = ((weights[:, 0] + 1e-5) / total + step / 2)[:, None]
    out = fastfield.sample_pdf(bins, weights, 1, u=u)[:, 0]
    assert step[0] > 1e-5 > step[1]
    expected = torch.tensor([1.5, 1.0 + step[1].item() / 2], dtype=F64, device=device)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-9)


def test_quantiles_exactly_zero_and_one(device):
    """u = 0 gives bins[0]; u = 1 gives bins[-1], also behind an empty last bin (the CDF is
    capped at its exact total 1, so u = 1 is past its end whatever the rounding)."""
    bins = make_bins(4, 6, device)
    weights = make_weights(4, 6, "peaked", device)
    weights[2:, -1] = 0.0
    u = torch.tensor([0.0, 0.5, 1.0], dtype=F64, device=device).repeat(4, 1)
    out = fastfield.sample_pdf(bins, weights, 3, u=u)
    torch.testing.assert_close(out[:, 0], bins[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(out[:, 2], bins[:, -1], rtol=0, atol=0)


def nerf_pytorch_sample_pdf(bins, weights, u):
    """nerf-pytorch's sample_pdf (run_nerf_helpers.py) as written there, with its quantiles u
    passed in: unsorted u, right-side searchsorted, indices clamped, the 1e-5 denominator."""
    weights = weights + 1e-5
    pdf = weights / torch.sum(weights, -1, keepdim=True)
    cdf = torch.cumsum(pdf, -1)
    cdf = torch.cat([torch.zeros_like(cdf[..., :1]), cdf], -1)
    u = u.contiguous()
    inds = torch.searchsorted(cdf, u, right=True)
    below = torch.max(torch.zeros_like(inds - 1), inds - 1)
    above = torch.min((cdf.shape[-1] - 1) * torch.ones_like(inds), inds)
    inds_g = torch.stack([below, above], -1)
    matched_shape = [inds_g.shape[0], inds_g.shape[1], cdf.shape[-1]]
    cdf_g = torch.gather(cdf.unsqueeze(1).expand(matched_shape), 2, inds_g)
    bins_g = torch.gather(bins.unsqueeze(1).expand(matched_shape), 2, inds_g)
    denom = (cdf_g[..., 1] - cdf_g[..., 0])
    denom = torch.where(denom < 1e-5, torch.ones_like(denom), denom)
    t = (u - cdf_g[..., 0]) / denom
    return bins_g[..., 0] + t * (bins_g[..., 1] - bins_g[..., 0]), cdf


def empty_tail_rays(n_bins, seed=0, n_candidates=20000, per_kind=8):
    """Opaque rays (weights summing to 1) whose weights are zero past some bin, so that the
    empty tail's CDF steps are just under 1e-5, in three kinds of per_kind rays each by where
    float64 sums of their pdf end: nerf-pytorch's (torch.sum normaliser, torch.cumsum) at or
    below 1 while a sequential double sum (a walk's) ends above 1 -- the rays on which u = 1
    used to depart from nerf-pytorch; both at or below 1; nerf-pytorch's above 1."""
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(n_candidates, n_bins, generator=g, dtype=F64)
    cut = torch.randint(3, n_bins - 2, (n_candidates, 1), generator=g)
    w = torch.where(torch.arange(n_bins)[None] < cut, w, torch.zeros_like(w))
    w = w / w.sum(-1, keepdim=True)
    padded = w + 1e-5
    nerf_end = torch.cumsum(padded / padded.sum(-1, keepdim=True), -1)[:, -1]
    sequential = torch.zeros(n_candidates, 1, dtype=F64)
    for k in range(n_bins):
        sequential[:, 0] += padded[:, k]
    walk_end = torch.cumsum(padded / sequential, -1)[:, -1]
    kinds = [(nerf_end <= 1) & (walk_end > 1), (nerf_end <= 1) & (walk_end <= 1), nerf_end > 1]
    picked = [kind.nonzero()[:per_kind, 0] for kind in kinds]
    assert all(len(p) == per_kind for p in picked)
    return w[torch.cat(picked)]


def test_u_one_past_an_empty_tail_like_nerf_pytorch(device):
    """float64, det=True and unsorted random quantiles, against nerf-pytorch's own code: every
    sample is nerf-pytorch's on rays whose CDF (as nerf-pytorch sums it) ends at or below 1,
    where u = 1 goes past the end of the CDF and gives the last bin edge. Where nerf-pytorch's
    float64 sum rounds above 1, its u = 1 sample falls near the bottom of the last near-empty
    bin instead (a rounding accident, about one ray in 60 here): fastfield keeps the exact
    answer, the last edge, there too."""
    n_bins, n_samples, kind = 62, 128, 8
    weights = empty_tail_rays(n_bins)
    n_rays = weights.shape[0]
    bins = make_bins(n_rays, n_bins, "cpu")
    det = torch.linspace(0.0, 1.0, n_samples, dtype=F64).expand(n_rays, n_samples)
    expected, cdf = nerf_pytorch_sample_pdf(bins, weights, det)
    out = fastfield.sample_pdf(bins.to(device), weights.to(device), n_samples, det=True).cpu()
    below = cdf[:, -1] <= 1.0
    assert below[:2 * kind].all() and not below[2 * kind:].any()
    torch.testing.assert_close(out[below], expected[below], rtol=0, atol=1e-12)
    torch.testing.assert_close(out[:, -1], bins[:, -1], rtol=0, atol=0)
    torch.testing.assert_close(out[~below, :-1], expected[~below, :-1], rtol=0, atol=1e-12)
    assert (expected[~below, -1] < bins[~below, -2] + 1e-4).all()
    # Random quantiles: nerf-pytorch keeps them unsorted, fastfield sorts them first; the
    # inverse CDF is monotone, so the sorted samples agree.
    u = torch.rand(n_rays, n_samples, generator=torch.Generator().manual_seed(1), dtype=F64)
    expected, _ = nerf_pytorch_sample_pdf(bins, weights, u)
    out = fastfield.sample_pdf(bins.to(device), weights.to(device), n_samples,
                               u=u.to(device)).cpu()
    torch.testing.assert_close(out, expected.sort(-1).values, rtol=0, atol=1e-12)


def test_single_bin_and_single_sample(device):
    bins = make_bins(5, 1, device)
    u = torch.rand(5, 7, dtype=F64, device=device).sort(-1).values
    out = fastfield.sample_pdf(bins, torch.rand(5, 1, dtype=F64, device=device), 7, u=u)
    torch.testing.assert_close(out, bins[:, :1] + u * (bins[:, 1:] - bins[:, :1]), rtol=0,
                               atol=1e-12)
    bins, weights = make_bins(5, 9, device), make_weights(5, 9, "peaked", device)
    first = fastfield.sample_pdf(bins, weights, 1, det=True)  # linspace(0, 1, 1) = [0]
    torch.testing.assert_close(first, bins[:, :1], rtol=0, atol=0)
    median = fastfield.sample_pdf(bins, weights, 1, det="midpoint")
    torch.testing.assert_close(median, reference.sample_pdf(bins, weights, 1, det="midpoint"),
                               rtol=0, atol=1e-12)


def test_sample_pdf_zero_rays_and_zero_samples(device):
    for n_rays, n_samples in ((0, 5), (3, 0)):
        bins, weights = make_bins(n_rays, 4, device), make_weights(n_rays, 4, "relu", device)
        for kwargs in ({"det": True}, {}):
            out = fastfield.sample_pdf(bins, weights, n_samples, **kwargs)
            assert out.shape == (n_rays, n_samples)


def test_sample_pdf_not_differentiable_and_quiet(device):
    bins = make_bins(3, 6, device).requires_grad_()
    weights = make_weights(3, 6, "relu", device).requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = fastfield.sample_pdf(bins, weights, 8, det=True)
    assert not out.requires_grad and out.grad_fn is None


def test_sample_pdf_non_contiguous(device):
    bins, weights = make_bins(6, 10, device), make_weights(6, 10, "relu", device)
    u = torch.rand(6, 12, dtype=F64, device=device).sort(-1).values
    expected = fastfield.sample_pdf(bins, weights, 12, u=u)
    out = fastfield.sample_pdf(bins.t().contiguous().t(), weights.t().contiguous().t(), 12,
                               u=u.t().contiguous().t())
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    # A shared [n_samples] quantile row reaches the operator as a stride-0 expansion too.
    q = torch.linspace(0.05, 0.95, 12, dtype=F64, device=device)
    torch.testing.assert_close(torch.ops.fastfield.sample_pdf(bins, weights, q),
                               torch.ops.fastfield.sample_pdf(bins, weights, q.expand(6, 12)),
                               rtol=0, atol=0)


def test_nan_weights_stay_in_their_ray(device):
    bins, weights = make_bins(4, 8, device), make_weights(4, 8, "peaked", device)
    weights[1, 3] = float("nan")
    weights[2, 5] = float("inf")
    out = fastfield.sample_pdf(bins, weights, 16, det="midpoint")
    assert torch.isnan(out[1:3]).all()
    assert torch.isfinite(out[[0, 3]]).all()


def test_quantiles_outside_the_unit_interval(device):
    """Below 0: bins[0]; above 1: bins[-1]; NaN (last, as sorted) and inf: NaN."""
    bins, weights = make_bins(3, 5, device), make_weights(3, 5, "relu", device)
    u = torch.tensor([-0.5, 0.0, 0.3, 1.5, float("inf"), float("nan")], dtype=F64,
                     device=device).repeat(3, 1)
    out = torch.ops.fastfield.sample_pdf(bins, weights, u)
    torch.testing.assert_close(out[:, :2], bins[:, :1].expand(3, 2), rtol=0, atol=0)
    torch.testing.assert_close(out[:, 3], bins[:, -1], rtol=0, atol=0)
    assert torch.isnan(out[:, 4:]).all()
    torch.testing.assert_close(out[:, 2], reference.sample_pdf(bins, weights, 1, u=u[:, 2:3])[:, 0])


def test_unsorted_u_rejected_on_cpu():
    bins, weights = make_bins(3, 5, "cpu"), make_weights(3, 5, "relu", "cpu")
    u = torch.tensor([[0.1, 0.2, 0.3], [0.1, 0.5, 0.4], [0.1, 0.2, 0.3]], dtype=F64)
    with pytest.raises(ValueError, match=r"sample_pdf: u must be ascending .*u\[1, 2\] = 0.4"):
        torch.ops.fastfield.sample_pdf(bins, weights, u)
    with pytest.raises(ValueError, match=r"u must be ascending"):
        torch.ops.fastfield.sample_pdf(bins, weights, torch.tensor([0.5, float("nan"), 0.7],
                                                                    dtype=F64))


def test_unchecked_unsorted_u_inverts_every_quantile(unchecked_values):
    """With value checks off (CUDA's default) the walk restarts below its position, so each
    quantile of an unsorted row still gets its exact inverse CDF; NaN quantiles give NaN."""
    bins, weights = make_bins(8, 20, "cpu"), make_weights(8, 20, "relu", "cpu")
    weights[3, 4] = float("nan")
    u = torch.rand(8, 40, dtype=F64)
    u[5, 7] = float("nan")
    sorted_u, order = u.sort(-1)
    out = torch.ops.fastfield.sample_pdf(bins, weights, u)
    in_order = torch.ops.fastfield.sample_pdf(bins, weights, sorted_u)
    torch.testing.assert_close(out.gather(1, order), in_order, rtol=0, atol=0, equal_nan=True)
    assert torch.isnan(out[3]).all() and torch.isnan(out[5, 7])
    finite = ~torch.isnan(out)
    assert finite.sum() == out.numel() - 40 - 1
    lo, hi = bins[:, :1].expand_as(out), bins[:, -1:].expand_as(out)
    assert ((out[finite] >= lo[finite]) & (out[finite] <= hi[finite])).all()
    shared = torch.ops.fastfield.sample_pdf(bins, weights, u[0])  # one unsorted row for all rays
    torch.testing.assert_close(shared.gather(1, order[:1].expand(8, 40)),
                               torch.ops.fastfield.sample_pdf(bins, weights, sorted_u[0]),
                               equal_nan=True)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("kind", ["peaked", "relu", "zeros"])
@pytest.mark.parametrize("n_bins,n_samples", [(1, 1), (5, 17), (62, 128), (62, 5), (200, 300)])
def test_cpu_table_inversion_matches_the_walk(unchecked_values, dtype, kind, n_bins, n_samples):
    """The CPU inverts ascending quantiles from per-ray CDF tables in vector passes, and walks
    rays whose quantiles do not ascend (pdf.h, invert_cdf_cpu.h): both must give the same bits.
    A shuffled row takes the walk, which restarts below its position, so gathered back into
    order it gives the walk's samples of the sorted row. Includes quantiles 0 and 1 (the ends
    of the table), windows wider than a vector (200 bins, uniform weights) and a short last
    group of lanes."""
    n_rays = 24
    bins = make_bins(n_rays, n_bins, "cpu", dtype, seed=11)
    weights = make_weights(n_rays, n_bins, kind, "cpu", dtype, seed=12)
    g = torch.Generator().manual_seed(13)
    u = torch.rand(n_rays, n_samples, generator=g, dtype=F64).to(dtype)
    u[:4] = torch.linspace(0, 1, n_samples, dtype=dtype)
    u[4, 0], u[5, -1] = -0.5, 1.5  # below and beyond the CDF
    sorted_u = u.sort(-1).values
    order = torch.randperm(n_samples, generator=g)
    table = torch.ops.fastfield.sample_pdf(bins, weights, sorted_u)
    walk = torch.ops.fastfield.sample_pdf(bins, weights, sorted_u[:, order.flip(0)].contiguous())
    if n_samples > 1:
        torch.testing.assert_close(walk.gather(1, order.flip(0).argsort().expand(n_rays, -1)),
                                   table, rtol=0, atol=0)
    shared = torch.ops.fastfield.sample_pdf(bins, weights, sorted_u[0])  # one row for all rays
    assert torch.equal(shared[0], table[0])


def test_sample_pdf_bad_input(device):
    bins, weights = make_bins(4, 6, device, F32), make_weights(4, 6, "relu", device, F32)
    sp = fastfield.sample_pdf
    with pytest.raises(ValueError, match=r"bins must be \[n_rays, n_bins \+ 1\]"):
        sp(bins[0], weights, 8)
    with pytest.raises(ValueError, match=r"weights must be \[n_rays, n_bins\]"):
        sp(bins, weights[:, :5], 8)
    with pytest.raises(ValueError, match=r"weights must be \[n_rays, n_bins\]"):
        sp(bins, weights[:3], 8)
    with pytest.raises(ValueError, match=r"bins must be .* at least one edge"):
        sp(bins[:, :0], weights[:, :0], 8)
    with pytest.raises(ValueError, match=r"u must be \[n_rays, n_samples\]"):
        sp(bins, weights, 8, u=torch.rand(4, 7, device=device))
    with pytest.raises(ValueError, match=r"u must be \[n_samples\] or \[n_rays, n_samples\]"):
        torch.ops.fastfield.sample_pdf(bins, weights, torch.rand(3, 8, device=device))
    with pytest.raises(ValueError, match="n_samples must be an int >= 0"):
        sp(bins, weights, -1)
    with pytest.raises(ValueError, match="det must be"):
        sp(bins, weights, 8, det="stratified")
    with pytest.raises(TypeError, match="bins must be float32 or float64"):
        sp(bins.long(), weights.long(), 8, det=True)
    with pytest.raises(TypeError, match="weights must have the dtype of bins"):
        sp(bins, weights.double(), 8, det=True)
    with pytest.raises(TypeError, match="u must have the dtype of bins"):
        torch.ops.fastfield.sample_pdf(bins, weights, torch.rand(8, dtype=F64, device=device))
    with pytest.raises(TypeError, match="bfloat16"):
        sp(bins.bfloat16(), weights, 8)
    with pytest.raises(TypeError, match="bins must be a torch.Tensor"):
        sp([0.0, 1.0], weights, 8)
    if device.type == "cpu" and torch.cuda.is_available():
        with pytest.raises(ValueError, match="same device"):
            sp(bins, weights.cuda(), 8, det=True)


def test_autocast_upcasts_half_precision():
    bins, weights = make_bins(4, 6, "cpu", F32), make_weights(4, 6, "peaked", "cpu", F32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fastfield.sample_pdf(bins, weights.bfloat16(), 8, det=True)
    assert out.dtype == F32
    torch.testing.assert_close(out, fastfield.sample_pdf(bins, weights.bfloat16().float(), 8,
                                                         det=True))


# ----------------------------------------------------------------------------- merge_sorted

def ascending(n_rays, n, device, dtype=F64, seed=0, ties=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n_rays, n, generator=g, dtype=F64)
    if ties:  # few distinct values: ties within and across the two inputs
        x = (x * 4).floor() / 4
    return x.sort(-1).values.to(device, dtype)


@pytest.mark.parametrize("na,nb", [(64, 128), (1, 1), (0, 5), (5, 0), (0, 0), (7, 3)])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("dtype", [F64, F32])
def test_merge_sorted_matches_reference(device, na, nb, ties, dtype):
    a = ascending(9, na, device, dtype, seed=1, ties=ties)
    b = ascending(9, nb, device, dtype, seed=2, ties=ties)
    out = fastfield.merge_sorted(a, b)
    expected = reference.merge_sorted(a, b)
    assert isinstance(out, fastfield.Merged) and out.index.dtype == torch.long
    torch.testing.assert_close(out.merged, expected.merged, rtol=0, atol=0)
    torch.testing.assert_close(out.index, expected.index, rtol=0, atol=0)
    torch.testing.assert_close(torch.cat([a, b], -1).gather(-1, out.index), out.merged,
                               rtol=0, atol=0)


def test_merge_sorted_ties_take_a_first(device):
    a = torch.tensor([[1.0, 2.0, 2.0, 3.0]], device=device)
    b = torch.tensor([[2.0, 3.0, 3.0]], device=device)
    out = fastfield.merge_sorted(a, b)
    assert out.index.tolist() == [[0, 1, 2, 4, 3, 5, 6]]


def test_merge_sorted_nan_sorts_last(device):
    a = torch.tensor([[0.1, 0.5, float("nan")], [0.2, 0.3, 0.4]], device=device)
    b = torch.tensor([[0.3, float("nan")], [float("nan"), float("nan")]], device=device)
    out = fastfield.merge_sorted(a, b)
    expected = reference.merge_sorted(a, b)
    torch.testing.assert_close(out.merged, expected.merged, equal_nan=True)
    torch.testing.assert_close(out.index, expected.index)


def test_merge_sorted_gathers_differentiable_features(device):
    a, b = ascending(4, 6, device), ascending(4, 5, device, seed=3)
    fa = torch.rand(4, 6, dtype=F64, device=device, requires_grad=True)
    fb = torch.rand(4, 5, dtype=F64, device=device, requires_grad=True)
    out = fastfield.merge_sorted(a.requires_grad_(), b)
    assert not out.merged.requires_grad
    features = torch.cat([fa, fb], -1).gather(-1, out.index)
    features.sum().backward()
    assert (fa.grad == 1).all() and (fb.grad == 1).all()


def test_merge_sorted_non_contiguous_and_zero_rays(device):
    a, b = ascending(5, 8, device), ascending(5, 6, device, seed=4)
    expected = fastfield.merge_sorted(a, b)
    out = fastfield.merge_sorted(a.t().contiguous().t(), b.t().contiguous().t())
    torch.testing.assert_close(out.merged, expected.merged, rtol=0, atol=0)
    torch.testing.assert_close(out.index, expected.index, rtol=0, atol=0)
    empty = fastfield.merge_sorted(a[:0], b[:0])
    assert empty.merged.shape == (0, 14) and empty.index.shape == (0, 14)


def test_merge_sorted_unsorted_rejected_on_cpu():
    a, b = ascending(3, 4, "cpu"), ascending(3, 5, "cpu")
    bad = a.clone()
    bad[2, 1], bad[2, 2] = a[2, 2], a[2, 1] - 0.5
    with pytest.raises(ValueError, match=r"merge_sorted: a must be ascending .*a\[2, 2\]"):
        fastfield.merge_sorted(bad, b)
    with pytest.raises(ValueError, match=r"merge_sorted: b must be ascending"):
        fastfield.merge_sorted(a, b.flip(-1))


def test_unchecked_unsorted_merge_is_a_permutation(unchecked_values):
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(6, 7, generator=g), torch.rand(6, 9, generator=g)
    a[1, 3] = float("nan")
    out = fastfield.merge_sorted(a, b)
    torch.testing.assert_close(out.index.sort(-1).values, torch.arange(16).expand(6, 16))
    torch.testing.assert_close(torch.cat([a, b], -1).gather(-1, out.index), out.merged,
                               equal_nan=True)


def test_merge_sorted_bad_input(device):
    a, b = ascending(3, 4, device, F32), ascending(3, 5, device, F32)
    with pytest.raises(ValueError, match=r"a must be \[n_rays, na\]"):
        fastfield.merge_sorted(a[0], b)
    with pytest.raises(ValueError, match=r"b must be \[n_rays, nb\]"):
        fastfield.merge_sorted(a, b[:2])
    with pytest.raises(TypeError, match="b must have the dtype of a"):
        fastfield.merge_sorted(a, b.double())
    with pytest.raises(TypeError, match="a must be float32 or float64"):
        fastfield.merge_sorted(a.long(), b.long())


# ----------------------------------------------------------------------------- neus_upsample

def neus_inputs(n_rays, n, device, dtype=F64, seed=0, noise=0.02):
    """Rays aimed at a sphere of radius 0.5 in the unit sphere, about a fifth of them missing
    the unit sphere; sdf = |o + t d| - 0.5 plus noise at NeuS-style stratified t."""
    g = torch.Generator().manual_seed(seed)
    d = torch.nn.functional.normalize(torch.randn(n_rays, 3, generator=g, dtype=F64), dim=-1)
    side = torch.randn(n_rays, 3, generator=g, dtype=F64)
    side = torch.nn.functional.normalize(side - (side * d).sum(-1, keepdim=True) * d, dim=-1)
    offset = torch.rand(n_rays, 1, generator=g, dtype=F64) * 0.9
    miss = torch.rand(n_rays, 1, generator=g, dtype=F64) < 0.2
    offset = torch.where(miss, 1.05 + torch.rand(n_rays, 1, generator=g, dtype=F64), offset)
    o = -3 * d + offset * side
    shift = (torch.rand(n_rays, 1, generator=g, dtype=F64) - 0.5) / n
    t = 2.0 + 2.0 * (torch.linspace(0, 1, n, dtype=F64) + shift)
    sdf = (o[:, None] + t[..., None] * d[:, None]).norm(dim=-1) - 0.5
    sdf = sdf + noise * torch.randn(n_rays, n, generator=g, dtype=F64)
    return [x.to(device, dtype) for x in (o, d, t, sdf)], miss[:, 0].to(device)


@pytest.mark.parametrize("inv_s", [64, 128, 256, 512])
@pytest.mark.parametrize("n,n_new", [(64, 16), (2, 5), (9, 1)])
def test_neus_upsample_matches_float64_reference(device, inv_s, n, n_new):
    (o, d, t, sdf), miss = neus_inputs(300, n, device, seed=inv_s + n)
    out = fastfield.neus_upsample(o, d, t, sdf, n_new, inv_s)
    expected = reference.neus_upsample(o, d, t, sdf, n_new, inv_s)
    assert out.shape == (300, n_new) and out.dtype == F64
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-11)
    assert (out[:, 1:] >= out[:, :-1]).all()
    assert miss.any() and (~miss).any()


@pytest.mark.parametrize("inv_s", [64, 512])
def test_neus_upsample_float32_matches_float32_reference(device, inv_s):
    (o, d, t, sdf), _ = neus_inputs(300, 64, device, F32, seed=11)
    out = fastfield.neus_upsample(o, d, t, sdf, 16, inv_s)
    expected = reference.neus_upsample(o, d, t, sdf, 16, inv_s)
    weights = reference.neus_upsample_weights(o.double(), d.double(), t.double(), sdf.double(),
                                              inv_s)
    flips = assert_same_samples(out, expected, t, weights, 2e-6,
                                may_flip=torch.ones_like(out, dtype=torch.bool))
    assert flips <= 0.005 * out.numel()


def test_neus_upsample_rays_missing_the_sphere(device):
    """Outside the unit sphere cos is 0: alpha comes from the midpoint SDF alone."""
    (o, d, t, sdf), _ = neus_inputs(50, 32, device, seed=3)
    o = o + 5.0 * torch.nn.functional.normalize(torch.cross(d, o, dim=-1), dim=-1)
    out = fastfield.neus_upsample(o, d, t, sdf, 8, 64)
    torch.testing.assert_close(out, reference.neus_upsample(o, d, t, sdf, 8, 64), rtol=0,
                               atol=1e-11)


def test_neus_upsample_nan_and_edge_cases(device):
    (o, d, t, sdf), _ = neus_inputs(4, 16, device, seed=5)
    sdf[2, 7] = float("nan")
    out = fastfield.neus_upsample(o, d, t, sdf, 6, 128)
    assert torch.isnan(out[2]).all() and torch.isfinite(out[[0, 1, 3]]).all()
    assert fastfield.neus_upsample(o[:0], d[:0], t[:0], sdf[:0], 6, 128).shape == (0, 6)
    assert fastfield.neus_upsample(o, d, t, sdf, 0, 128).shape == (4, 0)
    sdf = sdf.requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not fastfield.neus_upsample(o, d, t, sdf, 6, 128).requires_grad


def test_unchecked_unsorted_neus_quantiles_restart_the_weights(unchecked_values):
    """A restart of the walk re-runs the NeuS weight source (transmittance from 1 again)."""
    (o, d, t, sdf), _ = neus_inputs(10, 24, "cpu", seed=8)
    u = torch.linspace(0.5 / 12, 1 - 0.5 / 12, 12, dtype=F64)
    order = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    shuffled = torch.ops.fastfield.neus_upsample(o, d, t, sdf, u[order], 128.0)
    in_order = torch.ops.fastfield.neus_upsample(o, d, t, sdf, u, 128.0)
    torch.testing.assert_close(shuffled, in_order[:, order], rtol=0, atol=0)


def test_neus_upsample_non_contiguous(device):
    (o, d, t, sdf), _ = neus_inputs(6, 20, device, seed=6)
    expected = fastfield.neus_upsample(o, d, t, sdf, 5, 256)
    out = fastfield.neus_upsample(o.t().contiguous().t(), d.t().contiguous().t(),
                                  t.t().contiguous().t(), sdf.t().contiguous().t(), 5, 256)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_neus_upsample_bad_input(device):
    (o, d, t, sdf), _ = neus_inputs(4, 8, device, F32)
    up = fastfield.neus_upsample
    with pytest.raises(ValueError, match=r"t must hold n >= 2 samples"):
        up(o, d, t[:, :1], sdf[:, :1], 4, 64)
    with pytest.raises(ValueError, match=r"sdf must be \[n_rays, n\]"):
        up(o, d, t, sdf[:, :7], 4, 64)
    with pytest.raises(ValueError, match=r"rays_d must be \[n_rays, 3\]"):
        up(o, d[:3], t, sdf, 4, 64)
    with pytest.raises(ValueError, match=r"rays_o must be \[n_rays, 3\]"):
        up(o[:, :2], d, t, sdf, 4, 64)
    with pytest.raises(TypeError, match="sdf must have the dtype of t"):
        up(o, d, t, sdf.double(), 4, 64)
    with pytest.raises(TypeError, match="inv_s must be a float"):
        up(o, d, t, sdf, 4, torch.tensor(64.0))
    with pytest.raises(ValueError, match="n_new must be an int >= 0"):
        up(o, d, t, sdf, 2.5, 64)


# ----------------------------------------------------------------------------- opcheck, compile

def test_opcheck(device):
    bins, weights = make_bins(5, 7, device), make_weights(5, 7, "relu", device)
    for u in (torch.linspace(0, 1, 9, dtype=F64, device=device),
              torch.rand(5, 9, dtype=F64, device=device).sort(-1).values):
        torch.library.opcheck(torch.ops.fastfield.sample_pdf, (bins, weights, u))
    a, b = ascending(5, 6, device), ascending(5, 4, device, seed=2)
    torch.library.opcheck(torch.ops.fastfield.merge_sorted, (a, b))
    (o, d, t, sdf), _ = neus_inputs(5, 12, device)
    u = torch.linspace(0.5 / 6, 1 - 0.5 / 6, 6, dtype=F64, device=device)
    torch.library.opcheck(torch.ops.fastfield.neus_upsample, (o, d, t, sdf, u, 64.0))


def test_torch_compile_fullgraph():
    """nerf-pytorch's fine-sampling step, compiled whole."""
    t = make_bins(8, 15, "cpu", F32)
    weights = make_weights(8, 16, "peaked", "cpu", F32)

    def fine_samples(t, weights):
        mids = 0.5 * (t[:, 1:] + t[:, :-1])
        fine = fastfield.sample_pdf(mids, weights[:, 1:-1], 32, det=True)
        return fastfield.merge_sorted(t, fine).merged

    compiled = torch.compile(fine_samples, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(t, weights), fine_samples(t, weights))


# ----------------------------------------------------------------------------- CUDA

def test_cuda_matches_cpu(cuda):
    """The same per-ray code on both: bin decisions agree bit for bit in sample_pdf (only the
    final interpolation may contract to an FMA on CUDA); NeuS alphas use different exps."""
    for dtype in (F32, F64):
        bins, weights = make_bins(300, 62, "cpu", dtype), make_weights(300, 62, "relu", "cpu", dtype)
        u = torch.rand(300, 128, dtype=dtype).sort(-1).values
        cpu = fastfield.sample_pdf(bins, weights, 128, u=u)
        gpu = fastfield.sample_pdf(bins.to(cuda), weights.to(cuda), 128, u=u.to(cuda)).cpu()
        assert_same_samples(gpu, cpu, bins, weights, 1e-6, torch.zeros_like(cpu, dtype=torch.bool))
        a = ascending(300, 64, "cpu", dtype, ties=True)
        cpu_m = fastfield.merge_sorted(a, cpu)
        gpu_m = fastfield.merge_sorted(a.to(cuda), cpu.to(cuda))
        torch.testing.assert_close(gpu_m.merged.cpu(), cpu_m.merged, rtol=0, atol=0)
        torch.testing.assert_close(gpu_m.index.cpu(), cpu_m.index, rtol=0, atol=0)
        (o, d, t, sdf), _ = neus_inputs(300, 64, "cpu", dtype)
        cpu_n = fastfield.neus_upsample(o, d, t, sdf, 16, 256)
        gpu_n = fastfield.neus_upsample(o.to(cuda), d.to(cuda), t.to(cuda), sdf.to(cuda), 16,
                                        256).cpu()
        w = reference.neus_upsample_weights(o.double(), d.double(), t.double(), sdf.double(), 256)
        flips = assert_same_samples(gpu_n, cpu_n, t, w, 2e-6 if dtype == F32 else 1e-11,
                                    torch.ones_like(cpu_n, dtype=torch.bool))
        assert flips <= 0.005 * cpu_n.numel()
