"""Time per training step of a preset in every precision x CUDA-graph (x --compile) mode (issue
16), one
Trainer per mode in one process, so the ratios are of one machine at one time:

    python benchmarks/step_modes.py --preset nerf-lego --data gpu_data/lego --device cuda
    python benchmarks/step_modes.py --preset neus-small --device cpu --steps 6 --warmup 2 \\
        --set batch_rays=64          # the wiring, on a CPU (fp32 and bf16, eager)

Each mode trains ``--warmup`` steps (graph capture happens there), then ``--steps`` timed
steps ending in a device synchronisation. Prints one line per mode and a JSON list with
``--json``. Modes a device cannot run (tf32 and graphs on a CPU) are listed as skipped with
the reason.
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from fastfield.config import apply_override, preset
from fastfield.train import Trainer

MODES = [(precision, graph) for precision in ("fp32", "tf32", "bf16") for graph in ("off", "on")]


def time_mode(config, device: str, precision: str, graph: str, warmup: int, steps: int,
              compile: bool = False):
    with tempfile.TemporaryDirectory() as out:
        try:
            trainer = Trainer(config, Path(out) / "run", device=device, precision=precision,
                              cuda_graph=graph, progress=False, compile=compile)
        except ValueError as error:
            return {"precision": precision, "cuda_graph": graph, "compile": compile,
                    "skipped": str(error)}
        for _ in range(warmup):
            trainer.train_step()
        synchronize = (torch.cuda.synchronize if trainer.device.type == "cuda"
                       else (lambda: None))
        synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            stats = trainer.train_step()
        synchronize()
        seconds = (time.perf_counter() - start) / steps
        return {"precision": precision, "cuda_graph": graph, "compile": compile,
                "ms_per_step": 1000 * seconds,
                "it_s": 1 / seconds, "loss": float(stats["loss"]),
                "device": torch.cuda.get_device_name(trainer.device)
                if trainer.device.type == "cuda" else "cpu"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="nerf-small")
    parser.add_argument("--data", help="scene folder (default: the built-in scene)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--compile", action="store_true",
                        help="also time every mode with the fields compiled (--compile)")
    parser.add_argument("--json", help="write the results here as a JSON list")
    args = parser.parse_args()
    config = preset(args.preset)
    for assignment in [*args.set, "val_every=0", "ckpt_every=0"]:
        apply_override(config, assignment)
    if args.data:
        config.data.path = str(Path(args.data).resolve())
    results = []
    for compile in (False, True) if args.compile else (False,):
        for precision, graph in MODES:
            result = time_mode(config, args.device, precision, graph, args.warmup, args.steps,
                               compile)
            results.append(result)
            mode = f"{precision:5s} graph {graph:3s}{' compiled' if compile else ''}"
            if "skipped" in result:
                print(f"{mode}: skipped ({result['skipped']})")
                continue
            print(f"{mode}: {result['ms_per_step']:8.2f} ms/step "
                  f"({result['it_s']:.1f} it/s), loss {result['loss']:.4g}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
