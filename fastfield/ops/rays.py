"""Camera rays: pixel ids, pinhole ray generation, NDC, and ray bounds (sphere, box).

A training step draws pixel ids (camera, row, col) with one of the pixel helpers, gathers the
target colours with them and turns them into rays with ``generate_rays``; nothing is computed
for pixels that are not drawn (nerf-pytorch precomputes every ray of every image, or every ray
of one image per step, and then selects).

Autograd policy of this family: not differentiable (rays are data here, not optimised poses).
The operators' Autograd kernel is torch's not-implemented fallback (csrc/rays/rays_autograd.cpp):
a forward with inputs that require grad runs, a backward that needs the gradient of an output
raises RuntimeError instead of leaving the inputs' gradients silently missing.
"""
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from ..core.types import NearFar, Rays
from ._common import check_kernel, float_inputs, int_at_least, require_tensor
from ..core.enums import CAMERA_CONVENTIONS, SPHERE_BOUNDS, enum_value
from ..core.random import draw_device

__all__ = ["generate_rays", "image_pixels", "random_pixels", "random_pixels_in_camera",
           "ndc_rays", "near_far_sphere", "near_far_aabb"]

Device = Optional[Union[str, torch.device]]


# ----------------------------------------------------------------------------- pixel ids

def _image_size(op: str, height, width):
    return int_at_least(op, "height", height, 1), int_at_least(op, "width", width, 1)


def image_pixels(camera: int, height: int, width: int, device: Device = None) -> Tensor:
    """Every pixel of one camera, row-major: ids [height * width, 3] int64 = (camera, row, col).

    Rays and colours gathered with these ids reshape to images: ``rgb.reshape(height, width, 3)``.
    """
    op = "image_pixels"
    camera = int_at_least(op, "camera", camera, 0)
    height, width = _image_size(op, height, width)
    pixels = torch.empty(height, width, 3, dtype=torch.long, device=device)
    pixels[..., 0] = camera
    pixels[..., 1] = torch.arange(height, device=pixels.device)[:, None]
    pixels[..., 2] = torch.arange(width, device=pixels.device)
    return pixels.reshape(height * width, 3)


def _uniform_pixels(n: int, camera_range, row_range, col_range, generator, device) -> Tensor:
    """[n, 3] int64 on ``device`` with each column uniform over its half-open [low, high)
    range, drawn in place in the order camera, row, col on ``generator``'s device (then moved,
    see fastfield/core/random.py); a range of one value is filled, not drawn."""
    target = torch.get_default_device() if device is None else torch.device(device)
    pixels = torch.empty(n, 3, dtype=torch.long, device=draw_device(generator, target))
    for column, (low, high) in enumerate((camera_range, row_range, col_range)):
        if high - low == 1:
            pixels[:, column].fill_(low)
        else:
            pixels[:, column].random_(low, high, generator=generator)
    return pixels.to(target)


def random_pixels(n: int, n_cameras: int, height: int, width: int,
                  generator: Optional[torch.Generator] = None, device: Device = None) -> Tensor:
    """``n`` pixel ids [n, 3] int64 = (camera, row, col), uniform over every pixel of every
    camera (with replacement): nerf-pytorch's batching mode without precomputing any ray.

    All cameras share ``height`` x ``width``. ``generator`` makes the draw reproducible; on
    another device than ``device`` it draws there and the ids are moved.
    """
    op = "random_pixels"
    n = int_at_least(op, "n", n, 0)
    n_cameras = int_at_least(op, "n_cameras", n_cameras, 1)
    height, width = _image_size(op, height, width)
    return _uniform_pixels(n, (0, n_cameras), (0, height), (0, width), generator, device)


def random_pixels_in_camera(n: int, camera: int, height: int, width: int,
                            crop_fraction: float = 1.0,
                            generator: Optional[torch.Generator] = None,
                            device: Device = None) -> Tensor:
    """``n`` pixel ids [n, 3] int64 = (camera, row, col), uniform (with replacement) within one
    camera: nerf-pytorch's ``no_batching`` mode and NeuS's ``gen_random_rays_at``.

    ``crop_fraction`` < 1 restricts the draw to nerf-pytorch's central ``precrop`` window:
    dH = int(height // 2 * crop_fraction), rows height // 2 - dH .. height // 2 + dH - 1, and
    likewise for columns. ``crop_fraction`` = 1 is the whole image (also for odd sizes, where
    nerf-pytorch's formula would drop the last row or column).

    nerf-pytorch draws without replacement within the image; with replacement, a batch of n
    from N pixels repeats about n^2 / (2N) ids (13 of 4096 at 800 x 800), which changes no
    expectation.
    """
    op = "random_pixels_in_camera"
    n = int_at_least(op, "n", n, 0)
    camera = int_at_least(op, "camera", camera, 0)
    height, width = _image_size(op, height, width)
    if not isinstance(crop_fraction, (int, float)) or not 0.0 < crop_fraction <= 1.0:
        raise ValueError(f"fastfield.{op}: crop_fraction must be in (0, 1], got {crop_fraction!r}")
    rows, cols = (0, height), (0, width)
    if crop_fraction < 1.0:
        half_h, half_w = int(height // 2 * crop_fraction), int(width // 2 * crop_fraction)
        if half_h == 0 or half_w == 0:
            raise ValueError(f"fastfield.{op}: crop_fraction {crop_fraction} leaves an empty "
                             f"window of a {height} x {width} image")
        rows = (height // 2 - half_h, height // 2 + half_h)
        cols = (width // 2 - half_w, width // 2 + half_w)
    return _uniform_pixels(n, (camera, camera + 1), rows, cols, generator, device)


# ----------------------------------------------------------------------------- rays

def generate_rays(c2w: Tensor, intrinsics: Tensor, pixels: Tensor, convention: str = "opengl",
                  pixel_offset: float = 0.0, normalize: bool = False) -> Rays:
    """Rays through pixels of pinhole cameras.

    For pixel (camera c, row, col) with intrinsics (fx, fy, cx, cy) and o = ``pixel_offset``:
    x = (col + o - cx) / fx, y = (row + o - cy) / fy, and the camera-space direction is
    (x, -y, -1) for ``"opengl"`` (Blender, LLFF: nerf-pytorch's ``get_rays`` at o = 0) or
    (x, y, 1) for ``"opencv"`` (DTU / NeuS). The world direction is c2w[c, :3, :3] @ d_cam, the
    origin c2w[c, :3, 3].

    Args:
        c2w: camera-to-world poses [n_cameras, 3, 4] or [n_cameras, 4, 4], float32/float64.
        intrinsics: [n_cameras, 4] = (fx, fy, cx, cy), or [4] shared by every camera; dtype and
            device of c2w.
        pixels: int64 [n_rays, 3] = (camera, row, col), e.g. from ``random_pixels``; same device.
        convention: ``"opengl"`` or ``"opencv"``.
        pixel_offset: added to row and col; 0.5 aims at pixel centres.
        normalize: divide each direction by its length (NeuS); nerf-pytorch keeps z = -1.

    Returns:
        Rays(origins [n_rays, 3], directions [n_rays, 3]) in the dtype of c2w.

    Camera ids outside [0, n_cameras) raise ValueError on CPU. On CUDA they are not checked
    (that would cost a device synchronisation; ``FASTFIELD_DEBUG=1`` turns the check on): such
    rays come out NaN, origin and direction. NaN in a pose or intrinsics reaches only the rays
    of that camera.
    """
    op = "generate_rays"
    for name, value in (("c2w", c2w), ("intrinsics", intrinsics), ("pixels", pixels)):
        require_tensor(op, name, value)
    code = enum_value(op, "convention", convention, CAMERA_CONVENTIONS)
    if c2w.dim() == 3 and tuple(c2w.shape[1:]) == (4, 4):
        c2w = c2w[:, :3, :4]
    if intrinsics.dim() == 1:
        intrinsics = intrinsics.expand(c2w.shape[0], *intrinsics.shape)
    c2w, intrinsics = float_inputs(op, c2w, intrinsics)
    check_kernel(op, c2w)
    origins, directions = torch.ops.fastfield.generate_rays(
        c2w, intrinsics, pixels, code, float(pixel_offset), bool(normalize))
    return Rays(origins, directions)


def ndc_rays(origins: Tensor, directions: Tensor, H: float, W: float, focal: float,
             near: float = 1.0) -> Rays:
    """nerf-pytorch ``ndc_rays``: rays of a forward-facing (LLFF) scene in normalised device
    coordinates, where the scene between the plane z = -``near`` and infinity maps to [-1, 1].

    Each origin is first moved along its ray to z = -near; then, with o' that point,
    origin = (-2f/W o'x/o'z, -2f/H o'y/o'z, 1 + 2 near/o'z) and
    direction = (-2f/W (dx/dz - o'x/o'z), -2f/H (dy/dz - o'y/o'z), -2 near/o'z).

    Args:
        origins, directions: [n_rays, 3] camera rays (OpenGL convention, looking down -z),
            float32/float64, one dtype and device.
        H, W: image height and width in pixels; focal: focal length in pixels.
        near: the near plane (nerf-pytorch uses 1 after its bd_factor rescaling).

    Returns:
        Rays(origins [n_rays, 3], directions [n_rays, 3]).

    Rays parallel to the image plane (dz = 0) give inf/NaN as in nerf-pytorch; NaN stays in its
    ray.
    """
    op = "ndc_rays"
    require_tensor(op, "origins", origins)
    require_tensor(op, "directions", directions)
    origins, directions = float_inputs(op, origins, directions)
    check_kernel(op, origins)
    o, d = torch.ops.fastfield.ndc_rays(origins, directions, float(H), float(W), float(focal),
                                        float(near))
    return Rays(o, d)


# ----------------------------------------------------------------------------- bounds

def near_far_sphere(origins: Tensor, directions: Tensor, radius: float = 1.0,
                    mode: str = "neus") -> NearFar:
    """Ray parameters t (x = o + t d) bounding the sphere of ``radius`` at the origin.

    With the closest approach t_mid = -(o.d)/(d.d) and p = o + t_mid d:

    - ``"neus"`` (NeuS ``near_far_from_sphere``): near = t_mid - radius, far = t_mid + radius,
      hit = |p| <= radius. The interval is in units of t, so it spans the sphere's diameter
      only for unit directions (NeuS normalises them); it may start behind the origin.
    - ``"exact"``: the intersections, near = max(t_mid - h, 0), far = t_mid + h with
      h = sqrt((radius^2 - |p|^2) / (d.d)); hit = |p| <= radius and far >= 0. Rays that miss,
      or whose sphere lies behind them, get near = far = max(t_mid, 0) and hit False.

    Args:
        origins, directions: [n_rays, 3], float32/float64, one dtype and device; directions
            need not be unit length (but not zero: a zero direction gives NaN).
        radius: sphere radius.
        mode: ``"neus"`` or ``"exact"``.

    Returns:
        NearFar(near [n_rays], far [n_rays], hit [n_rays] bool).

    A ray with a NaN coordinate gets near = far = NaN and hit False.
    """
    op = "near_far_sphere"
    require_tensor(op, "origins", origins)
    require_tensor(op, "directions", directions)
    code = enum_value(op, "mode", mode, SPHERE_BOUNDS)
    origins, directions = float_inputs(op, origins, directions)
    check_kernel(op, origins)
    return NearFar(*torch.ops.fastfield.near_far_sphere(origins, directions, float(radius), code))


def near_far_aabb(origins: Tensor, directions: Tensor,
                  aabb: Union[Tensor, Sequence[float]]) -> NearFar:
    """Ray parameters t (x = o + t d) where rays cross the closed axis-aligned box ``aabb``
    (slab test), the part behind the origin cut off: near >= 0.

    Rays parallel to a slab (a zero direction component, +0 or -0) are inside it for every t
    when the origin lies in it (faces included) and never otherwise. Rays that miss the box, or
    whose box lies behind them, get near = far = 0 and hit False; an origin inside the box gives
    near = 0.

    Args:
        origins, directions: [n_rays, 3], float32/float64, one dtype and device.
        aabb: [6] = (xmin, ymin, zmin, xmax, ymax, zmax) with min <= max (checked on CPU); a
            tensor of the dtype and device of origins, or a sequence of 6 floats.

    Returns:
        NearFar(near [n_rays], far [n_rays], hit [n_rays] bool).

    A ray with a NaN coordinate gets near = far = NaN and hit False.
    """
    op = "near_far_aabb"
    require_tensor(op, "origins", origins)
    require_tensor(op, "directions", directions)
    if not isinstance(aabb, Tensor):
        aabb = torch.tensor(aabb, dtype=origins.dtype, device=origins.device)
    origins, directions, aabb = float_inputs(op, origins, directions, aabb)
    check_kernel(op, origins)
    return NearFar(*torch.ops.fastfield.near_far_aabb(origins, directions, aabb))


# ----------------------------------------------------------------------------- fake (meta)

@torch.library.register_fake("fastfield::generate_rays")
def _generate_rays_fake(c2w, intrinsics, pixels, convention, pixel_offset, normalize):
    n_rays = pixels.shape[0]
    return c2w.new_empty(n_rays, 3), c2w.new_empty(n_rays, 3)


@torch.library.register_fake("fastfield::ndc_rays")
def _ndc_rays_fake(origins, directions, height, width, focal, near):
    return origins.new_empty(origins.shape), origins.new_empty(origins.shape)


def _bounds_fake(origins):
    n_rays = origins.shape[0]
    return (origins.new_empty(n_rays), origins.new_empty(n_rays),
            origins.new_empty(n_rays, dtype=torch.bool))


@torch.library.register_fake("fastfield::near_far_sphere")
def _near_far_sphere_fake(origins, directions, radius, mode):
    return _bounds_fake(origins)


@torch.library.register_fake("fastfield::near_far_aabb")
def _near_far_aabb_fake(origins, directions, aabb):
    return _bounds_fake(origins)
