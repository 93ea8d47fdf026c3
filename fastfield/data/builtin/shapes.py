"""The built-in scene's geometry and appearance: four textured primitives with an exact SDF, in
the normalised frame (inside the unit sphere, z up)."""
import math
from typing import Optional

import torch
from torch import Tensor

BOUNDING_RADIUS = 0.85       # every primitive lies inside this sphere (<= 0.8 from the origin)
LIGHT_DIRECTION = (0.5, -0.4, 0.77)
AMBIENT = 0.35


class BuiltinShapes:
    """A rounded-box pedestal, a striped ball, a tilted ring (torus) and a pillar (capsule).

    All methods take and return tensors in the normalised frame, in the dtype of the input
    (use float64 for accuracy). The union's SDF is exact outside the objects and a lower bound
    of the distance inside (the min of exact SDFs), so sphere tracing never overshoots.
    """

    def __init__(self):
        self.box_center = (0.0, 0.0, -0.3)
        self.box_half_size = (0.45, 0.45, 0.1)
        self.box_rounding = 0.05
        self.ball_center, self.ball_radius = (-0.15, -0.12, 0.0), 0.25
        self.ring_center, self.ring_major, self.ring_minor = (0.2, 0.2, -0.02), 0.2, 0.07
        tilt = math.radians(65.0)  # ring axis tilted from z towards -y; it dips into the box
        # Columns: the ring's local x, y and axis in the normalised frame.
        self.ring_frame = ((1.0, 0.0, 0.0),
                           (0.0, math.cos(tilt), -math.sin(tilt)),
                           (0.0, math.sin(tilt), math.cos(tilt)))
        self.pillar_ends = ((0.22, -0.25, -0.2), (0.22, -0.25, 0.3))
        self.pillar_radius = 0.09

    def describe(self) -> dict:
        """The primitives and their parameters (normalised frame), for scene.json."""
        return {
            "frame": "normalised; world = scale_mat @ [x, 1]",
            "union_of": [
                {"name": "pedestal", "type": "rounded_box", "center": self.box_center,
                 "half_size": self.box_half_size, "rounding": self.box_rounding},
                {"name": "ball", "type": "sphere", "center": self.ball_center,
                 "radius": self.ball_radius},
                {"name": "ring", "type": "torus", "center": self.ring_center,
                 "major_radius": self.ring_major, "minor_radius": self.ring_minor,
                 "axis": [row[2] for row in self.ring_frame]},
                {"name": "pillar", "type": "capsule", "ends": self.pillar_ends,
                 "radius": self.pillar_radius},
            ]}

    def _const(self, value, like: Tensor) -> Tensor:
        return torch.as_tensor(value, dtype=like.dtype, device=like.device)

    def _ring_local(self, points: Tensor) -> Tensor:
        return (points - self._const(self.ring_center, points)) @ self._const(self.ring_frame,
                                                                               points)

    def primitive_sdfs(self, points: Tensor) -> Tensor:
        """[n, 3] -> [n, 4] exact signed distance to each primitive."""
        q = (points - self._const(self.box_center, points)).abs() \
            - self._const(self.box_half_size, points) + self.box_rounding
        box = q.clamp_min(0).norm(dim=-1) + q.amax(-1).clamp_max(0) - self.box_rounding
        ball = (points - self._const(self.ball_center, points)).norm(dim=-1) - self.ball_radius
        local = self._ring_local(points)
        ring = torch.stack([local[:, :2].norm(dim=-1) - self.ring_major, local[:, 2]], -1)
        ring = ring.norm(dim=-1) - self.ring_minor
        start, end = self._const(self.pillar_ends, points)
        along = ((points - start) @ (end - start) / (end - start).dot(end - start)).clamp(0, 1)
        pillar = (points - start - along[:, None] * (end - start)).norm(dim=-1) \
            - self.pillar_radius
        return torch.stack([box, ball, ring, pillar], -1)

    def sdf(self, points: Tensor) -> Tensor:
        """[n, 3] -> [n] signed distance to the union (negative inside)."""
        return self.primitive_sdfs(points).min(-1).values

    def normals(self, points: Tensor) -> Tensor:
        """[n, 3] -> [n, 3] unit SDF gradient (outward normal on the surface)."""
        with torch.enable_grad():
            points = points.detach().requires_grad_(True)
            (gradient,) = torch.autograd.grad(self.sdf(points).sum(), points)
        return gradient / gradient.norm(dim=-1, keepdim=True)

    def albedo(self, points: Tensor) -> Tensor:
        """[n, 3] surface points -> [n, 3] colour in [0, 1] of the nearest primitive: a checker
        pedestal, a striped ball, a ring whose green varies around it, a banded pillar."""
        nearest = self.primitive_sdfs(points).argmin(-1)
        cells = torch.floor(points / 0.15).sum(-1).remainder(2)[:, None]
        pedestal = torch.lerp(self._const((0.2, 0.35, 0.8), points),
                              self._const((0.88, 0.9, 0.95), points), cells)
        stripes = torch.floor(points[:, 2:] / 0.08).remainder(2)
        ball = torch.lerp(self._const((0.85, 0.2, 0.15), points),
                          self._const((0.98, 0.75, 0.3), points), stripes)
        local = self._ring_local(points)
        angle = torch.atan2(local[:, 1], local[:, 0])
        ring = torch.stack([torch.full_like(angle, 0.15), 0.55 + 0.3 * torch.cos(4 * angle),
                            0.35 + 0.15 * torch.sin(4 * angle)], -1)
        wave = 0.5 + 0.5 * torch.sin(points[:, 2] * 25.0)
        pillar = torch.stack([0.95 - 0.2 * wave, 0.85 - 0.35 * wave, torch.full_like(wave, 0.2)],
                             -1)
        colours = torch.stack([pedestal, ball, ring, pillar], 1)  # [n, 4, 3]
        return colours[torch.arange(len(points)), nearest]

    def shade(self, points: Tensor) -> Tensor:
        """[n, 3] surface points -> [n, 3] Lambertian colour under the fixed light + ambient."""
        light = self._const(LIGHT_DIRECTION, points)
        cosine = (self.normals(points) @ (light / light.norm())).clamp_min(0)
        return self.albedo(points) * (AMBIENT + (1 - AMBIENT) * cosine[:, None])

    def surface_points(self, n: int, generator: Optional[torch.Generator] = None,
                       dtype: torch.dtype = torch.float64) -> Tensor:
        """[n, 3] points on the union's surface, about uniform over its area.

        Uniform points of a thin band |sdf| < 0.005 are projected onto the surface along the
        normal (one step is exact for an exact SDF); the few that land off the union's surface
        near creases are dropped.
        """
        band, batch, found = 0.005, 1_000_000, []
        on_surface = 1e-9 if dtype == torch.float64 else 1e-5
        while sum(len(p) for p in found) < n:
            points = (torch.rand(batch, 3, generator=generator, dtype=dtype) * 2 - 1) \
                * BOUNDING_RADIUS
            points = points[self.sdf(points).abs() < band]
            for _ in range(3):
                points = points - self.sdf(points)[:, None] * self.normals(points)
            found.append(points[self.sdf(points).abs() < on_surface])
        return torch.cat(found)[:n]
