"""The encodings against their eager references. Hash encoding, float32, instant-ngp's grid (16 levels x 2
features, 2^19 rows, base resolution 16, per-level scale 1.3819): the forward, the forward +
backward of a NeRF field (gradients to the table), and the forward + create_graph backward +
double backward of a NeuS eikonal term (gradients to the table from a loss on dL/dx).

Points are uniform in the unit cube, so every level's gathers are random (samples along rays
are more coherent: these are the pessimistic numbers). Sizes: 2^18 and 2^21 points
(FASTFIELD_BENCH=gpu); the CPU default runs 2^18 only, and there the reference, which takes
tens of seconds per call on 2 cores, is timed in one round after its warm-up call
(`FASTFIELD_BENCH=gpu -k "fastfield and cpu"` times the kernels at 2^21 on the CPU too). The
reference never runs at 2^21 on the CPU: its backward keeps about 40 bytes per point, level and
corner alive (5 GiB). Frequency (positional) encoding: see its section below.
"""
import pytest
import torch

import fastfield
from fastfield import reference
from conftest import MODE, by_mode, run, skip_gpu_size_on_cpu

# The smoke run (every body once, for CI) uses a 2^14-row table: allocating and zeroing the
# 64 MiB table and its gradients would be most of its time.
GRID = dict(n_levels=16, n_features=2, log2_table_size=by_mode(smoke=14, cpu=19, gpu=19),
            base_resolution=16, per_level_scale=1.3819)
N_POINTS = by_mode(smoke=[2 ** 12], cpu=[2 ** 18], gpu=[2 ** 18, 2 ** 21])
CPU_REFERENCE_MAX = 2 ** 18


def _setup(impl, device, n_points):
    if impl == "reference" and device.type == "cpu" and n_points > CPU_REFERENCE_MAX:
        pytest.skip(f"the reference runs up to {CPU_REFERENCE_MAX} points on the CPU")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n_points, 3, generator=g).to(device)
    shape = (GRID["n_levels"], 2 ** GRID["log2_table_size"], GRID["n_features"])
    params = ((torch.rand(shape, generator=g) * 2 - 1) * 1e-2).to(device).requires_grad_()
    grad_out = torch.randn(n_points, GRID["n_levels"] * GRID["n_features"], generator=g)
    encode = fastfield.hash_encode if impl == "fastfield" else reference.hash_encode
    return encode, x, params, grad_out.to(device)


def _label(what, device, n_points):
    return f"hash_encode {what} {device.type} 2^{n_points.bit_length() - 1} points"


def _run(benchmark, step, impl, device, what, n_points):
    """One round for the reference on the CPU (seconds per call), three for any call on the CPU
    at 2^21 points; pytest-benchmark's calibration otherwise."""
    rounds = None
    if device.type == "cpu" and MODE != "smoke":
        rounds = 1 if impl == "reference" else (3 if n_points > CPU_REFERENCE_MAX else None)
    run(benchmark, step, device, _label(what, device, n_points), rounds=rounds, impl=impl,
        points=n_points)


@pytest.mark.parametrize("n_points", N_POINTS, ids=lambda n: f"2^{n.bit_length() - 1}")
def bench_hash_encode_fwd(benchmark, impl, device, n_points):
    encode, x, params, _ = _setup(impl, device, n_points)

    def step():
        with torch.no_grad():
            return encode(x, params, **GRID)

    _run(benchmark, step, impl, device, "fwd", n_points)


@pytest.mark.parametrize("n_points", N_POINTS, ids=lambda n: f"2^{n.bit_length() - 1}")
def bench_hash_encode_fwd_bwd(benchmark, impl, device, n_points):
    """NeRF: the gradient of the table (torch.autograd.grad, no .grad accumulation)."""
    encode, x, params, grad_out = _setup(impl, device, n_points)

    def step():
        return torch.autograd.grad(encode(x, params, **GRID), params, grad_out)

    _run(benchmark, step, impl, device, "fwd+bwd", n_points)


@pytest.mark.parametrize("n_points", N_POINTS, ids=lambda n: f"2^{n.bit_length() - 1}")
def bench_hash_encode_double_bwd(benchmark, impl, device, n_points):
    """NeuS: dL/dx with create_graph, then the table's gradient of a loss on it."""
    encode, x, params, grad_out = _setup(impl, device, n_points)
    x.requires_grad_()

    def step():
        out = encode(x, params, **GRID)
        (grad_x,) = torch.autograd.grad(out, x, grad_out, create_graph=True)
        return torch.autograd.grad(((grad_x.norm(dim=-1) - 1) ** 2).mean(), params)

    _run(benchmark, step, impl, device, "fwd+bwd+double bwd", n_points)


# ----------------------------------------------------------------------------- frequency_encode
# NeRF's positional encoding, float32, fastfield's fused op against the PyTorch expression:
# L = 10 (NeRF's points) and L = 6 (NeuS's SDF), 3 coordinates. The forward alone is what a
# NeRF step runs (its points need no gradient); the forward + backward is the first-order cost
# where they do; the double backward is NeuS's eikonal term: dL/dx with create_graph, then the
# gradient of a loss on it with respect to grad_out (the SDF network's side, a leaf here).
# 2^16 points on the CPU, 2^21 (FASTFIELD_BENCH=gpu) on CUDA only.
FREQ_POINTS = by_mode(smoke=[2 ** 10], cpu=[2 ** 16], gpu=[2 ** 16, 2 ** 21])
FREQ_OCTAVES = [10, 6]


def _frequency_setup(impl, device, n_points, n_frequencies):
    skip_gpu_size_on_cpu(device, n_points)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(n_points, 3, generator=g) * 2 - 1).to(device)
    grad_out = torch.randn(n_points, 3 * (1 + 2 * n_frequencies), generator=g).to(device)
    encode = fastfield.frequency_encode if impl == "fastfield" else reference.frequency_encode
    return (lambda points: encode(points, n_frequencies)), x, grad_out


def _frequency_run(benchmark, step, impl, device, what, n_points, n_frequencies):
    run(benchmark, step, device, f"frequency_encode {what} {device.type} "
        f"2^{n_points.bit_length() - 1} points L={n_frequencies}", impl=impl, points=n_points,
        n_frequencies=n_frequencies)


_frequency_grid = pytest.mark.parametrize(
    "n_points,n_frequencies", [(n, octaves) for n in FREQ_POINTS for octaves in FREQ_OCTAVES],
    ids=lambda v: f"2^{v.bit_length() - 1}" if v > 64 else f"L{v}")


@_frequency_grid
def bench_frequency_encode_fwd(benchmark, impl, device, n_points, n_frequencies):
    encode, x, _ = _frequency_setup(impl, device, n_points, n_frequencies)

    def step():
        with torch.no_grad():
            return encode(x)

    _frequency_run(benchmark, step, impl, device, "fwd", n_points, n_frequencies)


@_frequency_grid
def bench_frequency_encode_fwd_bwd(benchmark, impl, device, n_points, n_frequencies):
    encode, x, grad_out = _frequency_setup(impl, device, n_points, n_frequencies)
    x.requires_grad_()

    def step():
        return torch.autograd.grad(encode(x), x, grad_out)

    _frequency_run(benchmark, step, impl, device, "fwd+bwd", n_points, n_frequencies)


@_frequency_grid
def bench_frequency_encode_double_bwd(benchmark, impl, device, n_points, n_frequencies):
    encode, x, grad_out = _frequency_setup(impl, device, n_points, n_frequencies)
    x.requires_grad_()
    grad_out.requires_grad_()

    def step():
        (grad_x,) = torch.autograd.grad(encode(x), x, grad_out, create_graph=True)
        return torch.autograd.grad(((grad_x.norm(dim=-1) - 1) ** 2).mean(), grad_out)

    _frequency_run(benchmark, step, impl, device, "fwd+bwd+double bwd", n_points, n_frequencies)
