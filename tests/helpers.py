"""Helpers shared by the tests: comparisons for kernel outputs, the real-scene locations."""
import math
import os
from pathlib import Path

import pytest
import torch

# Real scenes (never copied into the repository): ../shared/data beside it, or $FASTFIELD_DATA.
DATA_ROOT = Path(os.environ.get("FASTFIELD_DATA")
                 or Path(__file__).resolve().parents[1].parent / "shared" / "data")
LEGO, FERN = "nerf_synthetic/lego", "nerf_llff_data/fern"
DTU = "neus_dtu/dtu_scan24_400x300"


def real_scene(relative: str) -> Path:
    """DATA_ROOT / relative, or a pytest skip that says where the data was looked for."""
    path = DATA_ROOT / relative
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (set FASTFIELD_DATA to the shared data dir)")
    return path


def assert_close_per_ray(actual: torch.Tensor, expected: torch.Tensor, rtol: float,
                         atol: float = 0.0) -> None:
    """|actual - expected| <= rtol * ||expected[ray]|| + atol for every ray (dim 0).

    Per-sample values (weights, alpha, gradients) are compared relative to the norm of their
    ray: float32 exp differs between libraries in the last bits, and formulas such as NeuS's
    (p + 1e-5) / (c + 1e-5) amplify that for single samples, but never relative to the ray.
    """
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    per_ray = math.prod(actual.shape[1:])  # explicit, so that zero rays reshape too
    actual = actual.detach().to("cpu", torch.float64).reshape(actual.shape[0], per_ray)
    expected = expected.detach().to("cpu", torch.float64).reshape(expected.shape[0], per_ray)
    scale = expected.norm(dim=1, keepdim=True)
    bad = (actual - expected).abs() > rtol * scale + atol
    assert not bad.any(), (
        f"{int(bad.sum())} values off; worst ray {int(bad.any(1).nonzero()[0])}: "
        f"max |diff| {(actual - expected).abs().max().item():.3g}, rtol {rtol}")


def random_offsets(counts, device) -> torch.Tensor:
    """CSR offsets [len(counts) + 1] for the given per-ray sample counts."""
    counts = torch.as_tensor(counts, dtype=torch.long)
    return torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)]).to(device)
