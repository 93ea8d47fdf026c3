"""Data-parallel training over several processes with torch.distributed.

Launched by ``torchrun --nproc_per_node N -m fastfield train ...`` or ``fastfield train --nproc
N`` (fastfield.train.launch), every process (rank) runs the same Trainer on one model:

- Each rank draws ``batch_rays / N`` rays of every step from its own generator stream (seeded
  from the run's seed and the rank; rank 0's stream is the single-process one), while the
  image a one-image step uses is drawn from the shared host stream, so a global step still
  takes all its rays from one image.
- After backward, ``GradientReducer`` averages the gradients over the ranks: flattened into
  buckets, all-reduced, divided by N. NeuS's eikonal term differentiates a gradient
  (create_graph), which DistributedDataParallel's hooks do not support, so fastfield reduces
  the finished gradients itself. Every rank then takes the same Adam step, so the weights stay
  identical without being sent again.
- Rank 0 alone logs, shows the progress bar, renders validation views and writes checkpoints
  (atomically); a checkpoint holds every rank's generator state, so resuming with the same
  number of ranks is exact and resuming with another number restarts the streams (a notice
  says so).
- Host-side decisions (Ctrl-C) are agreed on every step through a gloo group, so all ranks
  stop after the same step and save one checkpoint together.

Process groups: NCCL for CUDA devices (one GPU per rank, cuda:<local rank>), gloo on the CPU.
"""
import hashlib
import os
import signal
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterable, List, Optional

import torch
import torch.distributed as dist
from torch import Tensor, nn

# Gradients are reduced in buckets of about this many bytes: large enough to amortise each
# collective's latency, small enough that several are in flight at once.
BUCKET_BYTES = 25 * 2 ** 20
ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass
class World:
    """This process's place in the run: rank, number of ranks, local rank (its GPU), and the
    gloo group for host-side agreement. ``World()`` is a single-process run."""
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    host_group: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def rank_device(self, device: torch.device) -> torch.device:
        """The device this rank trains on: a CUDA run puts rank r on cuda:<local rank r>."""
        if not self.distributed or device.type != "cuda":
            return device
        if device.index not in (None, self.local_rank):
            raise ValueError(f"device {device}: with {self.size} processes each one uses "
                             f"cuda:<local rank>; pass --device cuda")
        count = torch.cuda.device_count()
        if self.local_rank >= count:
            raise ValueError(f"local rank {self.local_rank} has no GPU: only {count} CUDA "
                             f"device(s) visible; start at most {count} processes per machine")
        return torch.device("cuda", self.local_rank)

    def stream_seed(self, seed: int, step: int = 0) -> int:
        """The seed of this rank's generator stream. Rank 0 at step 0 is ``seed`` itself (a
        single-process run is unchanged); other ranks and restarted streams hash (seed, rank,
        step) to 63 bits."""
        if self.rank == 0 and step == 0:
            return seed
        digest = hashlib.sha256(f"fastfield:{seed}:{self.rank}:{step}".encode()).digest()
        return int.from_bytes(digest[:8], "little") >> 1

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank (a host-side all-reduce: no device sync)."""
        if not self.distributed:
            return flag
        value = torch.tensor([int(flag)], dtype=torch.int32)
        dist.all_reduce(value, op=dist.ReduceOp.MAX, group=self.host_group)
        return bool(value.item())

    def mean(self, values: Tensor) -> Tensor:
        """The mean of ``values`` over the ranks (every rank gets it)."""
        if not self.distributed:
            return values
        values = values.clone()
        dist.all_reduce(values)
        return values / self.size

    def gather(self, value: Any) -> List[Any]:
        """``value`` of every rank, in rank order (picklable objects; every rank gets them)."""
        if not self.distributed:
            return [value]
        gathered: List[Any] = [None] * self.size
        dist.all_gather_object(gathered, value, group=self.host_group)
        return gathered

    def broadcast_module(self, module: nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank (a safety net: every rank builds and
        loads the same weights, and equal gradients keep them equal)."""
        if self.distributed:
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, 0)

    def close(self, finished: bool = False) -> None:
        """Leave the process group. ``finished`` (every rank ended its run normally): wait for
        the others first, so rank 0 (which hosts the rendezvous store) never tears the group
        down under a rank still leaving it (that rank then aborts in gloo's threads)."""
        if self.distributed and dist.is_initialized():
            if finished:
                dist.barrier(group=self.host_group)
            dist.destroy_process_group()


def launched_by_torchrun() -> bool:
    return all(key in os.environ for key in ENV_KEYS) and int(os.environ["WORLD_SIZE"]) > 1


def _raise_on_sigterm(signum, frame):
    # torchrun stops the surviving ranks with SIGTERM when one fails: raising unwinds the
    # stack, so a checkpoint being written is removed (core.atomic) instead of left half-done.
    raise SystemExit(128 + signum)


def join_process_group(device_name, timeout_s: float = 600.0) -> World:
    """This process's World: a single-process one, or, when torchrun's environment (RANK,
    WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) names several processes, a rank of the
    initialised default group (NCCL when ``device_name`` is a CUDA device or auto with a GPU,
    else gloo) plus a gloo group for host-side agreement."""
    if not launched_by_torchrun():
        return World()
    text = str(device_name)
    cuda = text.startswith("cuda") or (text == "auto" and torch.cuda.is_available())
    backend = "nccl" if cuda else "gloo"
    if cuda:  # NCCL communicates on the current device: this rank's GPU, not cuda:0
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    host_group = dist.new_group(backend="gloo") if backend != "gloo" else None
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_on_sigterm)
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ["LOCAL_RANK"]),
                 host_group)


class GradientReducer:
    """Averages the gradients of ``parameters`` over the ranks, in place, after backward.

    Parameters are grouped in registration order into buckets of at most ``bucket_bytes``
    (one dtype and device per bucket); each bucket's gradients are flattened into one tensor
    and all-reduced asynchronously, so the buckets' collectives overlap, then divided by the
    number of ranks and copied back. A parameter without a gradient on this rank counts as
    zeros, so every rank sends the same sizes and ends with the same gradients.
    """

    def __init__(self, parameters: Iterable[nn.Parameter], world: World,
                 bucket_bytes: int = BUCKET_BYTES):
        if bucket_bytes < 1:
            raise ValueError(f"bucket_bytes must be >= 1, got {bucket_bytes}")
        self.world = world
        self.buckets: List[List[nn.Parameter]] = []
        size = 0
        for parameter in (p for p in parameters if p.requires_grad):
            nbytes = parameter.numel() * parameter.element_size()
            last = self.buckets[-1] if self.buckets else None
            if (last is None or size + nbytes > bucket_bytes or last[0].dtype != parameter.dtype
                    or last[0].device != parameter.device):
                self.buckets.append([])
                size = 0
            self.buckets[-1].append(parameter)
            size += nbytes

    def __call__(self) -> None:
        if not self.world.distributed:
            return
        pending = []
        for bucket in self.buckets:
            flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                              for p in bucket])
            pending.append((bucket, flat, dist.all_reduce(flat, async_op=True)))
        for bucket, flat, work in pending:
            work.wait()
            flat.div_(self.world.size)
            offset = 0
            for parameter in bucket:
                reduced = flat[offset:offset + parameter.numel()].view_as(parameter)
                offset += parameter.numel()
                if parameter.grad is None:
                    parameter.grad = reduced.clone()
                else:
                    parameter.grad.copy_(reduced)


def share_of_batch(batch_rays: int, world: World) -> int:
    """The rays each rank draws per step; ValueError unless ``batch_rays`` splits evenly (equal
    shares keep the averaged gradient that of the global batch's mean loss)."""
    if batch_rays % world.size:
        raise ValueError(f"batch_rays ({batch_rays}) must be a multiple of the number of "
                         f"processes ({world.size}): each rank draws an equal share")
    return batch_rays // world.size


def restore_streams(states: List[Tensor], generator: torch.Generator, world: World, seed: int,
                    step: int) -> Optional[str]:
    """Set this rank's generator from a checkpoint's per-rank states. Returns None, or a
    notice when the checkpoint came from another number of ranks (the streams restart from
    (seed, rank, step), so the run is no longer the one an uninterrupted run would be)."""
    if len(states) == world.size:
        generator.set_state(states[world.rank])
        return None
    generator.manual_seed(world.stream_seed(seed, step))
    return (f"resuming with {world.size} process(es) a run saved by {len(states)}: each rank's "
            f"random stream restarts, so the result will differ from an uninterrupted run")
