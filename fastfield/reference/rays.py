"""Pure-PyTorch twins of the ray ops (see fastfield.ops.rays)."""
import torch
from torch import Tensor

from ..core.types import NearFar, Rays


def generate_rays(c2w: Tensor, intrinsics: Tensor, pixels: Tensor, convention: str = "opengl",
                  pixel_offset: float = 0.0, normalize: bool = False) -> Rays:
    """Rays through pixels (camera, row, col). See ``fastfield.generate_rays``."""
    cam, row, col = pixels[:, 0], pixels[:, 1].to(c2w.dtype), pixels[:, 2].to(c2w.dtype)
    fx, fy, cx, cy = intrinsics[cam].unbind(-1)
    x = (col + pixel_offset - cx) / fx
    y = (row + pixel_offset - cy) / fy
    one = torch.ones_like(x)
    if convention == "opengl":
        dirs_cam = torch.stack([x, -y, -one], -1)
    elif convention == "opencv":
        dirs_cam = torch.stack([x, y, one], -1)
    else:
        raise ValueError(f"convention must be 'opengl' or 'opencv', got {convention!r}")
    pose = c2w[cam]
    directions = (pose[:, :3, :3] @ dirs_cam[:, :, None])[:, :, 0]
    if normalize:
        directions = directions / directions.norm(dim=-1, keepdim=True)
    return Rays(pose[:, :3, 3].clone(), directions)


def ndc_rays(origins: Tensor, directions: Tensor, H: int, W: int, focal: float,
             near: float = 1.0) -> Rays:
    """nerf-pytorch ``ndc_rays``: shift origins to the near plane, then project."""
    t = -(near + origins[:, 2]) / directions[:, 2]
    o = origins + t[:, None] * directions
    d = directions
    o0 = -1.0 / (W / (2.0 * focal)) * o[:, 0] / o[:, 2]
    o1 = -1.0 / (H / (2.0 * focal)) * o[:, 1] / o[:, 2]
    o2 = 1.0 + 2.0 * near / o[:, 2]
    d0 = -1.0 / (W / (2.0 * focal)) * (d[:, 0] / d[:, 2] - o[:, 0] / o[:, 2])
    d1 = -1.0 / (H / (2.0 * focal)) * (d[:, 1] / d[:, 2] - o[:, 1] / o[:, 2])
    d2 = -2.0 * near / o[:, 2]
    return Rays(torch.stack([o0, o1, o2], -1), torch.stack([d0, d1, d2], -1))


def near_far_sphere(origins: Tensor, directions: Tensor, radius: float = 1.0,
                    mode: str = "neus") -> NearFar:
    """Ray parameters bounding a sphere of ``radius`` at the origin.

    "neus": closest approach t_mid = -(o.d)/(d.d), near/far = t_mid -/+ radius, hit where the
    closest approach lies within the sphere. "exact": the intersections, near clamped at 0;
    rays that miss (or whose sphere lies behind them) get near = far = max(t_mid, 0), hit False.
    The squared distance of the closest approach is |o + t_mid d|^2 (o.o - (o.d)^2/(d.d)
    cancels catastrophically for origins far from the sphere).
    """
    a = (directions * directions).sum(-1)
    b = (origins * directions).sum(-1)
    t_mid = -b / a
    closest_sq = (origins + t_mid[:, None] * directions).square().sum(-1)
    if mode == "neus":
        return NearFar(t_mid - radius, t_mid + radius, closest_sq <= radius * radius)
    if mode != "exact":
        raise ValueError(f"mode must be 'neus' or 'exact', got {mode!r}")
    half_chord = torch.sqrt((radius * radius - closest_sq).clamp_min(0.0) / a)
    far = t_mid + half_chord
    hit = (closest_sq <= radius * radius) & (far >= 0)
    rest = t_mid.clamp_min(0.0)
    near = torch.where(hit, (t_mid - half_chord).clamp_min(0.0), rest)
    far = torch.where(hit, far, rest)
    return NearFar(near, far, hit)


def near_far_aabb(origins: Tensor, directions: Tensor, aabb: Tensor) -> NearFar:
    """Slab intersection with the closed box ``aabb`` = (xmin, ymin, zmin, xmax, ymax, zmax);
    near clamped at 0.

    A ray parallel to a slab (zero direction component) is inside it for every t when its
    origin lies in the slab, faces included, and never otherwise. Rays that miss get
    near = far = 0 and hit False; rays with a NaN coordinate get near = far = NaN, hit False.
    """
    lo, hi = aabb[:3], aabb[3:]
    inv_d = 1.0 / directions
    t_lo = (lo - origins) * inv_d
    t_hi = (hi - origins) * inv_d
    parallel = directions == 0
    in_slab = (origins >= lo) & (origins <= hi)
    inf = torch.full_like(t_lo, torch.inf)
    enter = torch.where(parallel, torch.where(in_slab, -inf, inf), torch.minimum(t_lo, t_hi))
    leave = torch.where(parallel, torch.where(in_slab, inf, -inf), torch.maximum(t_lo, t_hi))
    near = enter.amax(-1).clamp_min(0.0)
    far = leave.amin(-1)
    hit = far >= near
    has_nan = (origins.isnan() | directions.isnan()).any(-1)
    miss = torch.where(has_nan, torch.full_like(near, torch.nan), torch.zeros_like(near))
    return NearFar(torch.where(hit, near, miss), torch.where(hit, far, miss), hit)
