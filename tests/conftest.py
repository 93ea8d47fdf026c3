"""Shared fixtures: the device grid every op test runs on, and small scenes (a 16x16 built-in
scene, a 3-image LLFF scene) for the data tests; tests marked ``slow`` (long real-data checks,
recorded in benchmarks/RESULTS.md) run only with FASTFIELD_SLOW=1."""
import os

import imageio.v3 as iio
import numpy as np
import pytest
import torch

import fastfield._backend  # value_checks; the kernels load on first use
from fastfield.data import write_builtin_scene

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


@pytest.fixture(scope="session")
def tiny_scene(tmp_path_factory):
    """A 16x16 built-in scene (Blender + NeuS formats, 4 train views) to corrupt copies of."""
    return write_builtin_scene(tmp_path_factory.mktemp("tiny"), resolution=16, n_train=4,
                               n_val=1, n_test=1)


@pytest.fixture
def llff_scene(tmp_path):
    """Three 12x16 images (factor 8) with poses_bounds.npy for 96x128 at full size."""
    path = tmp_path / "llff"
    (path / "images_8").mkdir(parents=True)
    rows = []
    for i in range(3):
        pose = np.concatenate([np.eye(3)[:, [1, 0, 2]] * [1, -1, 1], [[0.1 * i], [0], [0]]], 1)
        rows.append(np.concatenate([np.concatenate([pose, [[96], [128], [100]]], 1).ravel(),
                                    [2.0, 10.0]]))
        iio.imwrite(path / "images_8" / f"image{i:03d}.png", np.full((12, 16, 3), 40 * i,
                                                                      np.uint8))
    np.save(path / "poses_bounds.npy", np.array(rows))
    return path


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
