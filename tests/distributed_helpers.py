"""Workers of the multi-process tests (tests/test_distributed.py): functions spawned as ranks of
a gloo group on the CPU, and the script a dying-rank run launches."""
import os
import socket
import sys
from pathlib import Path

import torch

from fastfield.train import Trainer
from fastfield.train.distributed import BUCKET_BYTES, GradientReducer, join_process_group
from training_helpers import tiny_config


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FixedPixels:
    """A PixelSampler stand-in that hands out the same pixel ids [n, 3] every step."""

    def __init__(self, pixels: torch.Tensor):
        self.pixels = pixels

    def sample(self, step, generator, camera=None):
        return self.pixels

    def state_dict(self):
        return {}


def join_as_rank(rank: int, world_size: int, port: int):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    return join_process_group("cpu")


def fixed_ray_step(trainer: Trainer, pixels: torch.Tensor) -> None:
    """One deterministic update (no jitter, no noise) of ``trainer`` on ``pixels``."""
    trainer.runner.pixels = FixedPixels(pixels)
    trainer.runner.perturb = False
    trainer.train_step()


def step_on_share(rank: int, world_size: int, port: int, name: str, extra, pixels_path: str,
                  out_dir: str, bucket_bytes: int = BUCKET_BYTES) -> None:
    """Rank ``rank``: one fixed-ray step on its share of the pixels (gradients reduced in
    buckets of ``bucket_bytes``), then save its gradients and parameters to
    out_dir/rank<r>.pt."""
    world = join_as_rank(rank, world_size, port)
    try:
        trainer = Trainer(tiny_config(name, 1, *extra), Path(out_dir) / "run", device="cpu",
                          backend="kernels", progress=False, world=world)
        reducer = GradientReducer(trainer.model.parameters(), world, bucket_bytes)
        trainer.runner.reduce_gradients = reducer
        torch.save(len(reducer.buckets), Path(out_dir) / f"buckets{rank}.pt")
        pixels = torch.load(pixels_path)
        fixed_ray_step(trainer, pixels.chunk(world_size)[rank])
        torch.save({"grads": [p.grad for p in trainer.model.parameters()],
                    "params": [p.detach() for p in trainer.model.parameters()]},
                   Path(out_dir) / f"rank{rank}.pt")
    finally:
        world.close()


def dying_run(out_dir: str, how: str, overrides) -> None:
    """A 2-rank run (started by fastfield.train.launch) that loses a rank after its step-2
    checkpoint: ``rank1-exits`` (rank 1 exits with code 3 after step 3) or
    ``rank0-killed-writing`` (rank 0 is SIGKILLed half-way through writing the step-4
    checkpoint)."""
    import signal

    from fastfield.config import apply_override, preset
    from fastfield.core.atomic import atomic_path
    from fastfield.train import trainer as trainer_module

    config = preset("nerf-small")
    for assignment in overrides:
        apply_override(config, assignment)
    world = join_process_group("cpu")

    def callback(trainer):
        if how == "rank1-exits" and world.rank == 1 and trainer.step == 3:
            sys.stderr.flush()
            os._exit(3)

    if how == "rank0-killed-writing" and world.rank == 0:
        real_save = trainer_module.save_atomic

        def save_then_die(payload, path):
            if payload["step"] == 4:
                with atomic_path(path) as temporary, open(temporary, "wb") as file:
                    file.write(b"half a checkpoint")
                    file.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
            real_save(payload, path)
        trainer_module.save_atomic = save_then_die
    trainer = Trainer(config, out_dir, device="cpu", backend="kernels", progress=False,
                      world=world)
    trainer.train(callback=callback)
    world.close()


if __name__ == "__main__":  # python distributed_helpers.py OUT HOW OVERRIDE...
    dying_run(sys.argv[1], sys.argv[2], sys.argv[3:])
