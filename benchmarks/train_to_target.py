"""Training wall time to a quality target: PSNR on the test views (NeRF) or the Chamfer
distance of the mesh to the built-in scene's exact surface (NeuS), measured every
``--eval-every`` steps; evaluation time is not counted as training time.

    python benchmarks/train_to_target.py --preset ngp-small --set data.builtin_resolution=32 \\
        --iters 600 --eval-every 100 --target-psnr 20.5 --out /tmp/ngp

Prints one JSON line per evaluation ({"step", "train_s", "cpu_s", "psnr" or "chamfer"}) and a
last line with the first evaluation that met the target (null if never). ``train_s`` is wall
time; ``cpu_s`` the process's CPU time (all threads) spent training, the fairer figure on a
shared, oversubscribed machine.
"""
import argparse
import json
import sys
import time

import torch

from fastfield.config import apply_override, preset
from fastfield.train import Trainer, evaluate
from fastfield.train.surface import score_builtin_surface


class TargetReached(Exception):
    """Stops the run at the first evaluation that meets the target (--stop-at-target)."""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--iters", type=int, required=True)
    parser.add_argument("--eval-every", type=int, required=True)
    parser.add_argument("--target-psnr", type=float)
    parser.add_argument("--target-chamfer", type=float)
    parser.add_argument("--mesh-resolution", type=int, default=96)  # the CPU demo's
    parser.add_argument("--out", required=True)
    parser.add_argument("--stop-at-target", action="store_true")
    args = parser.parse_args(argv)

    config = preset(args.preset)
    for assignment in args.set:
        apply_override(config, assignment)
    config.iters, config.log_every = args.iters, args.eval_every
    config.val_every, config.ckpt_every = 0, 0
    trainer = Trainer(config, args.out, device="cpu", progress=False)
    records, reached = [], []
    eval_cpu = [0.0]
    cpu_start = time.process_time()

    def measure(t: Trainer) -> None:
        if t.step % args.eval_every and t.step != config.iters:
            return
        record = {"step": t.step, "train_s": round(t.elapsed, 2),  # updated at each log window
                  "cpu_s": round(time.process_time() - cpu_start - eval_cpu[0], 2)}
        started, started_cpu = time.perf_counter(), time.process_time()
        with torch.no_grad():
            if config.model == "nerf":
                record["psnr"] = evaluate(t.model, t.scene, "test", progress=False)["mean_psnr"]
                met = args.target_psnr is not None and record["psnr"] >= args.target_psnr
            else:
                score = score_builtin_surface(t.model, config, args.mesh_resolution, 10_000, 0,
                                              t.device)
                record["chamfer"] = score["chamfer"]
                met = args.target_chamfer is not None and record["chamfer"] <= args.target_chamfer
        record["eval_s"] = round(time.perf_counter() - started, 2)
        eval_cpu[0] += time.process_time() - started_cpu
        print(json.dumps(record), flush=True)
        records.append(record)
        if met and not reached:
            reached.append(record)
            if args.stop_at_target:
                raise TargetReached

    try:
        trainer.train(callback=measure)
    except TargetReached:
        pass
    print(json.dumps({"preset": args.preset, "overrides": args.set,
                      "target_met_at": reached[0] if reached else None}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
