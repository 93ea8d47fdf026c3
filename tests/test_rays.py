"""Camera rays: pixel helpers, generate_rays, ndc_rays, near_far_sphere, near_far_aabb."""
import math

import pytest
import torch

import fastfield
from fastfield import reference
from helpers import assert_close_per_ray

F64 = torch.float64
F32 = torch.float32


def make_cameras(n_cameras, device, dtype=F64, seed=0, rows=4):
    """Random rigid poses [n_cameras, rows, 4] and intrinsics [n_cameras, 4] (fx, fy, cx, cy)."""
    g = torch.Generator().manual_seed(seed)
    rotation, _ = torch.linalg.qr(torch.randn(n_cameras, 3, 3, generator=g, dtype=F64))
    c2w = torch.zeros(n_cameras, 4, 4, dtype=F64)
    c2w[:, :3, :3] = rotation
    c2w[:, :3, 3] = torch.randn(n_cameras, 3, generator=g, dtype=F64) * 4
    c2w[:, 3, 3] = 1.0
    focal = 50 + 100 * torch.rand(n_cameras, 2, generator=g, dtype=F64)
    centre = torch.tensor([32.0, 24.0], dtype=F64) + torch.rand(n_cameras, 2, generator=g,
                                                                 dtype=F64)
    intrinsics = torch.cat([focal, centre], -1)
    return c2w[:, :rows].to(device, dtype), intrinsics.to(device, dtype)


def make_rays(n_rays, device, dtype=F64, seed=0, spread=3.0):
    g = torch.Generator().manual_seed(seed)
    origins = torch.randn(n_rays, 3, generator=g, dtype=F64) * spread
    directions = torch.randn(n_rays, 3, generator=g, dtype=F64)
    return origins.to(device, dtype), directions.to(device, dtype)


def as64(*tensors):
    return [t.to(F64) for t in tensors]


# ----------------------------------------------------------------------------- generate_rays

@pytest.mark.parametrize("convention", ["opengl", "opencv"])
@pytest.mark.parametrize("pixel_offset", [0.0, 0.5])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("pose_rows", [3, 4])
def test_generate_rays_matches_reference(device, convention, pixel_offset, normalize, pose_rows):
    c2w, intrinsics = make_cameras(37, device, rows=pose_rows)
    g = torch.Generator().manual_seed(1)
    pixels = fastfield.random_pixels(600, 37, 48, 64, generator=g).to(device)
    for n_rays in (0, 1, 600):
        for dtype, tol in ((F64, 1e-13), (F32, 2e-6)):
            args = (c2w.to(dtype), intrinsics.to(dtype), pixels[:n_rays])
            out = fastfield.generate_rays(*args, convention=convention, pixel_offset=pixel_offset,
                                          normalize=normalize)
            # The float64 twin on the very same (rounded) inputs.
            expected = reference.generate_rays(c2w.to(dtype)[:, :3].to(F64),
                                               intrinsics.to(dtype).to(F64), pixels[:n_rays],
                                               convention, pixel_offset, normalize)
            assert out.origins.dtype == dtype and out.directions.shape == (n_rays, 3)
            assert_close_per_ray(out.origins, expected.origins, rtol=tol)
            assert_close_per_ray(out.directions, expected.directions, rtol=tol)
    if normalize:
        torch.testing.assert_close(out.directions.norm(dim=-1), torch.ones(600, device=device),
                                   rtol=1e-6, atol=0)


def nerf_pytorch_get_rays(H, W, K, c2w):
    """nerf-pytorch's get_rays (run_nerf_helpers.py), with the 'xy' meshgrid it relies on."""
    i, j = torch.meshgrid(torch.arange(W, dtype=c2w.dtype), torch.arange(H, dtype=c2w.dtype),
                          indexing="xy")
    dirs = torch.stack([(i - K[0][2]) / K[0][0], -(j - K[1][2]) / K[1][1], -torch.ones_like(i)], -1)
    rays_d = torch.sum(dirs[..., None, :] * c2w[:3, :3], -1)
    rays_o = c2w[:3, -1].expand(rays_d.shape)
    return rays_o, rays_d


def test_image_pixels_and_generate_rays_equal_nerf_pytorch_get_rays(device):
    H, W = 6, 9
    c2w, intrinsics = make_cameras(3, "cpu")
    fx, fy, cx, cy = intrinsics[2].tolist()
    # nerf-pytorch has one focal for both axes.
    intrinsics[2] = torch.tensor([fx, fx, cx, cy], dtype=F64)
    K = torch.tensor([[fx, 0, cx], [0, fx, cy], [0, 0, 1]], dtype=F64)
    rays_o, rays_d = nerf_pytorch_get_rays(H, W, K, c2w[2])
    pixels = fastfield.image_pixels(2, H, W, device=device)
    out = fastfield.generate_rays(c2w.to(device), intrinsics.to(device), pixels)
    torch.testing.assert_close(out.origins.reshape(H, W, 3).cpu(), rays_o, rtol=1e-14, atol=0)
    torch.testing.assert_close(out.directions.reshape(H, W, 3).cpu(), rays_d, rtol=1e-13,
                               atol=1e-15)


def test_opencv_is_opengl_with_flipped_camera_axes():
    """The two conventions differ by the camera's y and z axes (diag(1, -1, -1))."""
    c2w, intrinsics = make_cameras(4, "cpu", rows=3)
    pixels = fastfield.random_pixels(100, 4, 48, 64, generator=torch.Generator().manual_seed(0))
    flipped = c2w.clone()
    flipped[:, :, 1:3] *= -1
    gl = fastfield.generate_rays(c2w, intrinsics, pixels, "opengl", 0.5)
    cv = fastfield.generate_rays(flipped, intrinsics, pixels, "opencv", 0.5)
    torch.testing.assert_close(gl.directions, cv.directions, rtol=1e-14, atol=1e-15)


def test_generate_rays_shared_intrinsics_and_non_contiguous_inputs(device):
    c2w, intrinsics = make_cameras(5, device)
    pixels = fastfield.random_pixels(200, 5, 48, 64, generator=torch.Generator().manual_seed(2))
    pixels = pixels.to(device)
    shared = intrinsics[0]
    expected = fastfield.generate_rays(c2w, shared.expand(5, 4).contiguous(), pixels)
    # c2w [5, 4, 4] sliced, intrinsics [4] broadcast, pixels and c2w from transposed storage.
    out = fastfield.generate_rays(c2w.transpose(1, 2).contiguous().transpose(1, 2), shared,
                                  pixels.t().contiguous().t())
    for a, b in zip(out, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_generate_rays_nan_pose_stays_in_its_camera(device):
    c2w, intrinsics = make_cameras(3, device)
    c2w[1, 0, 0] = float("nan")
    pixels = fastfield.random_pixels(300, 3, 48, 64, generator=torch.Generator().manual_seed(3))
    out = fastfield.generate_rays(c2w, intrinsics, pixels.to(device))
    of_camera_1 = pixels[:, 0].to(device) == 1
    assert torch.isnan(out.directions[of_camera_1, 0]).all()
    assert torch.isfinite(out.directions[~of_camera_1]).all()
    assert torch.isfinite(out.origins).all()


def test_unchecked_camera_ids_give_nan_rays(unchecked_values):
    """With value checks off (CUDA's default) the kernel must not read a pose for an invalid
    camera id: such rays come out NaN, the others as usual."""
    c2w, intrinsics = make_cameras(3, "cpu")
    pixels = torch.tensor([[0, 1, 2], [-1, 1, 2], [3, 1, 2], [2, 5, 7], [1 << 40, 0, 0]])
    out = fastfield.generate_rays(c2w, intrinsics, pixels)
    bad = torch.tensor([False, True, True, False, True])
    assert torch.isnan(out.origins[bad]).all() and torch.isnan(out.directions[bad]).all()
    expected = reference.generate_rays(c2w[:, :3], intrinsics, pixels[~bad])
    torch.testing.assert_close(out.origins[~bad], expected.origins, rtol=0, atol=0)
    torch.testing.assert_close(out.directions[~bad], expected.directions, rtol=1e-15, atol=1e-15)


def test_generate_rays_bad_input(device):
    c2w, intrinsics = make_cameras(3, device, dtype=F32, rows=3)
    pixels = torch.tensor([[0, 1, 2], [2, 3, 4]], device=device)
    gr = fastfield.generate_rays
    with pytest.raises(ValueError, match=r"c2w must be \[n_cameras, 3, 4\]"):
        gr(c2w[:, :2], intrinsics, pixels)
    with pytest.raises(ValueError, match=r"c2w must be \[n_cameras, 3, 4\]"):
        gr(c2w[0], intrinsics, pixels)
    with pytest.raises(ValueError, match=r"intrinsics must be \[n_cameras, 4\]"):
        gr(c2w, intrinsics[:2], pixels)
    with pytest.raises(ValueError, match=r"pixels must be \[n_rays, 3\]"):
        gr(c2w, intrinsics, pixels[:, :2])
    with pytest.raises(TypeError, match="pixels must be int64"):
        gr(c2w, intrinsics, pixels.int())
    with pytest.raises(TypeError, match="c2w must be float32 or float64"):
        gr(c2w.long(), intrinsics, pixels)
    with pytest.raises(TypeError, match="intrinsics must have the dtype of c2w"):
        gr(c2w, intrinsics.double(), pixels)
    with pytest.raises(TypeError, match="bfloat16"):
        gr(c2w.bfloat16(), intrinsics, pixels)
    with pytest.raises(TypeError, match="pixels must be a torch.Tensor"):
        gr(c2w, intrinsics, [[0, 1, 2]])
    with pytest.raises(ValueError, match="convention must be one of 'opengl', 'opencv'"):
        gr(c2w, intrinsics, pixels, convention="blender")
    if device.type == "cpu":
        for camera in (3, -1):
            with pytest.raises(ValueError, match=r"pixels\[:, 0\] \(camera ids\) must lie in "
                                                 rf"\[0, 3\), found {camera}"):
                gr(c2w, intrinsics, torch.tensor([[0, 1, 2], [camera, 0, 0]]))
        if torch.cuda.is_available():
            with pytest.raises(ValueError, match="same device"):
                gr(c2w, intrinsics, pixels.cuda())


# ----------------------------------------------------------------------------- pixel helpers

def test_image_pixels_row_major():
    pixels = fastfield.image_pixels(4, 3, 5)
    assert pixels.dtype == torch.long and pixels.shape == (15, 3)
    assert (pixels[:, 0] == 4).all()
    rows, cols = torch.meshgrid(torch.arange(3), torch.arange(5), indexing="ij")
    assert torch.equal(pixels[:, 1], rows.reshape(-1))
    assert torch.equal(pixels[:, 2], cols.reshape(-1))


def test_random_pixels_range_and_determinism(device):
    n, n_cameras, H, W = 5000, 7, 13, 17

    def draw(seed):
        generator = torch.Generator(device=device).manual_seed(seed)
        return fastfield.random_pixels(n, n_cameras, H, W, generator=generator, device=device)

    a, b, c = draw(5), draw(5), draw(6)
    assert a.dtype == torch.long and a.shape == (n, 3) and a.device.type == device.type
    assert torch.equal(a, b) and not torch.equal(a, c)
    for column, size in enumerate((n_cameras, H, W)):
        assert a[:, column].min() == 0 and a[:, column].max() == size - 1
    assert fastfield.random_pixels(0, 2, 3, 4, device=device).shape == (0, 3)
    pixels = fastfield.image_pixels(1, 3, 4, device=device)
    assert pixels.device.type == device.type and pixels.shape == (12, 3)


def chi_square_ok(ids, n_cells):
    """Pearson's statistic of the cell counts against uniform; fails past mean + 6 sd (p ~ 1e-6
    for these sizes) so a fixed seed passes and any bias of a few percent per cell fails."""
    counts = torch.bincount(ids, minlength=n_cells).double()
    assert counts.numel() == n_cells, "ids outside the cells"
    expected = ids.numel() / n_cells
    statistic = ((counts - expected) ** 2 / expected).sum().item()
    dof = n_cells - 1
    return statistic <= dof + 6 * math.sqrt(2 * dof), statistic


def test_random_pixels_uniform_over_all_pixels_of_all_cameras():
    n_cameras, H, W = 3, 7, 11
    pixels = fastfield.random_pixels(100_000, n_cameras, H, W,
                                     generator=torch.Generator().manual_seed(0))
    cell = (pixels[:, 0] * H + pixels[:, 1]) * W + pixels[:, 2]
    ok, statistic = chi_square_ok(cell, n_cameras * H * W)
    assert ok, statistic
    # The same check rejects what a biased sampler would produce: the last row left out.
    biased = pixels[pixels[:, 1] < H - 1]
    biased_cell = (biased[:, 0] * H + biased[:, 1]) * W + biased[:, 2]
    assert not chi_square_ok(biased_cell, n_cameras * H * W)[0]


@pytest.mark.parametrize("H,W,fraction", [(10, 13, 0.5), (800, 800, 0.5), (9, 7, 0.75),
                                          (9, 7, 1.0)])
def test_random_pixels_in_camera_precrop_window(H, W, fraction):
    """nerf-pytorch: dH = int(H//2 * frac), rows H//2 - dH .. H//2 + dH - 1 (cols likewise);
    fraction 1 is the whole image, odd sizes included."""
    pixels = fastfield.random_pixels_in_camera(20_000, 3, H, W, crop_fraction=fraction,
                                               generator=torch.Generator().manual_seed(1))
    assert (pixels[:, 0] == 3).all()
    if fraction == 1.0:
        rows, cols = range(H), range(W)
    else:
        dH, dW = int(H // 2 * fraction), int(W // 2 * fraction)
        rows, cols = range(H // 2 - dH, H // 2 + dH), range(W // 2 - dW, W // 2 + dW)
    if H * W <= 200:  # every pixel of the window is drawn: the bounds are attained exactly
        assert set(pixels[:, 1].tolist()) == set(rows) and set(pixels[:, 2].tolist()) == set(cols)
    assert pixels[:, 1].min() >= rows[0] and pixels[:, 1].max() <= rows[-1]
    assert pixels[:, 2].min() >= cols[0] and pixels[:, 2].max() <= cols[-1]
    if H * W <= 200:
        cell = (pixels[:, 1] - rows[0]) * len(cols) + (pixels[:, 2] - cols[0])
        ok, statistic = chi_square_ok(cell, len(rows) * len(cols))
        assert ok, statistic


def test_random_pixels_in_camera_determinism():
    a = fastfield.random_pixels_in_camera(64, 0, 20, 30, 0.5, torch.Generator().manual_seed(9))
    b = fastfield.random_pixels_in_camera(64, 0, 20, 30, 0.5, torch.Generator().manual_seed(9))
    assert torch.equal(a, b)


def test_pixel_helpers_bad_arguments():
    with pytest.raises(ValueError, match="random_pixels: n must be >= 0"):
        fastfield.random_pixels(-1, 2, 3, 4)
    with pytest.raises(ValueError, match="n_cameras must be >= 1"):
        fastfield.random_pixels(5, 0, 3, 4)
    with pytest.raises(ValueError, match="height must be >= 1"):
        fastfield.random_pixels(5, 2, 0, 4)
    with pytest.raises(TypeError, match="n must be an int"):
        fastfield.random_pixels(5.0, 2, 3, 4)
    with pytest.raises(ValueError, match="random_pixels_in_camera: camera must be >= 0"):
        fastfield.random_pixels_in_camera(5, -1, 3, 4)
    with pytest.raises(ValueError, match="random_pixels_in_camera: n must be >= 0"):
        fastfield.random_pixels_in_camera(-3, 0, 3, 4)
    for fraction in (0.0, -0.5, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"crop_fraction must be in \(0, 1\]"):
            fastfield.random_pixels_in_camera(5, 0, 8, 8, crop_fraction=fraction)
    with pytest.raises(ValueError, match="empty window"):
        fastfield.random_pixels_in_camera(5, 0, 8, 8, crop_fraction=0.1)
    with pytest.raises(ValueError, match="image_pixels: camera must be >= 0"):
        fastfield.image_pixels(-2, 3, 4)
    with pytest.raises(ValueError, match="image_pixels: width must be >= 1"):
        fastfield.image_pixels(0, 3, 0)


# ----------------------------------------------------------------------------- ndc_rays

@pytest.mark.parametrize("n_rays", [0, 1, 300])
def test_ndc_rays_matches_reference(device, n_rays):
    c2w, intrinsics = make_cameras(2, "cpu")
    # Forward-facing rays: camera looking down -z from z = 0, as LLFF after recentring.
    c2w[:, :3, :3] = torch.eye(3, dtype=F64)
    pixels = fastfield.random_pixels(n_rays, 2, 48, 64, generator=torch.Generator().manual_seed(0))
    rays = fastfield.generate_rays(c2w, intrinsics, pixels)
    for dtype, tol in ((F64, 1e-13), (F32, 2e-6)):
        o, d = rays.origins.to(device, dtype), rays.directions.to(device, dtype)
        out = fastfield.ndc_rays(o, d, 48, 64, 120.0, near=1.0)
        expected = reference.ndc_rays(*as64(o, d), 48, 64, 120.0, 1.0)
        assert out.origins.dtype == dtype and out.origins.shape == (n_rays, 3)
        assert_close_per_ray(out.origins, expected.origins, rtol=tol)
        assert_close_per_ray(out.directions, expected.directions, rtol=tol)


def test_ndc_rays_nan_and_non_contiguous(device):
    o, d = make_rays(6, device)
    d[:, 2] = -d[:, 2].abs() - 0.1
    expected = fastfield.ndc_rays(o, d, 40, 50, 30.0, 1.5)
    out = fastfield.ndc_rays(o.t().contiguous().t(), d.t().contiguous().t(), 40, 50, 30.0, 1.5)
    for a, b in zip(out, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    o[2, 0] = float("nan")
    out = fastfield.ndc_rays(o, d, 40, 50, 30.0, 1.5)
    assert torch.isnan(out.origins[2, 0]) and torch.isnan(out.directions[2, 0])
    others = [0, 1, 3, 4, 5]
    assert torch.isfinite(out.origins[others]).all()
    assert torch.isfinite(out.directions[others]).all()


# ----------------------------------------------------------------------------- near_far_sphere

@pytest.mark.parametrize("mode", ["neus", "exact"])
@pytest.mark.parametrize("radius", [1.0, 2.5])
def test_near_far_sphere_matches_reference(device, mode, radius):
    for n_rays in (0, 1, 500):
        o, d = make_rays(n_rays, device, seed=n_rays)
        expected = reference.near_far_sphere(o, d, radius, mode)
        out = fastfield.near_far_sphere(o, d, radius=radius, mode=mode)
        assert out.hit.dtype == torch.bool and out.near.shape == (n_rays,)
        assert torch.equal(out.hit, expected.hit)
        torch.testing.assert_close(out.near, expected.near, rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(out.far, expected.far, rtol=1e-13, atol=1e-13)
        # float32 against the float64 twin on the same inputs, away from tangency (where hit
        # may flip and sqrt amplifies rounding).
        o32, d32 = o.float(), d.float()
        expected = reference.near_far_sphere(*as64(o32, d32), radius, mode)
        out = fastfield.near_far_sphere(o32, d32, radius, mode)
        t_mid = -(o32.double() * d32.double()).sum(-1) / d32.double().square().sum(-1)
        closest_sq = (o32.double() + t_mid[:, None] * d32.double()).square().sum(-1)
        clear = (closest_sq - radius ** 2).abs() > 1e-3
        assert torch.equal(out.hit[clear], expected.hit[clear])
        scale = 1 + t_mid.abs()[clear]
        for got, want in ((out.near, expected.near), (out.far, expected.far)):
            assert ((got.double()[clear] - want[clear]).abs() <= 2e-6 * scale).all()
    if mode == "exact":
        assert expected.hit.any() and not expected.hit.all()


def test_near_far_sphere_exact_points_lie_on_the_sphere(device):
    o, d = make_rays(2000, device, spread=2.0)
    radius = 1.5
    out = fastfield.near_far_sphere(o, d, radius, "exact")
    hit = out.hit
    assert hit.sum() > 300 and (~hit).sum() > 300
    far_points = o + out.far[:, None] * d
    torch.testing.assert_close(far_points[hit].norm(dim=-1), torch.full_like(out.far[hit], radius))
    # Outside the sphere: the entry point is on it; inside: near is clamped to the origin.
    outside = hit & (o.norm(dim=-1) > radius)
    near_points = o + out.near[:, None] * d
    torch.testing.assert_close(near_points[outside].norm(dim=-1),
                               torch.full_like(out.near[outside], radius))
    inside = o.norm(dim=-1) < radius
    assert inside.any() and hit[inside].all() and (out.near[inside] == 0).all()
    # Misses and spheres behind the ray: near = far = max(t_mid, 0), t_mid = -(o.d)/(d.d) to
    # rounding: a dot product is good to a few ulp of |o||d| (not of |o.d|, which cancels), and
    # the kernel's rounding differs from torch's where its compiler contracts a*b+c into an FMA
    # (nvcc does): |error| <= 4 eps (|o|/|d| + |t_mid|).
    t_mid = -(o * d).sum(-1) / (d * d).sum(-1)
    bound = 4 * torch.finfo(o.dtype).eps * (o.norm(dim=-1) / d.norm(dim=-1) + t_mid.abs())
    assert ((out.near - t_mid.clamp_min(0)).abs() <= bound)[~hit].all()
    assert torch.equal(out.near[~hit], out.far[~hit])


def test_near_far_sphere_neus_is_closest_approach_plus_minus_radius(device):
    o, d = make_rays(100, device)
    d = d / d.norm(dim=-1, keepdim=True)  # NeuS normalises its directions
    out = fastfield.near_far_sphere(o, d)
    # NeuS's own formula: a = |d|^2, b = 2 o.d, mid = -b / (2a).
    mid = 0.5 * (-2.0 * (o * d).sum(-1)) / (d * d).sum(-1)
    torch.testing.assert_close(out.near, mid - 1.0, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(out.far, mid + 1.0, rtol=1e-14, atol=1e-14)
    closest = (o + mid[:, None] * d).norm(dim=-1)
    assert torch.equal(out.hit, closest <= 1.0)


def test_near_far_sphere_special_rays(device):
    tensor = lambda x: torch.tensor(x, dtype=F64, device=device)  # noqa: E731
    o = tensor([[0, 0, 5], [0, 0, 5], [0, 0, -5], [0, 2, 5], [0, 0, 0], [float("nan"), 0, 0]])
    d = tensor([[0, 0, -2], [0, 0, 1], [0, 0, -1], [0, 0, -1], [1, 0, 0], [1, 0, 0]])
    out = fastfield.near_far_sphere(o, d, 1.0, "exact")
    # Head-on with |d| = 2: t in units of d. Behind: near = far = 0. Miss: closest approach.
    torch.testing.assert_close(out.near[:5], tensor([2.0, 0.0, 0.0, 5.0, 0.0]))
    torch.testing.assert_close(out.far[:5], tensor([3.0, 0.0, 0.0, 5.0, 1.0]))
    assert out.hit.tolist() == [True, False, False, False, True, False]
    assert torch.isnan(out.near[5]) and torch.isnan(out.far[5])
    neus = fastfield.near_far_sphere(o, d, 1.0, "neus")
    assert torch.isnan(neus.near[5]) and not neus.hit[5] and torch.isfinite(neus.near[:5]).all()


# ----------------------------------------------------------------------------- near_far_aabb

AABB = (-1.0, -0.5, -2.0, 1.5, 1.0, 0.5)


def on_box_surface(points, aabb, tol):
    lo, hi = aabb[:3], aabb[3:]
    inside = ((points >= lo - tol) & (points <= hi + tol)).all(-1)
    on_face = ((points - lo).abs() <= tol) | ((points - hi).abs() <= tol)
    return inside & on_face.any(-1)


def test_near_far_aabb_matches_reference(device):
    for n_rays in (0, 1, 800):
        o, d = make_rays(n_rays, device, seed=n_rays)
        # Some axis-parallel directions, +0 and -0.
        d[::7, 0] = 0.0
        d[1::7, 1] = -0.0
        d[2::11, :2] = 0.0
        for dtype, tol in ((F64, 1e-13), (F32, 2e-6)):
            aabb = torch.tensor(AABB, dtype=dtype, device=device)
            out = fastfield.near_far_aabb(o.to(dtype), d.to(dtype), aabb)
            expected = reference.near_far_aabb(*as64(o.to(dtype), d.to(dtype), aabb))
            assert out.near.dtype == dtype and out.hit.shape == (n_rays,)
            if dtype == F64:
                assert torch.equal(out.hit, expected.hit)
            # float32: hit may flip for rays that graze an edge; compare where both agree.
            same = out.hit == expected.hit
            assert (~same).sum() <= n_rays // 100
            torch.testing.assert_close(out.near[same].double(), expected.near[same], rtol=tol,
                                       atol=tol)
            torch.testing.assert_close(out.far[same].double(), expected.far[same], rtol=tol,
                                       atol=tol)


def test_near_far_aabb_points_on_box_surface(device):
    o, d = make_rays(3000, device, spread=2.0)
    aabb = torch.tensor(AABB, dtype=F64, device=device)
    out = fastfield.near_far_aabb(o, d, aabb)
    hit = out.hit
    assert hit.sum() > 300 and (~hit).sum() > 300
    assert on_box_surface(o + out.far[:, None] * d, aabb, 1e-12)[hit].all()
    inside = ((o >= aabb[:3]) & (o <= aabb[3:])).all(-1)
    assert inside.any() and hit[inside].all() and (out.near[inside] == 0).all()
    entering = hit & ~inside
    assert on_box_surface(o + out.near[:, None] * d, aabb, 1e-12)[entering].all()
    assert (out.near[~hit] == 0).all() and (out.far[~hit] == 0).all()
    assert (out.near[hit] <= out.far[hit]).all()


def test_near_far_aabb_axis_parallel_and_special_rays(device):
    tensor = lambda x: torch.tensor(x, dtype=F64, device=device)  # noqa: E731
    aabb = tensor([0, 0, 0, 1, 1, 1])
    nan = float("nan")
    rays = [  # origin, direction, (near, far, hit)
        ((-1, 0.5, 0.5), (2, 0, 0), (0.5, 1.0, True)),    # axis-parallel through the box
        ((-1, 0.5, 0.5), (1, -0.0, 0), (1.0, 2.0, True)),  # -0 component
        ((-1, 2.0, 0.5), (1, 0, 0), (0, 0, False)),       # parallel, outside the y slab
        ((-1, 1.0, 0.5), (1, 0, 0), (1.0, 2.0, True)),    # parallel, on the face y = 1
        ((-1, 0.0, 0.0), (1, 0, 0), (1.0, 2.0, True)),    # along an edge
        ((0.5, 0.5, 0.5), (0, 0, 1), (0.0, 0.5, True)),   # origin inside
        ((0.5, 0.5, 0.5), (0, 0, 0), (0.0, float("inf"), True)),  # zero direction inside
        ((2, 0.5, 0.5), (1, 0, 0), (0, 0, False)),        # box behind the ray
        ((2, 0, 0.5), (-1, 1, 0), (1.0, 1.0, True)),      # touches the edge x = y = 1 only
        ((2.1, 0, 0.5), (-1, 1, 0), (0, 0, False)),       # passes just beside it
    ]
    o = tensor([r[0] for r in rays])
    d = tensor([r[1] for r in rays])
    out = fastfield.near_far_aabb(o, d, aabb)
    assert out.hit.tolist() == [r[2][2] for r in rays]
    torch.testing.assert_close(out.near, tensor([r[2][0] for r in rays]))
    torch.testing.assert_close(out.far, tensor([r[2][1] for r in rays]))
    expected = reference.near_far_aabb(o, d, aabb)
    for got, want in zip(out, expected):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    # NaN rays: NaN bounds, no hit, also when the NaN sits on a parallel axis.
    o_nan = tensor([[nan, 0.5, 0.5], [0.5, nan, 0.5], [0.5, 0.5, 0.5]])
    d_nan = tensor([[1, 0, 0], [1, 0, 0], [nan, 0, 1]])
    out = fastfield.near_far_aabb(o_nan, d_nan, aabb)
    assert torch.isnan(out.near).all() and torch.isnan(out.far).all() and not out.hit.any()
    expected = reference.near_far_aabb(o_nan, d_nan, aabb)
    assert torch.isnan(expected.near).all() and not expected.hit.any()


def test_bounds_non_contiguous_and_sequence_aabb(device):
    o, d = make_rays(50, device)
    box = torch.tensor(AABB, dtype=F64, device=device)
    expected = fastfield.near_far_aabb(o, d, box)
    out = fastfield.near_far_aabb(o.t().contiguous().t(), d.t().contiguous().t(), list(AABB))
    for a, b in zip(out, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    wide = torch.zeros(12, dtype=F64, device=device)
    wide[::2] = box
    out = fastfield.near_far_aabb(o, d, wide[::2])
    for a, b in zip(out, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    expected = fastfield.near_far_sphere(o, d, 1.0, "exact")
    out = fastfield.near_far_sphere(o.t().contiguous().t(), d[:, :], 1.0, "exact")
    for a, b in zip(out, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_ray_ops_bad_input(device):
    o, d = make_rays(4, device, dtype=F32)
    box = torch.tensor(AABB, device=device)
    for name, fn in (("ndc_rays", lambda o, d: fastfield.ndc_rays(o, d, 4, 5, 3.0)),
                     ("near_far_sphere", fastfield.near_far_sphere),
                     ("near_far_aabb", lambda o, d: fastfield.near_far_aabb(o, d, box))):
        with pytest.raises(ValueError, match=rf"{name}: origins must be \[n_rays, 3\]"):
            fn(o[:, :2], d)
        with pytest.raises(ValueError, match=rf"{name}: directions must be \[n_rays, 3\]"):
            fn(o, d[:3])
        with pytest.raises(TypeError, match=rf"{name}: origins must be float32 or float64"):
            fn(o.int(), d)
        with pytest.raises(TypeError, match="directions must have the dtype of origins"):
            fn(o, d.double())
        with pytest.raises(TypeError, match="origins must be a torch.Tensor"):
            fn(o.tolist(), d)
        if device.type == "cpu" and torch.cuda.is_available():
            with pytest.raises(ValueError, match="same device"):
                fn(o, d.cuda())
    with pytest.raises(ValueError, match="mode must be one of 'neus', 'exact'"):
        fastfield.near_far_sphere(o, d, mode="closest")
    with pytest.raises(ValueError, match=r"aabb must be \[6\]"):
        fastfield.near_far_aabb(o, d, box[:3])
    with pytest.raises(TypeError, match="aabb must have the dtype of origins"):
        fastfield.near_far_aabb(o, d, box.double())
    if device.type == "cpu":
        with pytest.raises(ValueError, match=r"aabb must have min <= max"):
            fastfield.near_far_aabb(o, d, [0, 0, 1, 1, 1, 0])
        with pytest.raises(ValueError, match=r"aabb must have min <= max"):
            fastfield.near_far_aabb(o, d, [0, 0, float("nan"), 1, 1, 1])


def test_ray_ops_are_not_differentiable():
    c2w, intrinsics = make_cameras(2, "cpu")
    c2w.requires_grad_()
    rays = fastfield.generate_rays(c2w, intrinsics, fastfield.image_pixels(1, 2, 2))
    with pytest.raises(RuntimeError, match="fastfield::generate_rays is not implemented"):
        rays.directions.sum().backward()
    o, d = make_rays(3, "cpu")
    o.requires_grad_()
    for name, out in (("ndc_rays", fastfield.ndc_rays(o, d, 4, 4, 2.0).origins),
                      ("near_far_sphere", fastfield.near_far_sphere(o, d).near),
                      ("near_far_aabb", fastfield.near_far_aabb(o, d, AABB).far)):
        with pytest.raises(RuntimeError, match=f"fastfield::{name} is not implemented"):
            out.sum().backward()


def test_opcheck(device):
    c2w, intrinsics = make_cameras(3, device, rows=3)
    pixels = torch.tensor([[0, 1, 2], [2, 3, 4], [1, 0, 0]], device=device)
    torch.library.opcheck(torch.ops.fastfield.generate_rays,
                          (c2w, intrinsics, pixels, 1, 0.5, True))
    o, d = make_rays(5, device)
    torch.library.opcheck(torch.ops.fastfield.ndc_rays, (o, d, 40.0, 50.0, 30.0, 1.0))
    torch.library.opcheck(torch.ops.fastfield.near_far_sphere, (o, d, 1.0, 1))
    torch.library.opcheck(torch.ops.fastfield.near_far_aabb,
                          (o, d, torch.tensor(AABB, dtype=F64, device=device)))


def ndc_rounding_scale(o, d, height, width, focal, near):
    """Per output element of ndc_rays, the magnitude that its float rounding error is a few eps
    of ([n_rays, 3] for origins and directions): the terms the formula adds up, not its result.
    x/z and d_x/d_z - x/z cancel (the shifted origin lies on the near plane z = -near), so the
    error relative to the result is unbounded, while |error| <= ~eps * these terms (measured
    under 1.5 eps for float32 on the CPU, whose compiler contracts nothing; an FMA only removes
    roundings)."""
    o, d = o.double(), d.double()
    t = -(near + o[:, 2]) / d[:, 2]
    shifted = o + t[:, None] * d
    size = o.abs() + (t[:, None] * d).abs()  # |o| + |t d|: the error scale of o + t d
    z = shifted[:, 2].abs()
    scale = torch.tensor([2 * focal / width, 2 * focal / height], dtype=F64, device=o.device)
    ratio = shifted[:, :2] / shifted[:, 2:]
    ratio_scale = (size[:, :2] + ratio.abs() * size[:, 2:]) / z[:, None] + ratio.abs()
    depth_scale = 2 * near * size[:, 2] / z ** 2
    origins = torch.cat([scale * ratio_scale, (depth_scale + 1)[:, None]], -1)
    slope = (d[:, :2] / d[:, 2:]).abs()
    directions = torch.cat([scale * (slope + ratio_scale), depth_scale[:, None]], -1)
    return origins, directions


def test_ndc_rays_float32_within_rounding_of_the_terms(device):
    """General rays (not forward-facing): float32 ndc_rays within 4 eps of the magnitudes of
    the terms it adds (ndc_rounding_scale) of the float64 result, where a relative bound would
    not hold (differences of ratios that cancel)."""
    o, d = make_rays(20000, device, dtype=F32, seed=4)
    out = fastfield.ndc_rays(o, d, 48, 64, 50.0)
    expected = reference.ndc_rays(*as64(o, d), 48, 64, 50.0, 1.0)
    scales = ndc_rounding_scale(o, d, 48, 64, 50.0, 1.0)
    eps = torch.finfo(F32).eps
    for got, want, scale in zip(out, expected, scales):
        finite = torch.isfinite(want)
        assert ((got.double() - want).abs() <= 4 * eps * scale)[finite].all()


def test_cuda_matches_cpu(cuda):
    """Same float32 inputs on both devices. nvcc contracts a*b+c into FMAs, the CPU build does
    not, so the last bits differ, and each case is compared by how its formula conditions
    them: generate_rays (rotations of unit vectors) and near_far_aabb (products of differences)
    to 2e-6 relative and absolute; ndc_rays, whose ratios cancel, by the magnitude of its terms
    (each device within 4 eps of them of the float64 result); near_far_sphere away from
    tangency (where hit may flip and sqrt amplifies rounding), to 2e-6 of 1 + |t_mid|."""
    c2w, intrinsics = make_cameras(20, "cpu", dtype=F32)
    pixels = fastfield.random_pixels(5000, 22, 48, 64, generator=torch.Generator().manual_seed(0))
    o, d = make_rays(5000, "cpu", dtype=F32)
    aabb = torch.tensor(AABB)
    results = {}
    for dev in ("cpu", cuda):
        with fastfield._backend.value_checks(-1):  # camera ids 20, 21 are invalid: NaN rays
            rays = fastfield.generate_rays(c2w.to(dev), intrinsics.to(dev), pixels.to(dev),
                                           "opencv", 0.5, True)
        results[str(dev)] = {
            "rays": list(rays),
            "ndc": list(fastfield.ndc_rays(o.to(dev), d.to(dev), 48, 64, 50.0)),
            "sphere": fastfield.near_far_sphere(o.to(dev), d.to(dev), 2.0, "exact"),
            "aabb": list(fastfield.near_far_aabb(o.to(dev), d.to(dev), aabb.to(dev)))}
    cpu, gpu = results["cpu"], results[str(cuda)]
    for got, want in zip(gpu["rays"] + gpu["aabb"], cpu["rays"] + cpu["aabb"]):
        if want.dtype == torch.bool:
            assert (got.cpu() != want).float().mean() < 1e-3
        else:
            torch.testing.assert_close(got.cpu(), want, rtol=2e-6, atol=2e-6, equal_nan=True)
    expected = reference.ndc_rays(*as64(o, d), 48, 64, 50.0, 1.0)
    eps = torch.finfo(F32).eps
    for k, scale in enumerate(ndc_rounding_scale(o, d, 48, 64, 50.0, 1.0)):
        finite = torch.isfinite(expected[k])
        for outputs in (cpu["ndc"], gpu["ndc"]):
            error = (outputs[k].cpu().double() - expected[k]).abs()
            assert (error <= 4 * eps * scale)[finite].all()
    t_mid = -(o.double() * d.double()).sum(-1) / d.double().square().sum(-1)
    closest_sq = (o.double() + t_mid[:, None] * d.double()).square().sum(-1)
    clear = (closest_sq - 4.0).abs() > 1e-3
    assert torch.equal(gpu["sphere"].hit.cpu()[clear], cpu["sphere"].hit[clear])
    for name in ("near", "far"):
        got, want = getattr(gpu["sphere"], name).cpu(), getattr(cpu["sphere"], name)
        assert ((got.double() - want.double()).abs() <= 2e-6 * (1 + t_mid.abs()))[clear].all()
