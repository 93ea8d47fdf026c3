"""Fused compositing against the eager reference: forward + backward, float32, padded
[n_rays, n_samples] and packed (ray_offsets: rays of 0 .. 512 samples, 64 on average, as
occupancy-grid marching leaves them)."""
import pytest
import torch

import fastfield
from fastfield import reference
from conftest import by_mode, run, skip_gpu_size_on_cpu

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
    skip_gpu_size_on_cpu(device, size[0] * size[1])
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


SDF_SIZES = by_mode(smoke=[(64, 32)], cpu=[(4096, 128)], gpu=[(4096, 128), (65536, 128)])


def _sdf_inputs(n_rays, n_in, n_out, device):
    """NeuS-like inputs: rays through the unit sphere around a sphere SDF of radius 0.5, NeuS's
    sample spacing, inv_s = 64 (a mid-training value); with n_out, a background model."""
    g = torch.Generator().manual_seed(0)
    cam = torch.randn(n_rays, 3, generator=g)
    cam = 3 * cam / cam.norm(dim=-1, keepdim=True)
    d = 0.6 * (torch.rand(n_rays, 3, generator=g) * 2 - 1) - cam
    d = d / d.norm(dim=-1, keepdim=True)
    near = -(cam * d).sum(-1) - 1
    shift = torch.rand(n_rays, 1, generator=g) / n_in
    z = near[:, None] + 2 * (torch.linspace(0, 1, n_in)[None] + shift)
    dists = torch.full((n_rays, n_in), 2.0 / n_in)
    pts = cam[:, None] + d[:, None] * (z + dists * 0.5)[..., None]
    radius = pts.norm(dim=-1)
    inputs = {"sdf": radius - 0.5, "cos": ((pts / radius[..., None]) * d[:, None]).sum(-1),
              "dists": dists, "inv_s": torch.tensor(64.0),
              "rgb": torch.rand(n_rays, n_in, 3, generator=g)}
    if n_out:
        inputs["inside"] = (radius < 1).float()
        inputs["bg_alpha"] = 1 - torch.exp(-torch.rand(n_rays, n_in + n_out, generator=g) * 0.1)
        inputs["bg_rgb"] = torch.rand(n_rays, n_in + n_out, 3, generator=g)
    return {k: v.to(device) for k, v in inputs.items()}


@pytest.mark.parametrize("n_out", [0, 32], ids=["no_bg", "bg32"])
@pytest.mark.parametrize("size", SDF_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def bench_composite_sdf_fwd_bwd(benchmark, impl, device, size, n_out):
    """NeuS render_core's compositing: forward, then the gradients of the colour + mask losses
    (rgb and acc) with respect to the SDF network's outputs, inv_s and the background model.
    torch.autograd.grad, as the network behind these inputs would receive them (no .grad
    accumulation in the timing)."""
    skip_gpu_size_on_cpu(device, size[0] * (size[1] + n_out))
    x = _sdf_inputs(*size, n_out, device)
    leaves = [x[k].requires_grad_() for k in ("sdf", "cos", "inv_s", "rgb", "bg_alpha", "bg_rgb")
              if k in x]
    composite = fastfield.composite_sdf if impl == "fastfield" else reference.composite_sdf

    def step():
        out = composite(x["sdf"], x["cos"], x["dists"], x["inv_s"], x["rgb"], 0.5,
                        x.get("inside"), x.get("bg_alpha"), x.get("bg_rgb"))
        torch.autograd.grad(out.rgb.sum() + out.acc.sum(), leaves)

    label = "bg" if n_out else "no bg"
    run(benchmark, step, device,
        f"composite_sdf fwd+bwd {device.type} {size[0]}x{size[1]} {label}", impl=impl)


PACKED_RAYS = by_mode(smoke=[64], cpu=[4096], gpu=[4096, 65536])
MEAN_SAMPLES, MAX_SAMPLES = 64, 512


def packed_offsets(n_rays: int, seed: int = 0) -> torch.Tensor:
    """CSR offsets [n_rays + 1] of rays whose lengths are drawn from 0 .. 512 with mean 64:
    exponential (many short rays, few long ones: what occupancy-grid marching leaves), rounded
    down and capped."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.empty(n_rays, dtype=torch.float64).exponential_(1.0 / (MEAN_SAMPLES + 0.5),
                                                                     generator=g)
    lengths = lengths.floor().clamp(max=MAX_SAMPLES).long()
    return torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])


def packed_density_inputs(offsets: torch.Tensor, device):
    """sigma, rgb, deltas, t ([n_samples], rgb [n_samples, 3]) for packed rays: NeRF-like
    densities, t ascending within each ray from 2 in jittered steps of 4 / 64, the 1e10 last
    delta."""
    lengths = offsets[1:] - offsets[:-1]
    n = int(offsets[-1])
    g = torch.Generator().manual_seed(1)
    sigma = torch.relu(torch.randn(n, generator=g)) * 2
    rgb = torch.rand(n, 3, generator=g)
    local = torch.arange(n) - offsets[:-1].repeat_interleave(lengths)  # index within the ray
    t = 2 + (local + torch.rand(n, generator=g)) * (4.0 / MEAN_SAMPLES)
    last = local == lengths.repeat_interleave(lengths) - 1
    deltas = torch.where(last, torch.tensor(1e10), t.roll(-1) - t)
    return [x.to(device) for x in (sigma, rgb, deltas, t)]


@pytest.mark.parametrize("n_rays", PACKED_RAYS)
def bench_composite_density_packed_fwd_bwd(benchmark, impl, device, n_rays):
    offsets = packed_offsets(n_rays)
    skip_gpu_size_on_cpu(device, int(offsets[-1]))
    sigma, rgb, deltas, t = packed_density_inputs(offsets, device)
    offsets = offsets.to(device)
    sigma.requires_grad_()
    rgb.requires_grad_()
    composite = fastfield.composite_density if impl == "fastfield" else reference.composite_density

    def step():
        out = composite(sigma, rgb, deltas, t, offsets, None)
        (out.rgb.sum() + out.depth.sum()).backward()

    run(benchmark, step, device, f"composite_density packed fwd+bwd {device.type} {n_rays} rays "
        f"(0..{MAX_SAMPLES} samples, mean {MEAN_SAMPLES})", impl=impl)


@pytest.mark.parametrize("n_rays", PACKED_RAYS)
def bench_composite_sdf_packed_fwd_bwd(benchmark, impl, device, n_rays):
    offsets = packed_offsets(n_rays)
    n = int(offsets[-1])
    skip_gpu_size_on_cpu(device, n)
    padded = _sdf_inputs(n_rays, MAX_SAMPLES, 0, "cpu")
    keep = torch.arange(MAX_SAMPLES)[None] < (offsets[1:] - offsets[:-1])[:, None]
    x = {k: padded[k][keep].to(device) for k in ("sdf", "cos", "dists", "rgb")}
    leaves = [x[k].requires_grad_() for k in ("sdf", "cos", "rgb")]
    inv_s = padded["inv_s"].to(device).requires_grad_()
    offsets = offsets.to(device)
    composite = fastfield.composite_sdf if impl == "fastfield" else reference.composite_sdf

    def step():
        out = composite(x["sdf"], x["cos"], x["dists"], inv_s, x["rgb"], 0.5, None, None, None,
                        offsets)
        torch.autograd.grad(out.rgb.sum() + out.acc.sum(), leaves + [inv_s])

    run(benchmark, step, device, f"composite_sdf packed fwd+bwd {device.type} {n_rays} rays "
        f"(0..{MAX_SAMPLES} samples, mean {MEAN_SAMPLES})", impl=impl)
