"""Peak memory of a training step and of a full-image render, kernels against reference.

Not timings: each (workload, backend) runs in its own process (memory_probe.py) and reports its
peak RSS, and on CUDA the peak of torch.cuda.max_memory_allocated over the workload. Results are
printed at the end of the run and written to benchmarks/.results/memory.json for summarize.py.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import MODE, by_mode, record_memory

PROBE = Path(__file__).resolve().parent / "memory_probe.py"
WORKLOADS = by_mode(
    smoke=[("train", "nerf-small", 32, 16, 16)],
    cpu=[("train", "nerf-small", 512, 100, 100), ("image", "nerf-small", 0, 100, 100),
         ("train", "neus-small", 256, 48, 64), ("image", "neus-small", 0, 48, 64)],
    gpu=[("train", "nerf-lego", 1024, 800, 800), ("image", "nerf-lego", 0, 800, 800),
         ("train", "neus-womask", 512, 300, 400), ("image", "neus-womask", 0, 300, 400)])


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: f"{w[0]}-{w[1]}")
@pytest.mark.parametrize("backend", ["kernels", "reference"])
def test_peak_memory(workload, backend):
    kind, preset_name, rays, height, width = workload
    device = "cuda" if MODE == "gpu" else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("FASTFIELD_BENCH=gpu needs a CUDA device")
    command = [sys.executable, str(PROBE), "--workload", kind, "--preset", preset_name,
               "--backend", backend, "--device", device, "--rays", str(max(rays, 1)),
               "--height", str(height), "--width", str(width)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["peak_rss_mib"] >= result["baseline_rss_mib"] > 0
    record_memory(result)
