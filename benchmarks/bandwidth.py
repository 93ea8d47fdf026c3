"""composite_density forward + backward at 2^24 samples on a CUDA device, as a fraction of the
device's measured copy bandwidth (CUDA events around the kernels alone).

Bytes are counted as every input read once plus every output written once:
forward  reads sigma, deltas, t (4 B each) and rgb (12 B) per sample, writes weights (4 B) per
         sample and rgb, depth, acc (20 B) per ray;
backward reads sigma, deltas, t, rgb per sample and the output gradients (20 B per ray), writes
         grad_sigma, grad_t (4 B each) and grad_rgb (12 B) per sample.

    python benchmarks/bandwidth.py [--rays 65536 --samples 256] [--json out.json]
"""
import argparse
import json

import torch

import fastfield  # noqa: F401  (registers the operators)


def cuda_time(fn, repeats: int) -> float:
    """Median seconds of fn() between CUDA events."""
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rays", type=int, default=65536)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bandwidth.py needs a CUDA device")
    dev = torch.device("cuda")
    n, s = args.rays, args.samples
    g = torch.Generator(dev).manual_seed(0)
    sigma = torch.rand(n, s, device=dev, generator=g) * 2
    rgb = torch.rand(n, s, 3, device=dev, generator=g)
    t = torch.sort(2 + 4 * torch.rand(n, s, device=dev, generator=g), -1).values
    deltas = torch.cat([t[:, 1:] - t[:, :-1], torch.full((n, 1), 1e10, device=dev)], -1)
    grad_rgb, grad_depth = torch.rand(n, 3, device=dev), torch.rand(n, device=dev)
    op = torch.ops.fastfield

    def forward():
        op.composite_density_fwd(sigma, rgb, deltas, t, None, None)

    def backward():
        op.composite_density_bwd(grad_rgb, grad_depth, None, None, sigma, rgb, deltas, t, None,
                                 None)

    big = torch.empty(256 * 2**20 // 4, device=dev)
    copy_dst = torch.empty_like(big)
    for fn in (forward, backward, lambda: copy_dst.copy_(big)):
        fn()
    torch.cuda.synchronize()
    copy_bw = 2 * big.numel() * 4 / cuda_time(lambda: copy_dst.copy_(big), args.repeats)
    samples = n * s
    fwd_bytes = samples * (4 * 3 + 12 + 4) + n * 20
    bwd_bytes = samples * (4 * 3 + 12) + n * 16 + samples * (4 * 2 + 12)
    fwd_s, bwd_s = cuda_time(forward, args.repeats), cuda_time(backward, args.repeats)
    result = {"device": torch.cuda.get_device_name(dev), "torch": torch.__version__,
              "cuda": torch.version.cuda, "rays": n, "samples_per_ray": s, "samples": samples,
              "copy_bandwidth_GBps": copy_bw / 1e9,
              "forward_ms": fwd_s * 1e3, "forward_GBps": fwd_bytes / fwd_s / 1e9,
              "backward_ms": bwd_s * 1e3, "backward_GBps": bwd_bytes / bwd_s / 1e9,
              "fwd_bwd_fraction_of_copy": (fwd_bytes + bwd_bytes) / (fwd_s + bwd_s) / copy_bw}
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
