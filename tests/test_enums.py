"""The enumeration table: csrc/common/enums.def defines the C++ enum classes and their range
checks (csrc/common/enums.h) and is read by fastfield.core.enums for the Python names. The
values the kernels accept must be exactly the Python tables' values, under the same names."""
import re

import pytest
import torch

import fastfield
from fastfield._backend import load
from fastfield.core import enums
from fastfield.core.sources import kernel_source_dir

load()  # the operators called directly below


def _call_generate_rays(code):
    c2w = torch.eye(4)[:3].repeat(2, 1, 1)
    c2w[1, :, 3] = torch.tensor([0.5, -1.0, 2.0])
    pixels = torch.tensor([[0, 1, 2], [1, 3, 0]])
    return torch.ops.fastfield.generate_rays(c2w, torch.tensor([[2.0, 3.0, 1.5, 2.5]] * 2),
                                             pixels, code, 0.0, False)


def _call_near_far_sphere(code):
    origins = torch.tensor([[0.0, 0.0, -3.0], [2.0, 0.5, 0.0]])
    directions = torch.tensor([[0.0, 0.0, 2.0], [-1.0, 0.0, 0.0]])
    return torch.ops.fastfield.near_far_sphere(origins, directions, 1.0, code)


def _call_stratified(code, u=None):
    near, far = torch.tensor([2.0, 1.0]), torch.tensor([6.0, 3.0])
    return torch.ops.fastfield.stratified_samples(near, far, u, 4, False, code)


# What each jitter needs as u (the op checks u against the jitter it is given).
JITTER_U = {"none": None, "per_sample": torch.full((2, 4), 0.25), "per_ray": torch.full((2,), 0.75)}

CALLS = {"CameraConvention": lambda code, name: _call_generate_rays(code),
         "SphereBounds": lambda code, name: _call_near_far_sphere(code),
         "Jitter": lambda code, name: _call_stratified(code, JITTER_U.get(name))}
ARGUMENT = {"CameraConvention": "convention", "SphereBounds": "mode", "Jitter": "jitter"}


def test_python_tables_are_the_file():
    text = (kernel_source_dir() / enums.ENUMS_FILE).read_text()
    assert enums.read_tables(text) == enums.TABLES
    assert set(enums.TABLES) == set(CALLS)
    assert enums.CAMERA_CONVENTIONS == {"opengl": 0, "opencv": 1}
    assert enums.SPHERE_BOUNDS is enums.TABLES["SphereBounds"]
    assert enums.JITTERS is enums.TABLES["Jitter"]


@pytest.mark.parametrize("enum", sorted(CALLS))
def test_the_kernels_accept_exactly_the_python_values(enum):
    table = enums.TABLES[enum]
    choices = "".join(f" {value} ({name})" for name, value in table.items())
    for name, value in table.items():
        CALLS[enum](value, name)  # accepted
    for value in range(min(table.values()) - 3, max(table.values()) + 4):
        if value in table.values():
            continue
        message = re.escape(f"{ARGUMENT[enum]} must be one of{choices}, got {value}")
        with pytest.raises(ValueError, match=message):
            CALLS[enum](value, None)


def test_the_wrappers_send_each_name_as_its_value():
    c2w = torch.eye(4)[:3].repeat(2, 1, 1)
    intrinsics = torch.tensor([2.0, 3.0, 1.5, 2.5])
    pixels = torch.tensor([[0, 1, 2], [1, 3, 0]])
    for name, value in enums.CAMERA_CONVENTIONS.items():
        rays = fastfield.generate_rays(c2w, intrinsics, pixels, convention=name)
        expected = _call_generate_rays(value)
        assert torch.equal(rays.directions, expected[1])
    origins = torch.tensor([[0.0, 0.0, -3.0], [2.0, 0.5, 0.0]])
    directions = torch.tensor([[0.0, 0.0, 2.0], [-1.0, 0.0, 0.0]])
    for name, value in enums.SPHERE_BOUNDS.items():
        bounds = fastfield.near_far_sphere(origins, directions, 1.0, mode=name)
        assert torch.equal(bounds.near, _call_near_far_sphere(value)[0])
    for name, value in enums.JITTERS.items():
        t = fastfield.stratified_samples(torch.tensor([2.0, 1.0]), torch.tensor([6.0, 3.0]), 4,
                                         u=JITTER_U[name], jitter=name)
        assert torch.equal(t, _call_stratified(value, JITTER_U[name]))


def test_continued_lines_and_every_enum_are_parsed():
    text = ("// a comment\n#define FF_ENUM_Mode(X) \\\n  X(kA, 0, alpha) \\\n  X(kB, 3, beta)\n"
            "#define FF_ENUM_Other(X) X(kC, -1, gamma)\n")
    assert enums.read_tables(text) == {"Mode": {"alpha": 0, "beta": 3}, "Other": {"gamma": -1}}
