"""stratified_samples: values, bins, jitter modes, randomness, errors, compile."""
import pytest
import torch

import fastfield
from fastfield import reference
from helpers import assert_close_per_ray

F64 = torch.float64
F32 = torch.float32
JITTER_MODES = ["none", "per_sample", "per_ray"]


def make_bounds(n_rays, device, dtype=F64, seed=0):
    g = torch.Generator().manual_seed(seed)
    near = 0.5 + torch.rand(n_rays, generator=g, dtype=F64)
    far = near + 0.1 + 5 * torch.rand(n_rays, generator=g, dtype=F64)
    return near.to(device, dtype), far.to(device, dtype)


def make_u(jitter, n_rays, n_samples, device, dtype=F64, seed=1):
    if jitter == "none":
        return None
    shape = (n_rays, n_samples) if jitter == "per_sample" else (n_rays,)
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=F64).to(device,
                                                                                         dtype)


def grid_bins(grid):
    """nerf-pytorch's bins around each grid value: bounded by the midpoints, clipped at the ends."""
    mids = 0.5 * (grid[:, 1:] + grid[:, :-1])
    return torch.cat([grid[:, :1], mids], -1), torch.cat([mids, grid[:, -1:]], -1)


@pytest.mark.parametrize("jitter", JITTER_MODES)
@pytest.mark.parametrize("lindisp", [False, True])
@pytest.mark.parametrize("n_rays,n_samples", [(0, 8), (1, 1), (3, 2), (100, 64), (17, 193)])
def test_matches_float64_reference(device, jitter, lindisp, n_rays, n_samples):
    near, far = make_bounds(n_rays, device)
    u = make_u(jitter, n_rays, n_samples, device)
    for dtype, tol in ((F64, 1e-13), (F32, 1e-6)):
        cast = lambda x: None if x is None else x.to(dtype)  # noqa: E731
        out = fastfield.stratified_samples(cast(near), cast(far), n_samples, u=cast(u),
                                           lindisp=lindisp, jitter=jitter)
        expected = reference.stratified_samples(
            cast(near).double(), cast(far).double(), n_samples,
            None if u is None else cast(u).double(), lindisp, jitter)
        assert out.dtype == dtype and out.shape == (n_rays, n_samples)
        assert_close_per_ray(out, expected, rtol=tol)


@pytest.mark.parametrize("jitter", JITTER_MODES)
@pytest.mark.parametrize("lindisp", [False, True])
def test_ascending_and_within_bins(device, jitter, lindisp):
    near, far = make_bounds(200, device, seed=3)
    u = make_u(jitter, 200, 48, device)
    t = fastfield.stratified_samples(near, far, 48, u=u, lindisp=lindisp, jitter=jitter)
    assert (t[:, 1:] >= t[:, :-1]).all()
    grid = fastfield.stratified_samples(near, far, 48, lindisp=lindisp, jitter="none")
    assert torch.allclose(grid[:, 0], near) and torch.allclose(grid[:, -1], far)
    if lindisp:  # evenly spaced in disparity
        steps = (1 / grid).diff(dim=1)
    else:
        steps = grid.diff(dim=1)
    torch.testing.assert_close(steps, steps[:, :1].expand_as(steps))
    lower, upper = grid_bins(grid)
    if jitter == "per_sample":
        # Each sample in its own bin, at the fraction u of it.
        assert ((t >= lower) & (t <= upper)).all()
        torch.testing.assert_close((t - lower) / (upper - lower), u)
    elif jitter == "per_ray":
        # One shift for the whole ray, (u - 0.5) of a bin of (far - near) / n.
        shift = t - grid
        torch.testing.assert_close(shift, shift[:, :1].expand_as(shift))
        torch.testing.assert_close(shift[:, 0], (u - 0.5) * (far - near) / 48)
    else:
        assert torch.equal(t, grid)


def test_per_sample_extremes_hit_the_bin_edges():
    near, far = make_bounds(10, "cpu")
    grid = fastfield.stratified_samples(near, far, 16, jitter="none")
    lower, upper = grid_bins(grid)
    zeros, ones = torch.zeros(10, 16, dtype=F64), torch.ones(10, 16, dtype=F64)
    torch.testing.assert_close(fastfield.stratified_samples(near, far, 16, u=zeros), lower)
    torch.testing.assert_close(fastfield.stratified_samples(near, far, 16, u=ones), upper)


def test_per_ray_is_neus_render():
    """NeuS: z = near + (far - near) * linspace(0, 1, n), z + (rand - 0.5) * 2 / n, with
    near/far from its near_far_from_sphere (closest approach -/+ 1)."""
    o = torch.randn(64, 3, dtype=F64) * 2
    d = torch.nn.functional.normalize(torch.randn(64, 3, dtype=F64), dim=-1)
    near, far, _ = fastfield.near_far_sphere(o, d)
    u = torch.rand(64, dtype=F64)
    t = fastfield.stratified_samples(near, far, 64, u=u, jitter="per_ray")
    z = near[:, None] + (far - near)[:, None] * torch.linspace(0.0, 1.0, 64, dtype=F64)[None]
    z = z + (u[:, None] - 0.5) * 2.0 / 64
    torch.testing.assert_close(t, z, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("jitter", ["per_sample", "per_ray"])
def test_generator_reproducible_and_equal_to_reference(device, jitter):
    near, far = make_bounds(50, device)

    def draw(fn, seed):
        g = torch.Generator(device=device).manual_seed(seed)
        return fn(near, far, 32, lindisp=True, jitter=jitter, generator=g)

    a, b = draw(fastfield.stratified_samples, 7), draw(fastfield.stratified_samples, 7)
    assert torch.equal(a, b)
    assert not torch.equal(a, draw(fastfield.stratified_samples, 8))
    torch.testing.assert_close(a, draw(reference.stratified_samples, 7), rtol=1e-13, atol=1e-13)
    # Unseeded draws differ from call to call.
    assert not torch.equal(fastfield.stratified_samples(near, far, 32, jitter=jitter),
                           fastfield.stratified_samples(near, far, 32, jitter=jitter))


def test_float_bounds_broadcast(device):
    near, far = make_bounds(20, device)
    u = make_u("per_sample", 20, 8, device)
    full = lambda v: torch.full((20,), v, dtype=F64, device=device)  # noqa: E731
    expected = fastfield.stratified_samples(full(2.0), far, 8, u=u)
    torch.testing.assert_close(fastfield.stratified_samples(2.0, far, 8, u=u), expected)
    zero_d = torch.tensor(2.0, dtype=F64, device=device)
    torch.testing.assert_close(fastfield.stratified_samples(zero_d, far, 8, u=u), expected)
    expected = fastfield.stratified_samples(near, full(6.0), 8, u=u)
    torch.testing.assert_close(fastfield.stratified_samples(near, 6, 8, u=u), expected)
    torch.testing.assert_close(reference.stratified_samples(near, 6.0, 8, u=u), expected)


def test_non_contiguous_inputs(device):
    near, far = make_bounds(30, device)
    u = make_u("per_sample", 30, 12, device)
    expected = fastfield.stratified_samples(near, far, 12, u=u)
    bounds = torch.stack([near, far], 1)  # near, far as strided columns
    out = fastfield.stratified_samples(bounds[:, 0], bounds[:, 1], 12, u=u.t().contiguous().t())
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    u_ray = torch.rand(60, dtype=F64, device=device)[::2]
    torch.testing.assert_close(
        fastfield.stratified_samples(near, far, 12, u=u_ray, jitter="per_ray"),
        fastfield.stratified_samples(near, far, 12, u=u_ray.contiguous(), jitter="per_ray"),
        rtol=0, atol=0)


def test_nan_stays_in_its_ray(device):
    near, far = make_bounds(4, device)
    near[1] = float("nan")
    u = make_u("per_sample", 4, 16, device)
    u[2, 3] = float("nan")
    t = fastfield.stratified_samples(near, far, 16, u=u)
    assert torch.isnan(t[1]).all() and torch.isnan(t[2, 3])
    assert torch.isfinite(t[[0, 3]]).all() and torch.isfinite(t[2, :3]).all()
    t = fastfield.stratified_samples(near, far, 16, jitter="none", lindisp=True)
    assert torch.isnan(t[1]).all() and torch.isfinite(t[[0, 2, 3]]).all()


def test_bad_input(device):
    near, far = make_bounds(5, device, dtype=F32)
    u = make_u("per_sample", 5, 8, device, dtype=F32)
    ss = fastfield.stratified_samples
    with pytest.raises(ValueError, match=r"near or far must be a \[n_rays\] tensor"):
        ss(1.0, 2.0, 8)
    with pytest.raises(ValueError, match=r"near or far must be a \[n_rays\] tensor"):
        ss(near[None], 2.0, 8)
    with pytest.raises(ValueError, match=r"far must be \[n_rays\]"):
        ss(near, far[:3], 8, u=u)
    for n_samples in (0, -2):
        with pytest.raises(ValueError, match="n_samples must be >= 1"):
            ss(near, far, n_samples)
    with pytest.raises(TypeError, match="n_samples must be an int"):
        ss(near, far, 8.0)
    with pytest.raises(ValueError, match="jitter must be one of 'none', 'per_sample', 'per_ray'"):
        ss(near, far, 8, jitter="uniform")
    with pytest.raises(ValueError, match=r"u must be \[n_rays, n_samples\] \(per_sample\)"):
        ss(near, far, 8, u=u[:, :7])
    with pytest.raises(ValueError, match=r"u must be \[n_rays\] \(per_ray\)"):
        ss(near, far, 8, u=u, jitter="per_ray")
    with pytest.raises(ValueError, match="u must be None when jitter is 'none'"):
        ss(near, far, 8, u=u, jitter="none")
    with pytest.raises(TypeError, match="u must have the dtype of near"):
        ss(near, far, 8, u=u.double())
    with pytest.raises(TypeError, match="far must have the dtype of near"):
        ss(near, far.double(), 8, u=u)
    with pytest.raises(TypeError, match="near must be float32 or float64"):
        ss(near.int(), far.int(), 8, jitter="none")
    with pytest.raises(TypeError, match="bfloat16"):
        ss(near.bfloat16(), far, 8, u=u)
    if device.type == "cpu" and torch.cuda.is_available():
        with pytest.raises(ValueError, match="same device"):
            ss(near, far, 8, u=u.cuda())


def test_not_differentiable():
    near, far = make_bounds(3, "cpu")
    near.requires_grad_()
    t = fastfield.stratified_samples(near, far, 4)
    with pytest.raises(RuntimeError, match="fastfield::stratified_samples is not implemented"):
        t.sum().backward()


def test_opcheck(device):
    near, far = make_bounds(6, device)
    for jitter, code in (("none", 0), ("per_sample", 1), ("per_ray", 2)):
        u = make_u(jitter, 6, 9, device)
        torch.library.opcheck(torch.ops.fastfield.stratified_samples,
                              (near, far, u, 9, jitter == "per_ray", code))


def test_torch_compile_fullgraph_ray_pipeline():
    """Pixels -> rays -> sphere bounds -> samples, one graph."""
    c2w = torch.eye(4)[None, :3].repeat(2, 1, 1)
    c2w[:, 2, 3] = 3.0
    intrinsics = torch.tensor([[20.0, 20.0, 8.0, 6.0]]).repeat(2, 1)
    pixels = fastfield.random_pixels(64, 2, 12, 16, generator=torch.Generator().manual_seed(0))
    u = torch.rand(64)

    def pipeline(c2w, intrinsics, pixels, u):
        rays = fastfield.generate_rays(c2w, intrinsics, pixels, normalize=True)
        bounds = fastfield.near_far_sphere(rays.origins, rays.directions, 1.0)
        t = fastfield.stratified_samples(bounds.near, bounds.far, 16, u=u, jitter="per_ray")
        return rays.origins[:, None] + t[..., None] * rays.directions[:, None]

    compiled = torch.compile(pipeline, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(c2w, intrinsics, pixels, u),
                               pipeline(c2w, intrinsics, pixels, u))


def test_cuda_matches_cpu(cuda):
    near, far = make_bounds(3000, "cpu", dtype=F32)
    results = {}
    for jitter in JITTER_MODES:
        u = make_u(jitter, 3000, 64, "cpu", dtype=F32)
        for lindisp in (False, True):
            out = {}
            for dev in ("cpu", cuda):
                out[str(dev)] = fastfield.stratified_samples(
                    near.to(dev), far.to(dev), 64, u=None if u is None else u.to(dev),
                    lindisp=lindisp, jitter=jitter)
            results[(jitter, lindisp)] = out
    for out in results.values():
        assert_close_per_ray(out["cuda"].cpu(), out["cpu"], rtol=1e-6)
