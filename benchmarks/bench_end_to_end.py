"""What users time: a training step, a full-image render, and render_rays against ray count,
each with fastfield's kernels and with the reference ops (plain PyTorch, the way nerf-pytorch
and NeuS compute) in the same run.

"pipeline" groups swap the networks for one linear layer of the same shapes: the time left is
what fastfield owns (ray generation, sampling, compositing and the autograd around them). The
CPU targets are on those groups; whole-step ratios with the real networks are reported as they
are (the summary script puts the networks' share of the step beside them).
"""
import pytest

from conftest import by_mode, run
from workloads import image_render, make_model, orbit_cameras, ray_render, training_step

# (preset, batch rays, image height, image width) per mode.
NERF = by_mode(smoke=("nerf-small", 64, 16, 16), cpu=("nerf-small", 512, 100, 100),
               gpu=("nerf-lego", 1024, 800, 800))
NEUS = by_mode(smoke=("neus-small", 32, 12, 16), cpu=("neus-small", 256, 48, 64),
               gpu=("neus-womask", 512, 300, 400))
SCALING_RAYS = by_mode(smoke=[256], cpu=[1024, 4096, 16384],
                       gpu=[4096, 16384, 65536, 262144])
ROUNDS = by_mode(smoke=1, cpu=3, gpu=10)


@pytest.mark.parametrize("workload", [NERF, NEUS], ids=["nerf", "neus"])
@pytest.mark.parametrize("fields", ["networks", "trivial"])
def bench_training_step(benchmark, impl, e2e_device, workload, fields):
    preset_name, n_rays, height, width = workload
    model = make_model(preset_name, fields == "trivial", e2e_device)
    camera = orbit_cameras(model.kind, 8, height, width, e2e_device)
    backend = "kernels" if impl == "fastfield" else "reference"
    step = training_step(model, camera, n_rays, backend)
    group = "pipeline " if fields == "trivial" else ""
    run(benchmark, step, e2e_device, f"{group}train step {preset_name} {n_rays} rays "
        f"{e2e_device.type}", rounds=ROUNDS, impl=impl, preset=preset_name, fields=fields,
        n_rays=n_rays)


@pytest.mark.parametrize("workload", [NERF, NEUS], ids=["nerf", "neus"])
@pytest.mark.parametrize("fields", ["networks", "trivial"])
def bench_image_render(benchmark, impl, e2e_device, workload, fields):
    preset_name, _, height, width = workload
    model = make_model(preset_name, fields == "trivial", e2e_device).eval()
    camera = orbit_cameras(model.kind, 1, height, width, e2e_device)
    backend = "kernels" if impl == "fastfield" else "reference"
    group = "pipeline " if fields == "trivial" else ""
    run(benchmark, image_render(model, camera, backend), e2e_device,
        f"{group}image render {preset_name} {width}x{height} {e2e_device.type}",
        rounds=ROUNDS, impl=impl, preset=preset_name, fields=fields, pixels=height * width)


@pytest.mark.parametrize("workload", [NERF, NEUS], ids=["nerf", "neus"])
@pytest.mark.parametrize("n_rays", SCALING_RAYS)
def bench_render_rays_scaling(benchmark, impl, e2e_device, workload, n_rays):
    preset_name, _, height, width = workload
    model = make_model(preset_name, False, e2e_device).eval()
    camera = orbit_cameras(model.kind, 8, height, width, e2e_device)
    backend = "kernels" if impl == "fastfield" else "reference"
    run(benchmark, ray_render(model, camera, n_rays, backend), e2e_device,
        f"render_rays {preset_name} {n_rays} rays {e2e_device.type}", rounds=ROUNDS,
        impl=impl, preset=preset_name, n_rays=n_rays, scaling=True)
