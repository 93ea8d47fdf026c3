"""Ray generation per training step, batch-size dependent, float32.

Each step draws a random batch of rays from n_cameras synthetic cameras (a ring of look-at
poses, Blender-like intrinsics) and generates them. Four ways, one group per (device, batch):

- fastfield: ``random_pixels`` + ``generate_rays``: only the drawn rays are computed.
- reference: the same pixel draw + ``fastfield.reference.generate_rays`` (pure PyTorch).
- nerf_pytorch_image: nerf-pytorch's ``no_batching`` step: rays of one whole random image
  (``get_rays``), then a random subset of its pixels (``np.random.choice`` without
  replacement, as nerf-pytorch draws it).
- nerf_pytorch_precomputed: nerf-pytorch's batching mode: every ray of every training image
  computed and shuffled up front, then each step slices the next batch; only the slice is
  timed. The up-front time and memory, and the per-epoch reshuffle, are in extra_info,
  measured with fewer cameras than the scene has (100 x 800 x 800 rays x 6 floats is 1.5 GB)
  and scaled to the scene's count.
"""
import math
import time

import numpy as np
import pytest
import torch

import fastfield
from fastfield import reference
from conftest import by_mode, run, synchronize

BATCHES = by_mode(smoke=[1024], cpu=[1024, 4096, 16384, 65536], gpu=[1024, 4096, 16384, 65536])
N_CAMERAS, HEIGHT, WIDTH = by_mode(smoke=(4, 64, 64), cpu=(100, 800, 800), gpu=(100, 800, 800))
# Cameras whose rays the precompute baseline really materialises (then scaled to N_CAMERAS).
PRECOMPUTED_CAMERAS = by_mode(smoke=2, cpu=4, gpu=100)
METHODS = ["fastfield", "reference", "nerf_pytorch_image", "nerf_pytorch_precomputed"]


def synthetic_cameras(n_cameras, height, width, device):
    """Look-at poses on a ring of radius 4 around the origin (OpenGL camera axes) and
    intrinsics with the lego scene's focal length scaled to the image width."""
    angle = torch.linspace(0, 2 * math.pi, n_cameras + 1)[:-1]
    eye = torch.stack([4 * torch.cos(angle), 4 * torch.sin(angle), torch.full_like(angle, 2.0)], -1)
    back = torch.nn.functional.normalize(eye, dim=-1)  # camera z axis points away from the target
    right = torch.nn.functional.normalize(torch.cross(torch.tensor([0.0, 0.0, 1.0]).expand_as(back),
                                                      back, dim=-1), dim=-1)
    up = torch.cross(back, right, dim=-1)
    c2w = torch.stack([right, up, back, eye], -1)  # [n_cameras, 3, 4]
    focal = 1111.111 * width / 800
    intrinsics = torch.tensor([focal, focal, width / 2, height / 2]).expand(n_cameras, 4)
    return c2w.to(device), intrinsics.contiguous().to(device)


def nerf_pytorch_get_rays(H, W, K, c2w):
    """nerf-pytorch run_nerf_helpers.get_rays (its meshgrid is 'ij', then transposed)."""
    i, j = torch.meshgrid(torch.linspace(0, W - 1, W, device=c2w.device),
                          torch.linspace(0, H - 1, H, device=c2w.device), indexing="ij")
    i, j = i.t(), j.t()
    dirs = torch.stack([(i - K[0][2]) / K[0][0], -(j - K[1][2]) / K[1][1], -torch.ones_like(i)], -1)
    rays_d = torch.sum(dirs[..., np.newaxis, :] * c2w[:3, :3], -1)
    rays_o = c2w[:3, -1].expand(rays_d.shape)
    return rays_o, rays_d


def camera_matrix(intrinsics):
    fx, fy, cx, cy = intrinsics.tolist()
    return torch.tensor([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])


def image_then_select_step(c2w, K, n_rays, rng, device):
    """nerf-pytorch train(), no_batching branch (after precrop), one step's ray work."""
    img_i = rng.choice(c2w.shape[0])
    rays_o, rays_d = nerf_pytorch_get_rays(HEIGHT, WIDTH, K, c2w[img_i])
    coords = torch.stack(torch.meshgrid(torch.linspace(0, HEIGHT - 1, HEIGHT, device=device),
                                        torch.linspace(0, WIDTH - 1, WIDTH, device=device),
                                        indexing="ij"), -1)
    coords = torch.reshape(coords, [-1, 2])
    select_inds = rng.choice(coords.shape[0], size=[n_rays], replace=False)
    select_coords = coords[select_inds].long()
    rays_o = rays_o[select_coords[:, 0], select_coords[:, 1]]
    rays_d = rays_d[select_coords[:, 0], select_coords[:, 1]]
    return rays_o, rays_d


def precompute_all_rays(c2w, K, generator):
    """nerf-pytorch train(), batching branch: [n_cameras * H * W, 2, 3] rays, shuffled."""
    rays = torch.stack([torch.stack(nerf_pytorch_get_rays(HEIGHT, WIDTH, K, pose), 0)
                        for pose in c2w], 0)  # [N, ro+rd, H, W, 3]
    rays = rays.permute(0, 2, 3, 1, 4).reshape(-1, 2, 3)
    return rays[torch.randperm(rays.shape[0], generator=generator).to(rays.device)]


@pytest.mark.parametrize("n_rays", BATCHES, ids=lambda n: f"{n}rays")
@pytest.mark.parametrize("method", METHODS)
def bench_generate_rays_step(benchmark, method, device, n_rays):
    c2w, intrinsics = synthetic_cameras(N_CAMERAS, HEIGHT, WIDTH, device)
    generator = torch.Generator(device=device).manual_seed(0)
    group = f"generate_rays step {device.type} {N_CAMERAS}x{HEIGHT}x{WIDTH} {n_rays} rays"
    scene = {"n_cameras": N_CAMERAS, "height": HEIGHT, "width": WIDTH, "n_rays": n_rays,
             "dtype": "float32", "method": method}

    if method in ("fastfield", "reference"):
        generate = (fastfield.generate_rays if method == "fastfield"
                    else reference.generate_rays)

        def step():
            pixels = fastfield.random_pixels(n_rays, N_CAMERAS, HEIGHT, WIDTH,
                                             generator=generator, device=device)
            return generate(c2w, intrinsics, pixels)

        run(benchmark, step, device, group, impl=method, **scene)
    elif method == "nerf_pytorch_image":
        K = camera_matrix(intrinsics[0].cpu()).to(device)
        rng = np.random.RandomState(0)
        run(benchmark, lambda: image_then_select_step(c2w, K, n_rays, rng, device), device,
            group, impl=method, **scene)
    else:
        K = camera_matrix(intrinsics[0].cpu()).to(device)
        cpu_generator = torch.Generator().manual_seed(0)
        start = time.perf_counter()
        rays = precompute_all_rays(c2w[:PRECOMPUTED_CAMERAS], K, cpu_generator)
        synchronize(device)
        precompute_seconds = time.perf_counter() - start
        # nerf-pytorch reshuffles every ray after each epoch; timed once here, not per step.
        start = time.perf_counter()
        rays = rays[torch.randperm(rays.shape[0], generator=cpu_generator).to(device)]
        synchronize(device)
        reshuffle_seconds = time.perf_counter() - start
        nbytes = rays.numel() * rays.element_size()
        scale = N_CAMERAS / PRECOMPUTED_CAMERAS
        steps_per_epoch = rays.shape[0] // n_rays
        position = {"i_batch": 0}

        def step():
            i_batch = position["i_batch"]
            batch = torch.transpose(rays[i_batch:i_batch + n_rays], 0, 1)
            rays_o, rays_d = batch[0], batch[1]
            position["i_batch"] = (i_batch + n_rays) % (steps_per_epoch * n_rays)
            return rays_o, rays_d

        run(benchmark, step, device, group, impl=method, **scene,
            precomputed_cameras=PRECOMPUTED_CAMERAS,
            precompute_seconds=precompute_seconds, precompute_bytes=nbytes,
            reshuffle_seconds=reshuffle_seconds,
            precompute_seconds_scaled_to_all_cameras=precompute_seconds * scale,
            precompute_bytes_scaled_to_all_cameras=int(nbytes * scale),
            reshuffle_seconds_per_step_amortised=reshuffle_seconds / steps_per_epoch,
            note=(f"rays of {PRECOMPUTED_CAMERAS} of the {N_CAMERAS} cameras precomputed (the "
                  "full set does not fit CI); *_scaled_to_all_cameras multiply by "
                  f"{scale:g}. Timed: the per-step slice only; the per-epoch reshuffle is "
                  "reshuffle_seconds, amortised per step in "
                  "reshuffle_seconds_per_step_amortised (the same for any camera count)"))
