"""The compositing kernels on a CUDA device as fractions of its measured copy bandwidth: forward
and backward separately (CUDA events around each op alone, median of repeats), then both.

Cases (float32):
  density padded  65536 rays x 256 samples (2^24), the bench_composite inputs
  density packed  65536 rays of 0 .. 512 samples, 64 on average (bench_composite.packed_offsets)
  sdf padded      65536 rays x 128 samples, no background model

Bytes are every input read once plus every output written once (what a kernel cannot avoid):
  density forward  reads sigma, deltas, t (4 B each), rgb (12 B) per sample; writes weights
                   (4 B) per sample and rgb, depth, acc (20 B) per ray
  density backward reads sigma, deltas, t, rgb per sample and the output gradients rgb, depth
                   (16 B) per ray; writes grad_sigma, grad_t (4 B each), grad_rgb (12 B) per sample
  sdf forward      reads sdf, cos, dists (4 B each), rgb (12 B) per sample, inv_s per ray;
                   writes weights, alpha (4 B each) per sample, rgb, acc (16 B) per ray
  sdf backward     reads the same inputs and the gradients of rgb, acc (16 B) per ray; writes
                   grad_sdf, grad_cos (4 B each), grad_rgb (12 B) per sample, grad_inv_s per ray
  packed           and ray_offsets (8 B per ray) in each direction

    python benchmarks/bandwidth.py [--repeats 20] [--json out.json]
    python benchmarks/bandwidth.py --dry-run    # every case once, 256 rays, on the CPU (no GPU)

Each case is measured with the kernels' own choice of tile width (lanes per ray: csrc/common/
tile.h) and forced to each width, so that one run shows which suits which rays.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fastfield  # noqa: E402
import fastfield._backend  # noqa: E402
from bench_composite import (_density_inputs, _sdf_inputs, packed_density_inputs,  # noqa: E402
                             packed_offsets)

fastfield._backend.load()  # registers torch.ops.fastfield


def median_time(fn, repeats: int, dev: torch.device) -> float:
    """Median seconds of fn(): between CUDA events on a GPU, by the wall clock on the CPU."""
    times = []
    for _ in range(repeats):
        if dev.type == "cuda":
            start, end = (torch.cuda.Event(enable_timing=True),
                          torch.cuda.Event(enable_timing=True))
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def density_case(rays, dev, packed=False):
    """(forward, backward, forward bytes, backward bytes, samples) of composite_density."""
    offsets = packed_offsets(rays) if packed else None
    if offsets is None:
        sigma, rgb, deltas, t = _density_inputs(rays, 256, dev)
    else:
        sigma, rgb, deltas, t = packed_density_inputs(offsets, dev)
        offsets = offsets.to(dev)
    n = sigma.numel()
    g = torch.Generator(device=dev).manual_seed(0)
    grad_rgb = torch.rand(rays, 3, device=dev, generator=g)
    grad_depth = torch.rand(rays, device=dev, generator=g)
    op = torch.ops.fastfield
    extra = 8 * rays if offsets is not None else 0

    def forward():
        op.composite_density_fwd(sigma, rgb, deltas, t, offsets, None)

    def backward():
        op.composite_density_bwd(grad_rgb, grad_depth, None, None, sigma, rgb, deltas, t,
                                 offsets, None)

    return (forward, backward, n * (24 + 4) + rays * 20 + extra,
            n * (24 + 20) + rays * 16 + extra, n)


def sdf_case(rays, dev):
    x = _sdf_inputs(rays, 128, 0, dev)
    n = x["sdf"].numel()
    g = torch.Generator(device=dev).manual_seed(0)
    grad_rgb = torch.rand(rays, 3, device=dev, generator=g)
    grad_acc = torch.rand(rays, device=dev, generator=g)
    inv_s = x["inv_s"].reshape(1)
    args = (x["sdf"], x["cos"], x["dists"], inv_s, x["rgb"], 0.5, None, None, None, None)
    op = torch.ops.fastfield

    def forward():
        op.composite_sdf_fwd(*args)

    def backward():
        op.composite_sdf_bwd(grad_rgb, grad_acc, None, None, *args)

    return forward, backward, n * (24 + 8) + rays * 16, n * (24 + 20) + rays * 16, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", default=None)
    parser.add_argument("--dry-run", action="store_true",
                        help="every case once with 256 rays on the CPU: checks the script only")
    args = parser.parse_args()
    if args.dry_run:
        dev, rays, repeats = torch.device("cpu"), 256, 1
    elif torch.cuda.is_available():
        dev, rays, repeats = torch.device("cuda"), 65536, args.repeats
    else:
        raise SystemExit("bandwidth.py needs a CUDA device (or --dry-run)")
    big = torch.empty(256 * 2**20 // 4 if dev.type == "cuda" else 2**20, device=dev)
    copy_dst = torch.empty_like(big)
    copy_dst.copy_(big)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    copy_bw = 2 * big.numel() * 4 / median_time(lambda: copy_dst.copy_(big), repeats, dev)
    del big, copy_dst
    result = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu (dry run)",
              "torch": torch.__version__, "cuda": torch.version.cuda,
              "copy_bandwidth_GBps": copy_bw / 1e9, "cases": {}}
    cases = {f"density padded {rays}x256": lambda: density_case(rays, dev),
             f"density packed {rays} rays, 0..512 samples (mean 64)":
                 lambda: density_case(rays, dev, packed=True),
             f"sdf padded {rays}x128": lambda: sdf_case(rays, dev)}
    for name, make in cases.items():
        forward, backward, fwd_bytes, bwd_bytes, samples = make()

        def measure():
            forward(), backward()  # warm-up
            if dev.type == "cuda":
                torch.cuda.synchronize()
            fwd_s, bwd_s = median_time(forward, repeats, dev), median_time(backward, repeats, dev)
            return {"forward_ms": fwd_s * 1e3, "forward_GBps": fwd_bytes / fwd_s / 1e9,
                    "forward_fraction_of_copy": fwd_bytes / fwd_s / copy_bw,
                    "backward_ms": bwd_s * 1e3, "backward_GBps": bwd_bytes / bwd_s / 1e9,
                    "backward_fraction_of_copy": bwd_bytes / bwd_s / copy_bw,
                    "fwd_bwd_fraction_of_copy":
                        (fwd_bytes + bwd_bytes) / (fwd_s + bwd_s) / copy_bw}

        result["cases"][name] = {"samples": samples, **measure(), "by_tile_width": {}}
        for width in (8, 32):  # the lanes per ray the kernels would use if forced (tile.h)
            previous = fastfield._backend.set_cuda_tile_width(width)
            try:
                result["cases"][name]["by_tile_width"][width] = measure()
            finally:
                fastfield._backend.set_cuda_tile_width(previous)
        del forward, backward
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    print(json.dumps(result, indent=2))
    for name, r in result["cases"].items():
        for label, m in [("", r)] + [(f" x{w}", m) for w, m in r["by_tile_width"].items()]:
            print(f"{name + label:56s} forward {m['forward_ms']:7.3f} ms "
                  f"{100 * m['forward_fraction_of_copy']:5.1f}%  backward {m['backward_ms']:7.3f} "
                  f"ms {100 * m['backward_fraction_of_copy']:5.1f}%  both "
                  f"{100 * m['fwd_bwd_fraction_of_copy']:5.1f}% of copy")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
