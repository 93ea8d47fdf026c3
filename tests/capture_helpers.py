"""Photos and a video with exactly known cameras for the capture tests, and the errors of
recovered cameras after a similarity alignment.

The photos show the built-in scene's shapes (fastfield.data.BuiltinShapes, shaded as in the
built-in scene) standing on a floor plane with a value-noise texture: the shapes alone have too
few distinctive features for SIFT at a size that renders quickly (their checkers and stripes
repeat), and the floor gives COLMAP the texture a real table top would. Cameras orbit the
origin on two rings, OpenGL convention, pinhole, integer pixel index = pixel centre.
"""
import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
import torch.nn.functional as F

from fastfield.capture import align
from fastfield.data import BuiltinShapes, orbit_path
from fastfield.data.builtin.renderer import sphere_trace
from fastfield.reference.rays import generate_rays

FLOOR_Z = -0.4          # the pedestal's underside
RING_ELEVATIONS = (25.0, 45.0)
CAMERA_DISTANCE, ANGLE_X = 2.2, 0.9
SKY = 0.6


FLOOR_HALF_SIZE = 4.0    # the textured part of the floor: [-4, 4]^2
NOISE_OCTAVES = ((6, 0.6), (16, 0.4))  # (lattice cells per unit, weight)


def _lattices() -> list:
    """Random colour lattices [1, 3, cells, cells] over the floor, one per octave (fixed seed)."""
    generator = torch.Generator().manual_seed(0)
    return [(torch.rand(1, 3, int(2 * FLOOR_HALF_SIZE * cells) + 1,
                        int(2 * FLOOR_HALF_SIZE * cells) + 1, generator=generator), weight)
            for cells, weight in NOISE_OCTAVES]


LATTICES = _lattices()


def floor_colour(points: torch.Tensor) -> torch.Tensor:
    """[n, 3] floor points -> [n, 3] colour: value noise (random lattice values, bilinearly
    interpolated) in two octaves, fading to the sky colour far away so the horizon carries no
    texture."""
    grid = (points[:, :2] / FLOOR_HALF_SIZE).float()[None, None]  # [1, 1, n, 2] in [-1, 1]
    noise = sum(weight * F.grid_sample(lattice, grid, mode="bilinear", padding_mode="border",
                                       align_corners=True)[0, :, 0].T
                for lattice, weight in LATTICES)
    fade = torch.exp(-(points[:, :2].norm(dim=-1) / FLOOR_HALF_SIZE) ** 2)[:, None]
    return noise * fade + SKY * (1 - fade)


def orbit_cameras(resolution: int, per_ring: int, elevations=RING_ELEVATIONS) -> tuple:
    """(c2w [n, 3, 4] float64 OpenGL, intrinsics (fx, fy, cx, cy)): ``per_ring`` cameras
    evenly round each ring of ``elevations`` (degrees), looking at the origin."""
    focal = 0.5 * resolution / math.tan(0.5 * ANGLE_X)
    intrinsics = (focal, focal, 0.5 * resolution, 0.5 * resolution)
    c2w = np.concatenate([orbit_path((0, 0, 0), CAMERA_DISTANCE, elevation, per_ring, intrinsics,
                                     resolution, resolution).c2w.double().numpy()
                          for elevation in elevations])
    return c2w, intrinsics


def render_views(c2w: np.ndarray, intrinsics, resolution: int):
    """Yield one [resolution, resolution, 3] uint8 image per camera of ``c2w`` [n, 3, 4]."""
    shapes = BuiltinShapes()
    rows, cols = torch.meshgrid(torch.arange(resolution), torch.arange(resolution), indexing="ij")
    pixels = torch.stack([torch.zeros_like(rows), rows, cols], -1).reshape(-1, 3)
    for pose in torch.from_numpy(c2w).float():
        rays = generate_rays(pose[None], torch.tensor([intrinsics], dtype=torch.float32), pixels)
        origins = rays.origins
        directions = rays.directions / rays.directions.norm(dim=-1, keepdim=True)
        t, hit = sphere_trace(shapes, origins, directions, tolerance=1e-4, max_steps=40)
        colour = torch.full((len(pixels), 3), SKY)
        t_floor = (FLOOR_Z - origins[:, 2]) / directions[:, 2]
        floor = (t_floor > 0) & ~hit
        colour[floor] = floor_colour(origins[floor] + t_floor[floor, None] * directions[floor])
        colour[hit] = shapes.shade(origins[hit] + t[hit, None] * directions[hit])
        image = (colour.reshape(resolution, resolution, 3).clamp(0, 1) * 255).round()
        yield image.to(torch.uint8).numpy()


def render_photos(folder: Path, resolution: int = 128, per_ring: int = 16) -> np.ndarray:
    """Write ``folder/view_NNN.png`` for every camera on the two rings; returns their c2w
    [n, 3, 4]."""
    folder.mkdir(parents=True, exist_ok=True)
    c2w, intrinsics = orbit_cameras(resolution, per_ring)
    for index, image in enumerate(render_views(c2w, intrinsics, resolution)):
        iio.imwrite(folder / f"view_{index:03d}.png", image)
    return c2w


def render_video(path: Path, resolution: int = 96, n_frames: int = 48,
                 elevation: float = 35.0) -> np.ndarray:
    """An H.264 video (imageio-ffmpeg) of one orbit of ``n_frames`` frames; returns the
    frames' c2w [n_frames, 3, 4]."""
    import imageio_ffmpeg

    c2w, intrinsics = orbit_cameras(resolution, n_frames, (elevation,))
    writer = imageio_ffmpeg.write_frames(str(path), (resolution, resolution), fps=12, quality=9,
                                         macro_block_size=1, ffmpeg_log_level="error")
    writer.send(None)
    for image in render_views(c2w, intrinsics, resolution):
        writer.send(np.ascontiguousarray(image))
    writer.close()
    return c2w


def aligned_errors(centres: np.ndarray, reference: np.ndarray, rotations=None,
                   reference_rotations=None):
    """Centres [n, 3] aligned to ``reference`` by a similarity (fastfield.capture.align,
    Umeyama; tested on its own in test_capture): (largest centre error as a fraction of the
    reference spread (largest distance from the reference centroid), largest rotation error in
    degrees or None). Rotations are camera-to-world [n, 3, 3] in one camera convention."""
    similarity = align(centres, reference)
    moved = similarity.apply(centres)
    spread = np.linalg.norm(reference - reference.mean(0), axis=1).max()
    centre_error = np.linalg.norm(moved - reference, axis=1).max() / spread
    if rotations is None:
        return centre_error, None
    relative = np.einsum("ij,njk,nlk->nil", similarity.rotation, rotations, reference_rotations)
    cosine = (np.trace(relative, axis1=1, axis2=2) - 1) / 2
    return centre_error, float(np.degrees(np.arccos(np.clip(cosine, -1, 1))).max())
