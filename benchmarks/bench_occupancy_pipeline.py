"""NeRF with an occupancy grid (the occupancy-grid pipeline): one training step and one
full-image render, fastfield's kernels (march_rays, composite_density) against the reference
ops (the pure-PyTorch marching twin and compositing) in the same run.

The grid is set to a trained object's occupancy (workloads.occupy_like_a_trained_scene: a box
shell and a ball), so the samples per ray are those of a trained run rather than of a fresh
grid (all cells occupied). "pipeline" groups swap the network for one linear layer, as in
bench_end_to_end.py: the time left is marching, termination, compaction and compositing.
``extra_info`` records the marched and composited samples per ray.
"""
import pytest
import torch

from conftest import by_mode, run
from workloads import (image_render, make_model, occupy_like_a_trained_scene, orbit_cameras,
                       scene_bounds, training_step)
from fastfield.render import render

# (preset, batch rays, image height, image width) per mode.
OCC = by_mode(smoke=("nerf-small-occ", 64, 16, 16), cpu=("nerf-small-occ", 512, 100, 100),
              gpu=("nerf-lego-occ", 8192, 800, 800))
ROUNDS = by_mode(smoke=1, cpu=3, gpu=10)


def samples_per_ray(model, camera, n_rays):
    """(marched, composited) samples per ray of n_rays rays of camera 0, without gradients."""
    from fastfield.render import camera_rays
    from fastfield.ops import random_pixels_in_camera

    pixels = random_pixels_in_camera(n_rays, 0, camera.height, camera.width,
                                     generator=torch.Generator(camera.c2w.device).manual_seed(0),
                                     device=camera.c2w.device)
    rays = camera_rays(model, camera, pixels)
    near, far, _ = scene_bounds(model)
    with torch.no_grad():
        out = render(model, rays.origins, rays.directions, near, far)
    return float(out["samples"]) / n_rays, float(out["samples_kept"]) / n_rays


@pytest.mark.parametrize("fields", ["networks", "trivial"])
def bench_occ_training_step(benchmark, impl, e2e_device, fields):
    preset_name, n_rays, height, width = OCC
    model = occupy_like_a_trained_scene(make_model(preset_name, fields == "trivial", e2e_device))
    camera = orbit_cameras("nerf", 8, height, width, e2e_device)
    marched, kept = samples_per_ray(model, camera, n_rays)
    backend = "kernels" if impl == "fastfield" else "reference"
    group = "pipeline " if fields == "trivial" else ""
    run(benchmark, training_step(model, camera, n_rays, backend), e2e_device,
        f"{group}occ train step {preset_name} {n_rays} rays {e2e_device.type}", rounds=ROUNDS,
        impl=impl, preset=preset_name, fields=fields, n_rays=n_rays,
        marched_per_ray=marched, composited_per_ray=kept)


@pytest.mark.parametrize("fields", ["networks", "trivial"])
def bench_occ_image_render(benchmark, impl, e2e_device, fields):
    preset_name, _, height, width = OCC
    model = occupy_like_a_trained_scene(
        make_model(preset_name, fields == "trivial", e2e_device)).eval()
    camera = orbit_cameras("nerf", 1, height, width, e2e_device)
    marched, kept = samples_per_ray(model, camera, 4096)
    backend = "kernels" if impl == "fastfield" else "reference"
    group = "pipeline " if fields == "trivial" else ""
    run(benchmark, image_render(model, camera, backend), e2e_device,
        f"{group}occ image render {preset_name} {width}x{height} {e2e_device.type}",
        rounds=ROUNDS, impl=impl, preset=preset_name, fields=fields, pixels=height * width,
        marched_per_ray=marched, composited_per_ray=kept)
