"""Peak memory of one workload in a fresh process (a process's peak RSS cannot be reset, so
each (workload, backend) pair runs alone). Prints one JSON line.

    python benchmarks/memory_probe.py --workload train --preset nerf-small --backend kernels
"""
import argparse
import json
import resource
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workloads import image_render, make_model, orbit_cameras, training_step  # noqa: E402


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


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
    baseline = _rss_mib()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    work()
    result = {"workload": args.workload, "preset": args.preset, "backend": args.backend,
              "device": args.device, "trivial": args.trivial, "baseline_rss_mib": baseline,
              # ru_maxrss is in KiB on Linux: the process's peak, setup included.
              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        torch.cuda.synchronize()
        result["cuda_peak_mib"] = (torch.cuda.max_memory_allocated(device) - before) / 2**20
    print(json.dumps(result))


if __name__ == "__main__":
    main()
