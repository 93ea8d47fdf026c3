"""Peak memory of one workload in a fresh process, so that nothing another benchmark allocated
counts. Prints one JSON line.

The peak is the kernel's high-water mark of this process's resident set (VmHWM), reset to the
current RSS once setup is done (``/proc/self/clear_refs``), so it is the workload's peak. Not
getrusage's ru_maxrss: on Linux a child inherits its parent's maximum across fork and exec, so
under pytest every probe would report the pytest process's own peak.

    python benchmarks/memory_probe.py --workload train --preset nerf-small --backend kernels
"""
import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workloads import image_render, make_model, orbit_cameras, training_step  # noqa: E402


def _status_mib(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field} (peak RSS needs Linux)")


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workload", choices=["train", "image"], required=True)
    parser.add_argument("--preset", required=True)
    parser.add_argument("--backend", choices=["kernels", "reference"], required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rays", type=int, default=512)
    parser.add_argument("--height", type=int, default=100)
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--trivial", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    model = make_model(args.preset, args.trivial, device)
    if args.workload == "train":
        camera = orbit_cameras(model.kind, 8, args.height, args.width, device)
        work = training_step(model, camera, args.rays, args.backend)
    else:
        camera = orbit_cameras(model.kind, 1, args.height, args.width, device)
        work = image_render(model.eval(), camera, args.backend)
    baseline = _status_mib("VmRSS")
    peak_is_workload = _reset_peak()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    work()
    result = {"workload": args.workload, "preset": args.preset, "backend": args.backend,
              "device": args.device, "trivial": args.trivial, "baseline_rss_mib": baseline,
              "peak_rss_mib": _status_mib("VmHWM"),
              # False: the peak could not be reset and includes setup.
              "peak_is_workload": peak_is_workload}
    if device.type == "cuda":
        torch.cuda.synchronize()
        result["cuda_peak_mib"] = (torch.cuda.max_memory_allocated(device) - before) / 2**20
    print(json.dumps(result))


if __name__ == "__main__":
    main()
