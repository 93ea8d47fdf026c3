"""The whole training step (the Trainer's: pixels -> rays -> render -> loss -> backward -> Adam)
in each of issue 16's modes, against the plain fp32 eager step measured in the same group:

- "compiled fields": ``--compile`` (torch.compile on the fields; NeuS's SDF field stays eager),
- "bf16": ``--precision bf16`` (autocast),
- CUDA only: "tf32", "cuda graph" (fp32, the step captured and replayed), and "default"
  (what ``fastfield train`` does on CUDA: tf32 and the captured step), "default + compiled".

The models are the presets' real networks on the built-in scene (only the model and the batch
size matter to a step's time): nerf-small / neus-small on the CPU, nerf-lego / neus-womask
(GPU sizes) on CUDA. Each mode trains WARMUP steps before timing (compilation and graph capture
happen there). The ratio of a group is the eager fp32 step's time over the mode's.
"""
import tempfile
from pathlib import Path

import pytest
import torch

from conftest import by_mode, run
from fastfield.config import DataConfig, apply_override, preset
from fastfield.train import Trainer

# (preset, batch rays, extra overrides) per mode of the suite.
NERF = by_mode(smoke=("nerf-small", 64, ["nerf.n_coarse=16", "nerf.n_fine=16"]),
               cpu=("nerf-small", 512, []), gpu=("nerf-lego", 1024, []))
NEUS = by_mode(smoke=("neus-small", 32, ["neus.n_samples=16", "neus.n_importance=16"]),
               cpu=("neus-small", 256, []), gpu=("neus-womask", 512, []))
ROUNDS = by_mode(smoke=1, cpu=5, gpu=50)
WARMUP = 5  # > graph.WARMUP_STEPS + the capture

BASELINE = {"precision": "fp32", "cuda_graph": "off", "compile": False}
MODES = {
    "compiled fields": {"compile": True},
    "bf16": {"precision": "bf16"},
    "tf32": {"precision": "tf32"},
    "cuda graph": {"cuda_graph": "on"},
    "default": {"precision": "tf32", "cuda_graph": "on"},
    "default + compiled": {"precision": "tf32", "cuda_graph": "on", "compile": True},
}
CPU_MODES = ("compiled fields", "bf16")


def step_of(workload, device: torch.device, out_dir: Path, **mode):
    """A warmed-up Trainer's train_step for ``workload`` in ``mode`` (Trainer's options)."""
    name, n_rays, overrides = workload
    config = preset(name)
    config.data = DataConfig(builtin_format="neus" if config.model == "neus" else "blender")
    for assignment in [*overrides, f"batch_rays={n_rays}", "val_every=0", "ckpt_every=0"]:
        apply_override(config, assignment)
    trainer = Trainer(config, out_dir, device=device, backend="kernels", progress=False,
                      **{**BASELINE, **mode})
    for _ in range(WARMUP):
        trainer.train_step()
    return trainer.train_step


@pytest.mark.parametrize("workload", [NERF, NEUS], ids=["nerf", "neus"])
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("variant", ["fastfield", "fp32 eager"])
def bench_step_mode(benchmark, e2e_device, workload, mode, variant):
    if e2e_device.type != "cuda" and mode not in CPU_MODES:
        pytest.skip(f"{mode}: a CUDA mode")
    name, n_rays, _ = workload
    with tempfile.TemporaryDirectory() as out:
        step = step_of(workload, e2e_device, Path(out) / "run",
                       **(MODES[mode] if variant == "fastfield" else {}))
        run(benchmark, step, e2e_device, f"train step {name} {n_rays} rays "
            f"{e2e_device.type}: {mode}", rounds=ROUNDS, impl=variant, preset=name, mode=mode)
