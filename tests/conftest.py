"""Shared fixtures: the device grid every op test runs on, and the scenes directory."""
import pytest
import torch

import fastfield  # noqa: F401  (loads the kernels once, before any test imports them)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """Every device with a kernel to test: cpu, plus cuda when torch.cuda.is_available()."""
    return torch.device(request.param)


@pytest.fixture
def cuda() -> torch.device:
    """A CUDA device, for CPU-versus-CUDA parity tests; skips without one."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: CPU/CUDA parity needs a GPU")
    return torch.device("cuda")


@pytest.fixture
def unchecked_values():
    """Run kernels with the data-reading value checks off (as on CUDA without FASTFIELD_DEBUG),
    so invalid input reaches the in-kernel index guards."""
    with fastfield._backend.value_checks(-1):
        yield
