"""fastfield.HashGrid: the module around hash_encode, its import, and a real fit."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import fastfield
from fastfield import reference

ROOT = Path(__file__).resolve().parents[1]


def test_import_loads_no_kernels_until_the_first_forward():
    code = ("import sys, torch, fastfield, fastfield._backend\n"
            "grid = fastfield.HashGrid(n_levels=2, log2_table_size=8)\n"
            "assert fastfield._backend._LOADED is None and 'fastfield._C' not in sys.modules\n"
            "grid(torch.rand(4, 3))\n"
            "assert fastfield._backend._LOADED is not None\n")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr


def test_module_owns_its_table_and_encodes_like_the_op():
    torch.manual_seed(0)
    grid = fastfield.HashGrid(n_levels=4, n_features=3, log2_table_size=10, base_resolution=8,
                              per_level_scale=1.5)
    assert grid.out_dim == 12 and grid.params.shape == (4, 1024, 3)
    assert isinstance(grid.params, nn.Parameter) and grid.params.abs().max() <= 1e-4
    assert grid.params.abs().max() > 5e-5  # uniform in [-1e-4, 1e-4], not zeros
    x = torch.rand(5, 7, 3)
    out = grid(x)
    assert out.shape == (5, 7, 12)
    expected = reference.hash_encode(x.reshape(-1, 3), grid.params, 4, 3, 10, 8, 1.5)
    torch.testing.assert_close(out.reshape(-1, 12), expected, rtol=0, atol=0)
    out.sum().backward()
    assert grid.params.grad is not None and grid.params.grad.abs().sum() > 0
    assert "log2_table_size=10" in repr(grid)


def test_module_checks_its_configuration():
    with pytest.raises(ValueError, match="HashGrid: n_levels must be >= 1"):
        fastfield.HashGrid(n_levels=0)
    with pytest.raises(ValueError, match="HashGrid: per_level_scale must be >= 1"):
        fastfield.HashGrid(per_level_scale=0.5)
    grid = fastfield.HashGrid(n_levels=2, log2_table_size=6)
    with pytest.raises(ValueError, match=r"x must be \[\.\.\., 3\]"):
        grid(torch.rand(4, 2))


def test_module_follows_dtype_and_device(device):
    grid = fastfield.HashGrid(n_levels=2, log2_table_size=6, dtype=torch.float64, device=device)
    assert grid.params.dtype == torch.float64 and grid.params.device.type == device.type
    assert grid(torch.rand(3, 3, dtype=torch.float64, device=device)).dtype == torch.float64


def test_fits_a_smooth_3d_function():
    """A hash grid and a one-hidden-layer MLP trained as instant-ngp trains (Adam, lr 1e-2)
    on a known function: the held-out error must fall far below the start's."""
    torch.manual_seed(0)

    def target(x):
        return (torch.sin(2 * torch.pi * x[:, :1]) * torch.cos(3 * torch.pi * x[:, 1:2])
                + (x[:, 2:] - 0.5) ** 2 * 4)

    grid = fastfield.HashGrid(n_levels=8, n_features=2, log2_table_size=14, base_resolution=4,
                              per_level_scale=1.5)
    mlp = nn.Sequential(nn.Linear(grid.out_dim, 32), nn.ReLU(), nn.Linear(32, 1))
    optimizer = torch.optim.Adam([*grid.parameters(), *mlp.parameters()], lr=1e-2,
                                 betas=(0.9, 0.99), eps=1e-15)
    test_x = torch.rand(4096, 3)

    def test_error():
        with torch.no_grad():
            return ((mlp(grid(test_x)) - target(test_x)) ** 2).mean().item()

    initial = test_error()
    for _ in range(200):
        x = torch.rand(1024, 3)
        loss = ((mlp(grid(x)) - target(x)) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    final = test_error()
    assert final < 1e-3 * initial, (initial, final)
