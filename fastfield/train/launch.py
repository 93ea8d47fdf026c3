"""Starting a multi-process training run: ``fastfield train --nproc N`` launches what
``torchrun --standalone --nproc_per_node N -m fastfield train ...`` would, through
torch.distributed.run's elastic launcher, and turns a failed rank into one line.

What N means: on CUDA, N processes with one GPU each (N larger than the visible GPUs is an
error); on the CPU, N gloo processes sharing the machine's cores (each gets
``OMP_NUM_THREADS = cores // N`` unless the variable is set).
"""
import logging
import os
import signal
import uuid
from pathlib import Path
from typing import List, Optional

import torch

from .checkpoint import checkpoint_path, load_checkpoint, remove_partial_checkpoints


class WorkerFailed(RuntimeError):
    """A rank of a multi-process run failed; the message says which and how."""


def check_process_count(nproc: int, device: torch.device) -> None:
    """ValueError when ``nproc`` processes cannot run on ``device``'s kind of machine."""
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if nproc > count:
            raise ValueError(f"--nproc {nproc}: only {count} CUDA device(s) visible; each "
                             f"process trains on its own GPU, so use --nproc {count} or fewer")


def _exit_description(exit_code: int) -> str:
    if exit_code < 0:
        try:
            return f"was killed by {signal.Signals(-exit_code).name}"
        except ValueError:
            return f"was killed by signal {-exit_code}"
    return f"exited with code {exit_code}"


def launch(command: List[str], nproc: int, run_dir: Optional[Path] = None) -> None:
    """Run ``command`` (torchrun's program arguments, e.g. ``["-m", "fastfield", "train",
    ...]``) in ``nproc`` local processes and wait for them.

    Ctrl-C reaches every rank (they stop after the same step and save) and then raises
    KeyboardInterrupt here. When a rank fails, the launcher stops the others (SIGTERM: they unwind, so no checkpoint is
    left half-written), removes any partial checkpoint file left in ``run_dir`` (a rank killed
    outright cannot clean up) and raises WorkerFailed naming the first rank that failed and
    the last complete checkpoint.
    """
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch

    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    if "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    # The launcher's own INFO/WARNING chatter (rendezvous, worker groups) is not the user's.
    logging.getLogger("torch.distributed.elastic").setLevel(logging.ERROR)
    # torchrun --standalone: a c10d rendezvous on a free local port.
    arguments = torchrun.parse_args(["--rdzv_backend=c10d", "--rdzv_endpoint=localhost:0",
                                     f"--rdzv_id={uuid.uuid4()}", f"--nproc_per_node={nproc}",
                                     "--max_restarts=0", "--monitor_interval=0.2", *command])
    config, program, program_args = torchrun.config_from_args(arguments)
    try:
        elastic_launch(config, program)(*program_args)
    except SignalException:
        # Ctrl-C: the launcher passed it on to every rank, which agree on a step, save the
        # checkpoint together and stop.
        raise KeyboardInterrupt from None
    except ChildFailedError as error:
        rank, failure = error.get_first_failure()
        removed = remove_partial_checkpoints(run_dir) if run_dir is not None else []
        raise WorkerFailed(f"rank {rank} of {nproc} {_exit_description(failure.exitcode)}, so "
                           f"the run stopped; {_checkpoint_note(run_dir, removed)}") from None


def _checkpoint_note(run_dir: Optional[Path], removed: List[Path]) -> str:
    if run_dir is None:
        return "see the ranks' messages above"
    note = ""
    if removed:
        note = f"removed {len(removed)} partial checkpoint file(s); "
    path = checkpoint_path(run_dir)
    if not path.is_file():
        return note + f"no checkpoint was written to {run_dir}"
    try:
        step = load_checkpoint(path)["step"]
    except ValueError:
        return note + f"{path} is not readable"
    return note + f"{path} (step {step}) is the last complete checkpoint; continue with --resume"
