"""Real spherical harmonics of unit view directions (instant-ngp's direction encoding)."""
import torch
from torch import Tensor, nn

MAX_SH_DEGREE = 4


def spherical_harmonics(directions: Tensor, degree: int = 4) -> Tensor:
    """directions [..., 3] (unit) -> [..., degree**2] real SH of bands l = 0 .. degree - 1.

    The orthonormal real basis with the Condon-Shortley phase, ordered by band and within a
    band by m = -l .. l; the same polynomials and order as tiny-cuda-nn's SphericalHarmonics
    encoding (which takes directions mapped to [0, 1]^3; here they come as they are).
    ``degree`` 1 .. 4 (instant-ngp: 4, i.e. 16 outputs).
    """
    if not 1 <= degree <= MAX_SH_DEGREE:
        raise ValueError(f"spherical_harmonics: degree must be in 1..{MAX_SH_DEGREE}, "
                         f"got {degree}")
    if directions.shape[-1:] != (3,):
        raise ValueError(f"spherical_harmonics: directions must be [..., 3], "
                         f"got {list(directions.shape)}")
    x, y, z = directions.unbind(-1)
    out = [torch.full_like(x, 0.28209479177387814)]                       # l = 0
    if degree > 1:                                                         # l = 1
        out += [-0.48860251190291987 * y, 0.48860251190291987 * z, -0.48860251190291987 * x]
    if degree > 2:                                                         # l = 2
        xx, yy, zz = x * x, y * y, z * z
        out += [1.0925484305920792 * x * y, -1.0925484305920792 * y * z,
                0.94617469575755997 * zz - 0.31539156525251999, -1.0925484305920792 * x * z,
                0.54627421529603959 * (xx - yy)]
    if degree > 3:                                                         # l = 3
        out += [0.59004358992664352 * y * (yy - 3.0 * xx),
                2.8906114426405538 * x * y * z,
                0.45704579946446572 * y * (1.0 - 5.0 * zz),
                0.3731763325901154 * z * (5.0 * zz - 3.0),
                0.45704579946446572 * x * (1.0 - 5.0 * zz),
                1.4453057213202769 * z * (xx - yy),
                0.59004358992664352 * x * (3.0 * yy - xx)]
    return torch.stack(out, -1)


class SphericalHarmonics(nn.Module):
    """``spherical_harmonics`` as a module: unit directions [..., 3] -> [..., degree**2]."""

    def __init__(self, degree: int = 4):
        super().__init__()
        spherical_harmonics(torch.zeros(1, 3), degree)  # ValueError for a bad degree, now
        self.degree = degree

    @property
    def out_dim(self) -> int:
        return self.degree ** 2

    def forward(self, directions: Tensor) -> Tensor:
        return spherical_harmonics(directions, self.degree)
