"""Shared benchmark machinery: size presets, the implementation/device grid, machine info.

FASTFIELD_BENCH selects sizes: "cpu" (default; the whole suite in under 10 minutes on 2 cores),
"gpu" (published presets, large batches; CUDA only for the end-to-end groups) or "smoke" (the
smallest sizes, for CI with --benchmark-disable so every benchmark body runs once).
"""
import json
import os
import platform
from pathlib import Path
from typing import Callable, Dict, Optional

import pytest
import torch

import fastfield
import fastfield._backend

MODE = os.environ.get("FASTFIELD_BENCH", "cpu")
if MODE not in ("smoke", "cpu", "gpu"):
    raise pytest.UsageError(f"FASTFIELD_BENCH must be smoke, cpu or gpu, got {MODE!r}")

IMPLS = ["fastfield", "reference"]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def by_mode(smoke, cpu, gpu):
    """The value for the current FASTFIELD_BENCH mode."""
    return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[MODE]


# The largest per-sample workload the CPU runs (4096 rays x 256 samples): GPU sizes beyond it
# are for CUDA only, so that FASTFIELD_BENCH=gpu never times the CPU at GPU sizes.
CPU_MAX_SAMPLES = 4096 * 256


def skip_gpu_size_on_cpu(device: torch.device, samples: int) -> None:
    if device.type == "cpu" and samples > CPU_MAX_SAMPLES:
        pytest.skip(f"{samples} samples: a GPU size, run on CUDA only")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> Dict[str, object]:
    info = {"cpu": _cpu_model(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "device": str(device), "bench_mode": MODE,
            "kernels": fastfield._backend.KERNELS}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


@pytest.fixture(params=IMPLS)
def impl(request) -> str:
    return request.param


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


# End-to-end groups (a training step, an image render) run on one device per mode: the CPU at
# CPU sizes, CUDA at GPU sizes.
END_TO_END_DEVICES = ["cuda"] if MODE == "gpu" else ["cpu"]


@pytest.fixture(params=END_TO_END_DEVICES)
def e2e_device(request) -> torch.device:
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("FASTFIELD_BENCH=gpu needs a CUDA device")
    return torch.device(request.param)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(benchmark, fn: Callable[[], object], device: torch.device, group: str,
        rounds: Optional[int] = None, **extra) -> None:
    """Time fn() (synchronised on CUDA) under ``group`` after one warm-up call.

    Inputs must be built before calling this: only fn is timed. ``rounds`` switches to
    pedantic mode with that many rounds, for bodies too slow for the default calibration.
    """
    benchmark.group = group
    benchmark.extra_info.update(machine_info(device))
    benchmark.extra_info.update(extra)

    def timed():
        result = fn()
        synchronize(device)
        return result

    timed()
    if rounds is None:
        benchmark(timed)
    else:
        benchmark.pedantic(timed, rounds=rounds, iterations=1, warmup_rounds=0)


# ----------------------------------------------------------------------------- memory results

RESULTS_DIR = Path(__file__).resolve().parent / ".results"
_MEMORY = []


def record_memory(result: Dict[str, object]) -> None:
    """Collect one memory_probe result for the end-of-run table and memory.json."""
    _MEMORY.append(result)


def pytest_terminal_summary(terminalreporter):
    if not _MEMORY:
        return
    terminalreporter.section("peak memory (MiB)")
    for r in _MEMORY:
        cuda = f"  cuda peak {r['cuda_peak_mib']:.0f}" if "cuda_peak_mib" in r else ""
        terminalreporter.write_line(
            f"{r['workload']:5s} {r['preset']:12s} {r['backend']:9s} peak RSS "
            f"{r['peak_rss_mib']:.0f} (after setup {r['baseline_rss_mib']:.0f}){cuda}")


def pytest_sessionfinish(session):
    if _MEMORY:
        RESULTS_DIR.mkdir(exist_ok=True)
        device = torch.device("cuda" if MODE == "gpu" else "cpu")
        (RESULTS_DIR / "memory.json").write_text(json.dumps(
            {"machine": machine_info(device), "results": _MEMORY}, indent=2))
