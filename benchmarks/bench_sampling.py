"""Stratified sampling against the eager reference, float32. ``u`` is drawn outside the timed
call (both implementations draw it with the same torch.rand call when given a generator)."""
import pytest
import torch

import fastfield
from fastfield import reference
from conftest import by_mode, run

SIZES = by_mode(smoke=[(64, 16)], cpu=[(4096, 64), (4096, 128)],
                gpu=[(4096, 64), (4096, 128), (65536, 128)])


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("jitter", ["per_sample", "per_ray"])
def bench_stratified_samples(benchmark, impl, device, size, jitter):
    n_rays, n_samples = size
    g = torch.Generator().manual_seed(0)
    near = (2.0 + torch.rand(n_rays, generator=g)).to(device)
    far = near + 4.0
    u_shape = (n_rays, n_samples) if jitter == "per_sample" else (n_rays,)
    u = torch.rand(u_shape, generator=g).to(device)
    sample = fastfield.stratified_samples if impl == "fastfield" else reference.stratified_samples
    run(benchmark, lambda: sample(near, far, n_samples, u=u, jitter=jitter), device,
        f"stratified_samples {jitter} {device.type} {n_rays}x{n_samples}", impl=impl,
        n_rays=n_rays, n_samples=n_samples, jitter=jitter, dtype="float32")
