"""Shared fixtures: the device grid every op test runs on, and the scenes directory; tests
marked ``slow`` (long real-data checks, recorded in benchmarks/RESULTS.md) run only with
FASTFIELD_SLOW=1."""
import os

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


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a long real-data check, run with FASTFIELD_SLOW=1")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("FASTFIELD_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow real-data check: set FASTFIELD_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
