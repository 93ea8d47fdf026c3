"""End-to-end workloads shared by the benchmark groups and the memory probe: models from the
presets (or with their networks swapped for trivial fields), synthetic cameras, and the two
things users time -- one training step and one full-image render -- for either op backend.

Untrained models cost what trained ones cost: every sample count is fixed by the preset.
"""
import itertools
import math
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor, nn

import fastfield
from fastfield import config as presets
from fastfield.data import Camera
from fastfield.fields import NeRF, NeuS, build_model, inverted_sphere
from fastfield.render import backend_ops, render, render_image
from fastfield.train.losses import nerf_loss, neus_loss


# ----------------------------------------------------------------------------- trivial fields
# One linear layer with the input/output shapes of the real networks: what is left of a step
# is the pipeline fastfield owns (ray generation, sampling, compositing, autograd around them).

class TrivialRadiance(nn.Module):
    """(points [N, in_dim], dirs [N, 3]) -> (raw density [N], raw rgb [N, 3])."""

    def __init__(self, in_dim: int = 3):
        super().__init__()
        self.linear = nn.Linear(in_dim + 3, 4)

    def forward(self, points: Tensor, dirs: Tensor) -> Tuple[Tensor, Tensor]:
        out = self.linear(torch.cat([points, dirs], -1))
        return out[:, 0], out[:, 1:]


class TrivialBackground(TrivialRadiance):
    """NeRF++'s background input (the inverted sphere, as BackgroundField) into one layer:
    (world points [N, 3], dirs [N, 3]) -> (raw density [N], raw rgb [N, 3])."""

    def __init__(self):
        super().__init__(in_dim=4)

    def forward(self, points: Tensor, dirs: Tensor) -> Tuple[Tensor, Tensor]:
        return super().forward(inverted_sphere(points), dirs)


class TrivialSDF(nn.Module):
    """points [N, 3] -> (sdf [N], feature [N, feature_dim]); starts near a sphere of radius 0.5."""

    def __init__(self, feature_dim: int):
        super().__init__()
        self.linear = nn.Linear(3, 1 + feature_dim)

    def forward(self, points: Tensor) -> Tuple[Tensor, Tensor]:
        out = self.linear(points)
        return out[:, 0] + points.norm(dim=-1) - 0.5, out[:, 1:]


class TrivialColor(nn.Module):
    def __init__(self, feature_dim: int):
        super().__init__()
        self.linear = nn.Linear(9 + feature_dim, 3)

    def forward(self, points, normals, dirs, feature) -> Tensor:
        return torch.sigmoid(self.linear(torch.cat([points, dirs, normals, feature], -1)))


def make_model(preset_name: str, trivial: bool, device: torch.device) -> nn.Module:
    """The preset's model, or the same sampling pipeline around trivial fields."""
    cfg = presets.preset(preset_name)
    torch.manual_seed(0)
    if not trivial:
        return build_model(cfg).to(device)
    if cfg.model == "nerf":
        fine = TrivialRadiance() if cfg.nerf.sampler == "hierarchical" else None
        return NeRF(cfg.nerf, coarse=TrivialRadiance(), fine=fine).to(device)
    feature = cfg.neus.sdf.feature_dim
    background = TrivialBackground() if cfg.neus.n_outside > 0 else None
    return NeuS(cfg.neus, sdf_network=TrivialSDF(feature), color_network=TrivialColor(feature),
                background=background).to(device)


def occupy_like_a_trained_scene(model: nn.Module) -> nn.Module:
    """Set an occupancy model's grid to what a trained object leaves: the cells of a hollow box
    shell (thickness 0.1 around [-0.6, 0.6]^3, about the grid's centre) and of a ball, the
    rest empty (the field's own density would be noise in an untrained model)."""
    grid = model.grid
    centre = (grid.aabb[:3] + grid.aabb[3:]) * 0.5
    scale = float((grid.aabb[3:] - grid.aabb[:3]).min()) / 3.0

    def density(x):
        q = (x - centre) / scale
        shell = ((q.abs().amax(-1) - 0.6).abs() < 0.05).float()
        ball = ((q - q.new_tensor([0.4, -0.3, 0.8])).norm(dim=-1) < 0.35).float()
        return 100.0 * torch.maximum(shell, ball)

    grid.update(0, density, generator=torch.Generator(grid.density.device).manual_seed(0))
    return model


# ----------------------------------------------------------------------------- cameras

def orbit_cameras(kind: str, n_cams: int, height: int, width: int,
                  device: torch.device) -> Camera:
    """Cameras on a sphere looking at the origin: Blender-like for NeRF (radius 4, OpenGL,
    lego's field of view), NeuS-like for NeuS (radius 2.5 in the unit-sphere frame, OpenCV)."""
    radius, convention = (4.0, "opengl") if kind == "nerf" else (2.5, "opencv")
    focal = 0.5 * width / math.tan(0.5 * 0.6911112)
    c2w = []
    for i in range(n_cams):
        azimuth = 2 * math.pi * i / max(n_cams, 1)
        elevation = 0.5
        eye = torch.tensor([math.cos(azimuth) * math.cos(elevation),
                            math.sin(azimuth) * math.cos(elevation), math.sin(elevation)]) * radius
        back = eye / eye.norm()                       # camera +z (OpenGL looks down -z)
        right = torch.linalg.cross(torch.tensor([0.0, 0.0, 1.0]), back)
        right = right / right.norm()
        up = torch.linalg.cross(back, right)
        rotation = torch.stack([right, up, back], 1)
        if convention == "opencv":                   # +z forward, y down
            rotation = rotation * torch.tensor([1.0, -1.0, -1.0])
        c2w.append(torch.cat([rotation, eye[:, None]], 1))
    intrinsics = torch.tensor([[focal, focal, width / 2, height / 2]]).expand(n_cams, 4)
    return Camera(torch.stack(c2w), intrinsics.contiguous(), height, width, convention).to(device)


def scene_bounds(model: nn.Module):
    """(near, far, background) as the model's reference scenes use them."""
    if model.kind == "nerf":
        return 2.0, 6.0, "white"
    return None, None, None


# ----------------------------------------------------------------------------- workloads

def training_step(model: nn.Module, camera: Camera, n_rays: int, backend: str,
                  seed: int = 0) -> Callable[[], None]:
    """One optimiser step: draw n_rays pixels of one random camera, make their rays with the
    backend's ray generation, render with perturbation, the model's loss, backward, Adam."""
    device = camera.c2w.device
    ops = backend_ops(backend)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
    generator = torch.Generator(device).manual_seed(seed)
    near, far, background = scene_bounds(model)
    bg = torch.ones(3, device=device) if background == "white" else None
    normalize = model.kind == "neus"
    target = torch.rand(n_rays, 3, generator=generator, device=device)
    cameras = itertools.cycle(range(len(camera)))
    loss_fn = nerf_loss if model.kind == "nerf" else neus_loss

    def step():
        cam_id = next(cameras)
        pixels = fastfield.random_pixels_in_camera(n_rays, cam_id, camera.height, camera.width,
                                                   generator=generator, device=device)
        rays = ops.generate_rays(camera.c2w, camera.intrinsics, pixels,
                                 convention=camera.convention, normalize=normalize)
        out = render(model, rays.origins, rays.directions, near, far, background=bg,
                     perturb=True, backend=backend, generator=generator, cos_anneal_ratio=0.5)
        loss, _ = loss_fn(out, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def image_render(model: nn.Module, camera: Camera, backend: str,
                 chunk: Optional[int] = None) -> Callable[[], dict]:
    """A full-image render of camera 0 (no gradients, chunked to the memory budget)."""
    near, far, background = scene_bounds(model)
    bg = torch.ones(3, device=camera.c2w.device) if background == "white" else None
    return lambda: render_image(model, camera, 0, near=near, far=far, background=bg,
                                backend=backend, chunk=chunk)


def ray_render(model: nn.Module, camera: Camera, n_rays: int, backend: str
               ) -> Callable[[], dict]:
    """render_rays on n_rays random rays in one chunk, no gradients (the scaling group)."""
    device = camera.c2w.device
    generator = torch.Generator(device).manual_seed(1)
    pixels = fastfield.random_pixels(n_rays, len(camera), camera.height, camera.width,
                                     generator=generator, device=device)
    rays = backend_ops(backend).generate_rays(camera.c2w, camera.intrinsics, pixels,
                                              convention=camera.convention,
                                              normalize=model.kind == "neus")
    near, far, background = scene_bounds(model)
    bg = torch.ones(3, device=device) if background == "white" else None

    def run():
        with torch.no_grad():
            return render(model, rays.origins, rays.directions, near, far, background=bg,
                          backend=backend, chunk=n_rays)

    return run
