"""Show that a training step makes no host-device synchronisation, and where its time goes.

Runs a few steps of a preset on CUDA under torch.cuda.set_sync_debug_mode("warn") (every
synchronising call -- .item(), nonzero, a device-to-host copy -- raises a warning, counted here)
and under torch.profiler, and writes the count plus the profiler's table of the top CUDA ops.

    python benchmarks/profile_step.py --preset nerf-lego --device cuda --out profile.txt
"""
import argparse
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workloads import make_model, orbit_cameras, training_step  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="nerf-lego")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--rays", type=int, default=None)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    from fastfield import config
    n_rays = args.rays or config.preset(args.preset).batch_rays
    model = make_model(args.preset, False, device)
    camera = orbit_cameras(model.kind, 8, 400, 400, device)
    step = training_step(model, camera, n_rays, "kernels")
    step()
    lines = [f"preset {args.preset}, {n_rays} rays, device {device}"]
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("warn")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(args.steps):
                step()
        torch.cuda.set_sync_debug_mode("default")
        syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
        lines.append(f"host-device synchronisations in {args.steps} steps: {len(syncs)}")
        lines += sorted({f"  {w.filename}:{w.lineno}: {w.message}" for w in syncs})
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(args.steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    lines.append(prof.key_averages().table(sort_by=sort, row_limit=25))
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
