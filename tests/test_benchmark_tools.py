"""The benchmark tooling users run by hand: benchmarks/regress.sh (save a baseline, compare, fail
on a regression) and benchmarks/summarize.py (ratio table, scaling rise, plot)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# One cheap benchmark body at smoke sizes: the workflow is under test, not the timing.
SELECTION = "bench_stratified and fastfield and per_ray"


def regress(action, storage, **env):
    # Without the variables of a pytest-xdist worker running this test: pytest-benchmark would
    # take the child run for a worker too and save nothing.
    inherited = {key: value for key, value in os.environ.items()
                 if not key.startswith("PYTEST_XDIST")}
    environment = {**inherited, "FASTFIELD_BENCH": "smoke",
                   "FASTFIELD_BENCH_STORAGE": str(storage),
                   "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **env}
    return subprocess.run(["bash", str(REPO / "benchmarks" / "regress.sh"), action, "-k", SELECTION,
                           "-p", "no:cacheprovider"], cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(shutil.which("bash") is None, reason="regress.sh needs bash")
def test_regress_saves_compares_and_fails_on_a_slower_median(tmp_path):
    storage = tmp_path / "storage"
    saved = regress("compare", storage)
    assert saved.returncode == 2 and "save first" in saved.stderr

    saved = regress("save", storage)
    assert saved.returncode == 0, saved.stdout[-2000:] + saved.stderr[-2000:]
    [baseline] = storage.glob("*/0001_baseline-smoke.json")

    # Against its own baseline, with a tolerance no timing noise can exceed: passes.
    same = regress("compare", storage, FASTFIELD_REGRESS_FAIL="median:1000%")
    assert same.returncode == 0, same.stdout[-2000:]
    assert f"comparing with {baseline}" in same.stdout

    # A baseline a thousand times faster: today's run is a regression at the default 20%.
    data = json.loads(baseline.read_text())
    for bench in data["benchmarks"]:
        for key in ("min", "max", "mean", "median", "q1", "q3", "stddev", "iqr"):
            bench["stats"][key] *= 1e-3
    baseline.write_text(json.dumps(data))
    slower = regress("compare", storage)
    assert slower.returncode == 1
    assert "regressed" in (slower.stdout + slower.stderr).lower()


def _bench(group, impl, median, **extra):
    return {"group": group, "name": f"bench[{impl}]", "stats": {"median": median},
            "extra_info": {"impl": impl, "torch": "2.x", "cpu": "test cpu", "threads": 2, **extra}}


def test_summarize_writes_ratios_scaling_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    runs = [_bench("composite cpu", "fastfield", 0.002), _bench("composite cpu", "reference", 0.008),
            _bench("rays cpu", "fastfield", 1e-4), _bench("rays cpu", "reference", 5e-4),
            _bench("rays cpu", "nerf_pytorch_image", 0.04)]
    for n_rays, fastfield_s, reference_s in ((1024, 0.1, 0.2), (4096, 0.4, 0.8), (16384, 2.0, 3.2)):
        for impl, seconds in (("fastfield", fastfield_s), ("reference", reference_s)):
            runs.append(_bench(f"render_rays {n_rays}", impl, seconds, preset="nerf-small",
                               n_rays=n_rays, scaling=True))
    bench_json = tmp_path / "bench.json"
    bench_json.write_text(json.dumps({"datetime": "2026-12-02T00:00:00", "benchmarks": runs}))
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "summarize.py"), str(bench_json),
                           "--out", str(tmp_path / "out"), "--memory", str(tmp_path / "none.json")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| composite cpu | 2.00 ms | reference: 8.00 ms | 4.00x |" in summary
    assert "| rays cpu vs nerf_pytorch_image | 100.0 us | nerf_pytorch_image: 40.00 ms | 400.00x |" in summary
    # Time per ray from 4096 to 16384 rays: 0.4/4096 -> 2.0/16384 s is +25% (fastfield),
    # 0.8/4096 -> 3.2/16384 is 0% (reference).
    assert "| nerf-small | fastfield |" in summary and "| +25% |" in summary and "| +0% |" in summary
    assert "test cpu" in summary
    assert (tmp_path / "out" / "scaling.png").stat().st_size > 0


def test_summarize_rejects_a_file_that_is_not_a_benchmark_run(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"something": 1}))
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "summarize.py"), str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "not a pytest-benchmark JSON file" in done.stderr


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                    reason="run_gpu.sh needs bash and timeout")
def test_run_gpu_dry_run_wires_every_stage(tmp_path):
    """benchmarks/run_gpu.sh on a machine without a GPU (--dry-run): every kernels stage runs in
    its GPU-free form and leaves its file, and bandwidth.py computes all three cases."""
    inherited = {key: value for key, value in os.environ.items()
                 if not key.startswith("PYTEST_XDIST")}
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "run_gpu.sh"), str(tmp_path / "out"),
                           "kernels", "--dry-run"], cwd=REPO, capture_output=True, text=True,
                          env={**inherited, "PYTHON": sys.executable}, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    log = (tmp_path / "out" / "log.txt").read_text()
    for stage in ("kernel tests, CUDA cases: done", "bandwidth (dry run on the CPU): done",
                  "op micro-benchmarks at GPU sizes, CUDA only", "done: "):
        assert stage in log, log
    assert "TIMED OUT" not in log
    collected = (tmp_path / "out" / "tests_cuda.txt").read_text()  # no GPU: the parity tests
    for name in ("composite_density", "composite_sdf", "pdf", "rays", "sampling"):
        assert f"tests/test_{name}.py: 1" in collected, collected
    bandwidth = json.loads((tmp_path / "out" / "bandwidth.json").read_text())
    assert len(bandwidth["cases"]) == 3
    for case in bandwidth["cases"].values():
        assert case["forward_ms"] > 0 and case["backward_ms"] > 0


def test_gpu_sizes_never_run_on_the_cpu():
    """FASTFIELD_BENCH=gpu: the compositing groups at GPU sizes skip on the CPU device."""
    inherited = {key: value for key, value in os.environ.items()
                 if not key.startswith("PYTEST_XDIST")}
    done = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/bench_composite.py", "-q",
                           "-p", "no:cacheprovider", "--benchmark-disable", "-rs", "-k",
                           "cpu and 65536"], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env={**inherited, "FASTFIELD_BENCH": "gpu"})
    assert "run on CUDA only" in done.stdout, done.stdout[-2000:]
    assert " passed" not in done.stdout and "skipped" in done.stdout, done.stdout[-2000:]
