"""Early ray termination on packed samples: transmittance against a per-ray product, the kept
samples and their layouts, and the bound on what termination changes in a composited image."""
import math

import pytest
import torch

import fastfield
from fastfield.occupancy import (OccupancyGrid, collapse_samples, compact_samples,
                                 termination_mask, transmittance)

F64 = torch.float64


def marched(device, dtype=torch.float32, capacity=None, n_rays=300):
    """Rays through a ball-shaped grid, with a density that makes most of them opaque."""
    grid = OccupancyGrid((-1.5, -1.5, -1.5, 1.5, 1.5, 1.5), 16).to(device)
    grid.update(0, lambda x: 10.0 * (x.norm(dim=-1) < 1.0).float())
    g = torch.Generator().manual_seed(0)
    origins = torch.randn(n_rays, 3, generator=g) * 4
    directions = torch.randn(n_rays, 3, generator=g) * 0.4 - origins
    o, d = origins.to(device, dtype), directions.to(device, dtype)
    samples = fastfield.march_rays(o, d, 0.0, 10.0, grid, 0.02, capacity=capacity)
    points = o[samples.ray_indices] + ((samples.t_starts + samples.t_ends) / 2)[:, None] * d[
        samples.ray_indices]
    radius = points.norm(dim=-1)
    sigma = 40.0 * (radius < 0.9) + 3.0 * torch.cos(6 * radius).relu()
    rgb = torch.stack([points[:, 0].sigmoid(), radius.clamp(max=1), (1 - radius).clamp(0, 1)], -1)
    deltas = (samples.t_ends - samples.t_starts) * d.norm(dim=-1)[samples.ray_indices]
    return samples, sigma.to(dtype), rgb.to(dtype), deltas


def per_ray_transmittance(sigma, deltas, offsets):
    """T_i = prod_{j<i} exp(-sigma_j delta_j), ray by ray, in float64."""
    out = torch.empty_like(sigma, dtype=F64)
    offsets = offsets.tolist()
    for begin, end in zip(offsets[:-1], offsets[1:]):
        decay = torch.exp(-sigma[begin:end].double() * deltas[begin:end].double())
        out[begin:end] = torch.cumprod(torch.cat([decay.new_ones(1), decay[:-1]]), 0)
    return out


def test_transmittance_matches_the_per_ray_product(device):
    samples, sigma, _, deltas = marched(device, F64)
    t = transmittance(sigma, deltas, samples)
    expected = per_ray_transmittance(sigma, deltas, samples.ray_offsets)
    torch.testing.assert_close(t, expected, rtol=1e-8, atol=1e-300)
    assert (expected < 1e-4).any() and (expected > 0.5).any()


def test_nan_or_huge_density_stays_in_its_ray():
    samples, sigma, _, deltas = marched("cpu", F64)
    offsets = samples.ray_offsets
    ray = int((offsets.diff() > 3).nonzero()[0])
    sigma = sigma.clone()
    sigma[offsets[ray] + 1] = math.nan
    sigma[offsets[ray + 1] - 1] = math.inf
    t = transmittance(sigma, deltas, samples)
    expected = per_ray_transmittance(sigma, deltas, samples.ray_offsets)
    others = samples.ray_indices != ray
    torch.testing.assert_close(t[others], expected[others], rtol=1e-8, atol=1e-300)
    assert t[offsets[ray] + 1] == expected[offsets[ray] + 1]  # before the NaN sample: as usual
    assert (t[offsets[ray] + 2:offsets[ray + 1]] == 0).all()  # NaN counts as opaque


@pytest.mark.parametrize("threshold", [1e-4, 1e-2])
def test_termination_changes_the_image_by_less_than_the_threshold(device, threshold):
    samples, sigma, rgb, deltas = marched(device)
    background = torch.tensor([0.9, 0.1, 0.5], device=device)

    keep = termination_mask(sigma, deltas, samples, threshold)
    assert 0.2 < 1 - keep.float().mean() < 0.95  # termination does remove samples
    full = fastfield.composite_density(sigma, rgb, deltas, None, samples.ray_offsets, background)
    compact = compact_samples(samples, keep)
    assert int(compact.n_valid) == int(keep.sum())
    index = keep.nonzero()[:, 0]
    kept = fastfield.composite_density(sigma[index], rgb[index], deltas[index], None,
                                       compact.ray_offsets, background)
    collapsed = collapse_samples(samples, keep)
    masked = fastfield.composite_density(sigma, rgb, deltas * (collapsed.t_ends >
                                                               collapsed.t_starts), None,
                                         samples.ray_offsets, background)
    for out in (kept, masked):
        change = (out.rgb - full.rgb).abs()
        assert change.max() <= threshold and change.max() > 0.01 * threshold
        assert (out.acc - full.acc).abs().max() <= threshold
    torch.testing.assert_close(kept.rgb, masked.rgb, rtol=0, atol=1e-6)


def test_compaction_keeps_a_prefix_of_each_ray_in_order(device):
    samples, sigma, _, deltas = marched(device)
    keep = termination_mask(sigma, deltas, samples)
    t = per_ray_transmittance(sigma, deltas, samples.ray_offsets).to(device)
    assert torch.equal(keep, t > 1e-4)
    compact = compact_samples(samples, keep)
    offsets = samples.ray_offsets.tolist()
    for r in range(len(offsets) - 1):
        n = int(keep[offsets[r]:offsets[r + 1]].sum())
        begin = int(compact.ray_offsets[r])
        assert int(compact.ray_offsets[r + 1]) - begin == n
        assert keep[offsets[r]:offsets[r] + n].all()  # a prefix: T never rises
        assert torch.equal(compact.t_starts[begin:begin + n],
                           samples.t_starts[offsets[r]:offsets[r] + n])
        assert (compact.ray_indices[begin:begin + n] == r).all()


def test_fixed_capacity_compaction(device):
    samples, sigma, _, deltas = marched(device, capacity=40000)
    assert int(samples.n_dropped) == 0 and samples.t_starts.shape == (40000,)
    keep = termination_mask(sigma, deltas, samples)
    assert not keep[int(samples.n_valid):].any()  # padding is never kept
    exact = compact_samples(samples, keep)
    n = int(exact.n_valid)
    roomy = compact_samples(samples, keep, capacity=n + 100)
    assert torch.equal(roomy.ray_offsets[:-1], exact.ray_offsets[:-1])
    for a, b in ((roomy.t_starts, exact.t_starts), (roomy.t_ends, exact.t_ends),
                 (roomy.ray_indices, exact.ray_indices)):
        assert torch.equal(a[:n], b)
    assert (roomy.t_starts[n:] == 0).all() and (roomy.t_ends[n:] == 0).all()
    assert (roomy.ray_indices[n:] == 299).all()
    tight = compact_samples(samples, keep, capacity=n // 2)
    counts = exact.ray_offsets.diff()
    ends = exact.ray_offsets[1:]
    first_out = int((ends > n // 2).nonzero()[0])
    dropped = int((counts[first_out:-1] > 0).sum())  # the last ray may still fit the rest
    last_fits = int(counts[-1]) <= n // 2 - int(exact.ray_offsets[first_out])
    dropped += int(counts[-1] > 0 and not last_fits)
    assert int(tight.n_dropped) == dropped > 0
    assert torch.equal(tight.t_starts[:int(exact.ray_offsets[first_out])],
                       exact.t_starts[:int(exact.ray_offsets[first_out])])
