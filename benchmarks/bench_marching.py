"""Ray marching through an occupancy grid (the kernels against the pure-PyTorch twin, same run)
and the grid's update, float32.

The scene stands in for a trained lego grid: a 128^3 grid over [-1.5, 1.5]^3 (32^3 in smoke
mode) whose occupied cells are a hollow box shell plus a ball, about 4% of the cells, with the
instant-ngp step size (box diagonal / 1024); rays from an orbit of radius 4 at random pixels of
an 800 x 800 camera with lego's field of view, near 2, far 6. ``extra_info`` records the samples
per ray and the walk's steps (samples + skips).
"""
import math

import pytest
import torch

import fastfield
from fastfield import reference
from conftest import by_mode, run

RESOLUTION = by_mode(smoke=32, cpu=128, gpu=128)
BATCHES = by_mode(smoke=[256], cpu=[4096], gpu=[4096, 65536, 262144])
BOX = (-1.5, -1.5, -1.5, 1.5, 1.5, 1.5)
STEP = math.sqrt(3) * 3.0 / 1024


def scene_grid(device) -> fastfield.OccupancyGrid:
    """The benchmark's grid: a shell of thickness 0.1 around the box [-0.6, 0.6]^3 plus a ball of
    radius 0.35 at (0.4, -0.3, 0.8)."""
    grid = fastfield.OccupancyGrid(BOX, RESOLUTION, step_size=STEP).to(device)

    def density(x):
        shell = ((x.abs().amax(-1) - 0.6).abs() < 0.05).float()
        ball = ((x - torch.tensor([0.4, -0.3, 0.8], device=x.device)).norm(dim=-1) < 0.35).float()
        return 100.0 * torch.maximum(shell, ball)

    grid.update(0, density, generator=torch.Generator(device).manual_seed(0))
    return grid


def orbit_rays(n_rays, device):
    g = torch.Generator().manual_seed(1)
    angle = torch.rand(n_rays, generator=g) * 2 * math.pi
    eye = torch.stack([4 * torch.cos(angle), 4 * torch.sin(angle), torch.full_like(angle, 1.5)], -1)
    forward = torch.nn.functional.normalize(-eye, dim=-1)
    right = torch.nn.functional.normalize(torch.cross(forward, torch.tensor([0.0, 0, 1]).expand_as(
        forward), dim=-1), dim=-1)
    up = torch.cross(right, forward, dim=-1)
    half_fov = 0.5 * 0.6911112
    x, y = ((torch.rand(n_rays, 2, generator=g) * 2 - 1) * math.tan(half_fov)).unbind(-1)
    directions = forward + x[:, None] * right + y[:, None] * up
    return eye.to(device), directions.to(device)


@pytest.mark.parametrize("n_rays", BATCHES, ids=lambda n: f"{n}rays")
@pytest.mark.parametrize("variant", ["exact", "fixed"])
def bench_march_rays(benchmark, impl, device, n_rays, variant):
    grid = scene_grid(device)
    origins, directions = orbit_rays(n_rays, device)
    march = fastfield.march_rays if impl == "fastfield" else reference.march_rays
    exact = fastfield.march_rays(origins, directions, 2.0, 6.0, grid, STEP)
    n_samples = int(exact.n_valid)
    capacity = None if variant == "exact" else 2 * n_samples  # as a trainer would size it
    full = fastfield.OccupancyGrid(BOX, RESOLUTION, step_size=STEP).to(device)
    dense = int(fastfield.march_rays(origins, directions, 2.0, 6.0, full, STEP).n_valid)
    rounds = by_mode(1, 3, 20) if impl == "reference" else None
    run(benchmark, lambda: march(origins, directions, 2.0, 6.0, grid, STEP, capacity=capacity),
        device, f"march_rays {variant} {device.type} {RESOLUTION}^3 {n_rays} rays", rounds=rounds,
        impl=impl, n_rays=n_rays, resolution=RESOLUTION, step_size=STEP, dtype="float32",
        samples_per_ray=n_samples / n_rays, dense_steps_per_ray=dense / n_rays,
        occupied_fraction=float(grid.occupancy().float().mean()))


@pytest.mark.parametrize("phase", ["warmup", "after_warmup"])
@pytest.mark.parametrize("levels", [1, 4])
def bench_occupancy_update(benchmark, device, phase, levels):
    """One grid update with an analytic density (what is left is the grid's own work: the draw,
    the jittered points, the scatter of the moving maximum, the threshold and the packing)."""
    grid = fastfield.OccupancyGrid(BOX, RESOLUTION, levels=levels, step_size=STEP).to(device)
    step = 0 if phase == "warmup" else grid.warmup_steps
    generator = torch.Generator(device).manual_seed(0)

    def density(x):
        return 100.0 * (x.norm(dim=-1) < 0.8).float()

    run(benchmark, lambda: grid.update(step, density, generator=generator), device,
        f"occupancy update {phase} {device.type} {RESOLUTION}^3 x {levels} levels",
        rounds=by_mode(1, 5, 20), impl="fastfield", resolution=RESOLUTION, levels=levels,
        points=grid.cells_per_level * levels * (1 if phase == "warmup" else 0.5))
