"""Importance sampling against the eager reference, float32: nerf-pytorch's fine-sampling step
(sample_pdf over the coarse midpoints with weights[..., 1:-1], then the merge with the coarse
t), the same at test time (det=True, no random draw), and one NeuS up-sampling step
(neus_upsample + merge). Random quantiles are drawn inside the timed step for both
implementations, as in a training step; both draw them with the same helper
(fastfield/core/random.py), so that draw is a shared floor under the fastfield timings.
"""
import pytest
import torch

import fastfield
from fastfield import reference
from conftest import by_mode, run

N_RAYS = by_mode(smoke=[256], cpu=[4096], gpu=[4096, 65536])
CPU_MAX_RAYS = 4096                   # the 65536-ray size is for CUDA
N_COARSE, N_FINE = 64, 128           # nerf-pytorch lego: N_samples 64, N_importance 128
NEUS_SAMPLES, NEUS_NEW = 64, 16       # NeuS: n_samples 64, up-sampled 16 per step


def _ops_for(impl, device, n_rays):
    """fastfield or fastfield.reference; skips the CUDA-only size on the CPU."""
    if device.type == "cpu" and n_rays > CPU_MAX_RAYS:
        pytest.skip(f"{n_rays} rays run on CUDA only")
    return fastfield if impl == "fastfield" else reference


def _nerf_coarse(n_rays, device):
    """Stratified coarse t in [2, 6] and the weights of a density peaked at a random surface
    (what a trained coarse model gives), composited the nerf-pytorch way."""
    g = torch.Generator().manual_seed(0)
    base = torch.linspace(2.0, 6.0, N_COARSE)
    t = base + torch.rand(n_rays, N_COARSE, generator=g) * (4.0 / (N_COARSE - 1))
    surface = 2.5 + 3.0 * torch.rand(n_rays, 1, generator=g)
    sigma = 40.0 * torch.exp(-((t - surface) / 0.15) ** 2)
    sigma = sigma + 0.05 * torch.relu(torch.randn(n_rays, N_COARSE, generator=g))
    deltas = torch.cat([t[:, 1:] - t[:, :-1], torch.full((n_rays, 1), 1e10)], -1)
    weights = reference.composite_density(sigma, torch.zeros(n_rays, N_COARSE, 3), deltas).weights
    return t.to(device), weights.to(device)


def _neus_rays(n_rays, device):
    """Rays at a sphere of radius 0.5 from distance 3, NeuS near/far 2/4, noisy sphere SDF."""
    g = torch.Generator().manual_seed(0)
    d = torch.nn.functional.normalize(torch.randn(n_rays, 3, generator=g), dim=-1)
    o = -3.0 * d + 0.3 * torch.randn(n_rays, 3, generator=g)
    shift = (torch.rand(n_rays, 1, generator=g) - 0.5) / NEUS_SAMPLES
    t = 2.0 + 2.0 * (torch.linspace(0.0, 1.0, NEUS_SAMPLES) + shift)
    sdf = (o[:, None] + t[..., None] * d[:, None]).norm(dim=-1) - 0.5
    sdf = sdf + 0.01 * torch.randn(n_rays, NEUS_SAMPLES, generator=g)
    return [x.to(device) for x in (o, d, t, sdf)]


@pytest.mark.parametrize("n_rays", N_RAYS)
def bench_nerf_fine_sampling(benchmark, impl, device, n_rays):
    ops = _ops_for(impl, device, n_rays)
    t, weights = _nerf_coarse(n_rays, device)

    def step():
        mids = 0.5 * (t[:, 1:] + t[:, :-1])
        fine = ops.sample_pdf(mids, weights[:, 1:-1], N_FINE)
        return ops.merge_sorted(t, fine)

    run(benchmark, step, device,
        f"nerf fine sampling: sample_pdf {N_COARSE - 2} bins -> {N_FINE} + merge, random u, "
        f"{device.type} {n_rays} rays", impl=impl)


@pytest.mark.parametrize("n_rays", N_RAYS)
def bench_nerf_fine_sampling_det(benchmark, impl, device, n_rays):
    ops = _ops_for(impl, device, n_rays)
    t, weights = _nerf_coarse(n_rays, device)

    def step():
        mids = 0.5 * (t[:, 1:] + t[:, :-1])
        fine = ops.sample_pdf(mids, weights[:, 1:-1], N_FINE, det=True)
        return ops.merge_sorted(t, fine)

    run(benchmark, step, device,
        f"nerf fine sampling: sample_pdf {N_COARSE - 2} bins -> {N_FINE} + merge, det=True, "
        f"{device.type} {n_rays} rays", impl=impl)


@pytest.mark.parametrize("n_rays", N_RAYS)
def bench_neus_upsample(benchmark, impl, device, n_rays):
    ops = _ops_for(impl, device, n_rays)
    o, d, t, sdf = _neus_rays(n_rays, device)

    def step():
        new_t = ops.neus_upsample(o, d, t, sdf, NEUS_NEW, 64.0)
        return ops.merge_sorted(t, new_t)

    run(benchmark, step, device,
        f"neus upsample: {NEUS_SAMPLES} -> +{NEUS_NEW} + merge, {device.type} {n_rays} rays",
        impl=impl)
