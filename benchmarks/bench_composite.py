"""Fused compositing against the eager reference: forward + backward, float32."""
import pytest
import torch

import fastfield
from fastfield import reference
from conftest import by_mode, run

DENSITY_SIZES = by_mode(smoke=[(64, 32)], cpu=[(4096, 192)], gpu=[(4096, 192), (65536, 256)])


def _density_inputs(n_rays, n_samples, device):
    g = torch.Generator().manual_seed(0)
    sigma = torch.relu(torch.randn(n_rays, n_samples, generator=g)) * 2
    rgb = torch.rand(n_rays, n_samples, 3, generator=g)
    t = torch.sort(2 + 4 * torch.rand(n_rays, n_samples, generator=g), -1).values
    deltas = torch.cat([t[:, 1:] - t[:, :-1], torch.full((n_rays, 1), 1e10)], -1)
    return [x.to(device) for x in (sigma, rgb, deltas, t)]


@pytest.mark.parametrize("size", DENSITY_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def bench_composite_density_fwd_bwd(benchmark, impl, device, size):
    sigma, rgb, deltas, t = _density_inputs(*size, device)
    sigma.requires_grad_()
    rgb.requires_grad_()
    composite = fastfield.composite_density if impl == "fastfield" else reference.composite_density
    background = torch.ones(3, device=device)

    def step():
        out = composite(sigma, rgb, deltas, t, None, background)
        (out.rgb.sum() + out.depth.sum()).backward()

    run(benchmark, step, device, f"composite_density fwd+bwd {device.type} {size[0]}x{size[1]}",
        impl=impl)
