"""Time to quality on the CPU: nerf-small (the demo's 600 steps) against nerf-small-occ.

Each run trains on the built-in scene at the demo's resolution and, every ``--eval-every``
steps, measures the mean PSNR over the held-out test views; the evaluation is left out of the
training time. The baseline's PSNR at its last step is the target the occupancy run must reach.

    nice -n 5 python benchmarks/occ_time_to_psnr.py --out /tmp/occ-measure [--runs base,occ]

Writes one JSON line per evaluation to <out>/results.jsonl and prints them. On a shared
machine run the two side by side instead, one thread each, so that both see the same load:

    python benchmarks/occ_time_to_psnr.py --out DIR --runs base --threads 1 &
    python benchmarks/occ_time_to_psnr.py --out DIR --runs occ --threads 1 --target 99 &

and read the time at which the occupancy run first reaches the baseline's last PSNR.
"""
import argparse
import json
import os
import shutil
import time
from pathlib import Path

import torch

from fastfield.config import apply_override, preset
from fastfield.train.evaluate import evaluate
from fastfield.train.trainer import Trainer

# The demo's nerf-small run on a CPU (fastfield/app/demo.py DEMO_PLAN), without its logging.
BASE = ("nerf-small", ["data.builtin_resolution=32", "iters=600", "batch_rays=256"])
OCC = ("nerf-small-occ", ["data.builtin_resolution=32", "iters=600"])  # its own batch and lr
QUIET = ["log_every=25", "val_every=0", "ckpt_every=100000"]


def run(label, name, overrides, out: Path, eval_every: int, stop_psnr=None, threads=2):
    config = preset(name)
    for assignment in overrides + QUIET:
        apply_override(config, assignment)
    folder = out / label
    shutil.rmtree(folder, ignore_errors=True)
    trainer = Trainer(config, folder, progress=False)
    scene = trainer.scene
    # Wall and CPU seconds of training (this process's CPU time: with one thread, a measure of
    # the work that the machine's other load does not inflate).
    state = {"train_s": 0.0, "cpu_s": 0.0, "since": time.perf_counter(),
             "cpu_since": time.process_time(), "records": []}

    def callback(t: Trainer):
        if t.step % eval_every and t.step != config.iters:
            return
        state["train_s"] += time.perf_counter() - state["since"]
        state["cpu_s"] += time.process_time() - state["cpu_since"]
        result = evaluate(t.model, scene, "test", progress=False)
        record = {"run": label, "preset": name, "overrides": overrides, "step": t.step,
                  "train_s": round(state["train_s"], 2), "cpu_s": round(state["cpu_s"], 2),
                  "test_psnr": round(result["mean_psnr"], 3),
                  "samples_per_ray": t.last_record.get("samples_per_ray"),
                  "load": round(os.getloadavg()[0], 2)}
        print(json.dumps(record), flush=True)
        with open(out / "results.jsonl", "a") as file:
            file.write(json.dumps(record) + "\n")
        state["records"].append(record)
        if stop_psnr is not None and result["mean_psnr"] >= stop_psnr:
            raise StopIteration
        state["since"], state["cpu_since"] = time.perf_counter(), time.process_time()

    torch.set_num_threads(threads)
    try:
        trainer.train(callback)
    except StopIteration:
        pass
    return state["records"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--runs", default="base,occ")
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--target", type=float, default=None,
                        help="PSNR to stop the occupancy run at (default: the baseline's last)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--label", default="occ", help="name of the occupancy run's folder")
    parser.add_argument("--occ-set", action="append", default=[],
                        help="extra overrides of the occupancy run")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    target = args.target
    runs = args.runs.split(",")
    if "base" in runs:
        records = run("base", *BASE, out, args.eval_every, threads=args.threads)
        target = records[-1]["test_psnr"] if target is None else target
    if "occ" in runs:
        name, overrides = OCC
        run(args.label, name, overrides + args.occ_set, out, args.eval_every, stop_psnr=target,
            threads=args.threads)


if __name__ == "__main__":
    main()
