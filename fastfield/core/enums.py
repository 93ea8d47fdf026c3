"""Python names of the enumerations that travel to the kernels as ints (csrc/ops.cpp). The C++
names are in the family headers: CameraConvention (csrc/rays/camera_rays.h), SphereBounds
(csrc/rays/bounds.h), Jitter (csrc/sampling/stratified.h)."""
from typing import Dict

CAMERA_CONVENTIONS: Dict[str, int] = {"opengl": 0, "opencv": 1}
SPHERE_BOUNDS: Dict[str, int] = {"neus": 0, "exact": 1}
JITTERS: Dict[str, int] = {"none": 0, "per_sample": 1, "per_ray": 2}


def enum_value(op: str, name: str, value: str, table: Dict[str, int]) -> int:
    """The int of ``value`` in ``table``; else a ValueError naming the op, argument and choices."""
    try:
        return table[value]
    except (KeyError, TypeError):
        choices = ", ".join(repr(k) for k in table)
        message = f"fastfield.{op}: {name} must be one of {choices}, got {value!r}"
        raise ValueError(message) from None
