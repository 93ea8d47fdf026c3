"""The occupancy-grid NeRF pipeline against independent statements of what it renders: a full
grid is dense constant-step sampling (composited here in float64), an empty grid is background,
early termination stays within its bound, the field never sees a point in an empty cell, and
sample-chunked renders equal unchunked ones."""
import math

import pytest
import torch
from torch import nn

from fastfield.core.packing import pack_bits
from fastfield.fields import NeRF, NeRFConfig, OccupancyConfig
from fastfield.fields.radiance import MLPConfig
from fastfield.render import OccupancyNeRFPipeline, pipeline_for, render
from marching_helpers import dense_steps, occupied_at

F64 = torch.float64
BOX = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)
BACKENDS = ["kernels", "reference"]


class BlobField(nn.Module):
    """An analytic radiance field: a Gaussian blob of density ``peak`` (raw, before ReLU) at the
    origin, colour a smooth function of position and direction; records every point it sees."""

    def __init__(self, peak: float = 30.0, width: float = 0.35):
        super().__init__()
        self.peak, self.width = peak, width
        self.seen = []
        self.anchor = nn.Parameter(torch.zeros(()))  # a parameter, for device/dtype lookups

    def forward(self, points, viewdirs):
        self.seen.append(points.detach().clone())
        sigma = self.peak * torch.exp(-(points ** 2).sum(-1) / self.width ** 2) - 1.0
        rgb = torch.stack([points[:, 0] * 3, points[:, 1] * 2 + viewdirs[:, 2],
                           points[:, 2] - viewdirs[:, 0]], -1)
        return sigma + self.anchor, rgb


def occ_model(field, resolution=8, step=0.02, eps=0.0):
    config = NeRFConfig(coarse=MLPConfig(depth=1, width=8), fine=None, n_fine=0,
                        sampler="occupancy",
                        occupancy=OccupancyConfig(resolution=resolution, aabb=BOX,
                                                  render_step_size=step, early_stop_eps=eps))
    return NeRF(config, coarse=field).double()


def camera_like_rays(n, seed=0):
    """Rays from a sphere of radius 3 towards points of the box, nerf-pytorch style
    (non-unit directions), some missing it; near 0.5, far 6."""
    g = torch.Generator().manual_seed(seed)
    origins = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=F64), dim=-1) * 3
    targets = (torch.rand(n, 3, generator=g, dtype=F64) * 2 - 1) * 1.3
    directions = (targets - origins) * (0.5 + torch.rand(n, 1, generator=g, dtype=F64))
    return origins, directions


def dense_reference(field, origins, directions, near, far, grid, step, background):
    """Every constant step between the box entry and exit (a full grid), composited in float64
    by the textbook formulas: alpha = 1 - exp(-sigma delta), T = prod(1 - alpha)."""
    norm = directions.norm(dim=-1)
    unit = directions / norm[:, None]
    steps = dense_steps(origins, unit, near * norm, far * norm, grid, step)
    rgb = torch.empty(len(steps), 3, dtype=F64)
    acc = torch.empty(len(steps), dtype=F64)
    for r, samples in enumerate(steps):
        if not samples:
            rgb[r], acc[r] = background, 0.0
            continue
        t = torch.tensor([[float(a), float(b)] for a, b in samples], dtype=F64)
        mid = t.mean(-1)
        points = origins[r] + unit[r] * mid[:, None]
        raw_sigma, raw_rgb = field(points, unit[r].expand_as(points))
        alpha = 1 - torch.exp(-torch.relu(raw_sigma) * (t[:, 1] - t[:, 0]))
        transmittance = torch.cumprod(torch.cat([alpha.new_ones(1), 1 - alpha[:-1]]), 0)
        weights = alpha * transmittance
        acc[r] = weights.sum()
        rgb[r] = (weights[:, None] * torch.sigmoid(raw_rgb)).sum(0) + (1 - acc[r]) * background
    return rgb, acc


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_full_grid_renders_dense_constant_step_sampling(backend):
    field = BlobField()
    model = occ_model(field, step=0.03)
    origins, directions = camera_like_rays(40)
    background = torch.tensor([0.2, 0.5, 1.0], dtype=F64)
    with torch.no_grad():
        out = render(model, origins, directions, 0.5, 6.0, background=background,
                     backend=backend)
        expected_rgb, expected_acc = dense_reference(field, origins, directions,
                                                     torch.full((40,), 0.5, dtype=F64),
                                                     torch.full((40,), 6.0, dtype=F64),
                                                     model.grid, 0.03, background)
    assert 0.3 < float(expected_acc.max()) and float(expected_acc.min()) == 0.0  # hits and misses
    torch.testing.assert_close(out["rgb"], expected_rgb, rtol=0, atol=1e-10)
    torch.testing.assert_close(out["acc"], expected_acc, rtol=0, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_empty_grid_renders_background_and_never_calls_the_field_on_a_point(backend):
    field = BlobField()
    model = occ_model(field)
    model.grid.bitfield.zero_()
    origins, directions = camera_like_rays(30)
    background = torch.tensor([0.3, 0.6, 0.9], dtype=F64)
    with torch.no_grad():
        out = render(model, origins, directions, 0.5, 6.0, background=background,
                     backend=backend)
    assert torch.equal(out["rgb"], background.expand(30, 3))
    assert torch.equal(out["acc"], torch.zeros(30, dtype=F64))
    assert int(out["samples"]) == 0
    assert sum(points.shape[0] for points in field.seen) == 0


@pytest.mark.parametrize("eps", [1e-4, 1e-2])
def test_early_termination_changes_the_image_by_less_than_its_threshold(eps):
    field = BlobField(peak=400.0, width=0.5)  # nearly opaque: most rays terminate inside
    origins, directions = camera_like_rays(200, seed=1)
    renders = {}
    for stop in (0.0, eps):
        model = occ_model(field, step=0.02, eps=stop)
        with torch.no_grad():
            renders[stop] = render(model, origins, directions, 0.5, 6.0,
                                   background=torch.ones(3, dtype=F64), backend="kernels")
    full, cut = renders[0.0], renders[eps]
    assert int(cut["samples_kept"]) < 0.7 * int(full["samples_kept"])  # it did drop samples
    # Colours and background lie in [0, 1]: the dropped tail moves each channel by <= eps.
    assert float((cut["rgb"] - full["rgb"]).abs().max()) <= eps
    assert float((cut["acc"] - full["acc"]).abs().max()) <= eps
    assert float((cut["rgb"] - full["rgb"]).abs().max()) > 0  # and the test can see it


def test_render_image_evaluates_the_field_only_in_occupied_cells_chunked_by_samples():
    from fastfield.data import Camera

    field = BlobField()
    model = occ_model(field, resolution=12, step=0.01, eps=1e-3).float()
    bits = torch.rand(12 ** 3, generator=torch.Generator().manual_seed(3)) < 0.4
    model.grid.bitfield.copy_(pack_bits(bits))
    c2w = torch.tensor([[1.0, 0, 0, 0.1], [0, 1, 0, -0.2], [0, 0, 1, 3.5]])[None]
    camera = Camera(c2w, torch.tensor([[40.0, 40.0, 16.0, 12.0]]), 24, 32, "opengl")
    pipeline = pipeline_for(model)
    out = {}
    for chunk in (None, 500):
        field.seen.clear()
        pipeline.sample_chunk = chunk
        with torch.no_grad():
            result = render(model, *_camera_rays(model, camera), 1.0, 6.0, pipeline=pipeline,
                            background=torch.ones(3))
        points = torch.cat(field.seen)
        assert points.shape[0] > 0 and bool(occupied_at(model.grid, points).all())
        if chunk is not None:
            assert max(p.shape[0] for p in field.seen) <= chunk and len(field.seen) > 2
        out[chunk] = result
    torch.testing.assert_close(out[500]["rgb"], out[None]["rgb"], rtol=0, atol=1e-6)


def test_ray_chunks_add_up_their_sample_counts():
    model = occ_model(BlobField(), step=0.05)
    origins, directions = camera_like_rays(50)
    with torch.no_grad():
        whole = render(model, origins, directions, 0.5, 6.0)
        chunked = render(model, origins, directions, 0.5, 6.0, chunk=7)
    assert int(chunked["samples"]) == int(whole["samples"]) > 0
    assert int(chunked["samples_kept"]) == int(whole["samples_kept"])
    torch.testing.assert_close(chunked["rgb"], whole["rgb"], rtol=0, atol=1e-12)


def _camera_rays(model, camera):
    from fastfield.ops import image_pixels
    from fastfield.render import camera_rays

    rays = camera_rays(model, camera, image_pixels(0, camera.height, camera.width))
    return rays.origins, rays.directions


def test_training_mode_with_a_capacity_pads_and_counts_dropped_rays():
    field = BlobField()
    model = occ_model(field, step=0.05).float()
    origins, directions = (x.float() for x in camera_like_rays(50))
    pipeline = pipeline_for(model)
    exact = render(model, origins, directions, 0.5, 6.0, pipeline=pipeline,
                   background=torch.ones(3))
    n = int(exact["samples"])
    pipeline.capacity = n + 7  # everything fits: the same image, padding composites to nothing
    padded = render(model, origins, directions, 0.5, 6.0, pipeline=pipeline,
                    background=torch.ones(3))
    torch.testing.assert_close(padded["rgb"], exact["rgb"], rtol=0, atol=1e-6)
    assert int(padded["dropped_rays"]) == 0 and field.seen[-1].shape[0] == n + 7
    pipeline.capacity = n // 2  # rays from the first that does not fit on are dropped
    short = render(model, origins, directions, 0.5, 6.0, pipeline=pipeline,
                   background=torch.ones(3))
    assert int(short["dropped_rays"]) > 0 and int(short["samples"]) <= n // 2
    short["rgb"].sum().backward()  # the graded pass trains the field


def test_the_pipeline_is_registered_for_occupancy_models_only():
    model = occ_model(BlobField())
    assert isinstance(pipeline_for(model), OccupancyNeRFPipeline)
    assert pipeline_for(model).grid is model.grid
    hierarchical = NeRF(NeRFConfig(coarse=MLPConfig(depth=1, width=8), fine=None, n_fine=0))
    assert not isinstance(pipeline_for(hierarchical), OccupancyNeRFPipeline)
    assert hierarchical.grid is None and "grid.bitfield" in model.state_dict()
    assert math.isclose(OccupancyConfig().step_size(), math.sqrt(3 * 3.0 ** 2) / 1024)
