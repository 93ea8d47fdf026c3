"""What the ``fastfield`` commands do, as functions of a run: the CLI's handlers (cli.py) and
the demo (demo.py) both call these, so a command behaves the same from either."""
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from ..config import TrainConfig
from ..mesh import extract_mesh, vertex_normals, write_ply
from ..train import Trainer, evaluate
from ..render.backend import DEFAULT_BACKEND
from ..train.device import resolve_device
from ..train.distributed import World, join_process_group, share_of_batch
from ..train.launch import check_process_count, launch
from ..train.precision import precision_context
from ..train.scenes import render_settings
from ..train.surface import score_builtin_surface
from .runs import TrainedRun
from .video import render_video


def train(config: TrainConfig, out_dir, device="auto", backend: Optional[str] = None,
          precision: Optional[str] = None, resume: bool = False,
          progress: bool = True, cuda_graph: str = "auto", compile: bool = False) -> Trainer:
    """Train ``config`` into ``out_dir`` (or continue it with ``resume``); returns the Trainer
    (``trainer.summary()`` is what it reports). Started by torchrun (or ``fastfield train
    --nproc``), this process trains as one rank of the run (fastfield.train.distributed)."""
    world = join_process_group(device)
    finished = False
    try:
        trainer = Trainer(config, out_dir, device=device, backend=backend, precision=precision,
                          resume=resume, progress=progress, world=world, cuda_graph=cuda_graph,
                          compile=compile)
        trainer.train()
        finished = True
    finally:
        world.close(finished)
    return trainer


def launch_training(argv: List[str], nproc: int, config: TrainConfig, out_dir, device="auto",
                    backend: Optional[str] = None) -> None:
    """``fastfield train ARGV`` in ``nproc`` processes (``fastfield train --nproc N``: what
    torchrun would start, fastfield.train.launch), after checking that they can run: the
    devices, and a batch that splits evenly."""
    check_process_count(nproc, resolve_device(device, backend or DEFAULT_BACKEND))
    share_of_batch(config.batch_rays, World(0, nproc))
    command, skip = [], False
    for item in argv:  # the command line without --nproc, for every rank
        if skip or item.startswith("--nproc="):
            skip = False
            continue
        skip = item == "--nproc"
        if not skip:
            command.append(item)
    launch(["-m", "fastfield", *command], nproc, Path(out_dir))


def evaluate_run(run: TrainedRun, split: str, out_dir, progress: bool = True) -> Dict[str, Any]:
    """PSNR / SSIM of every view of ``split``, with the images and metrics.json in ``out_dir``
    (fastfield.train.evaluate, with the run's backend, precision and device)."""
    return evaluate(run.model, run.scene, split, out_dir, backend=run.backend,
                    precision=run.precision, device=run.device, progress=progress,
                    info={"run": str(run.run_dir), "step": run.step})


def path_video(run: TrainedRun, out_path, n_frames: Optional[int] = None, fps: float = 30,
               progress: bool = True) -> Tuple[Path, int]:
    """A video along the scene's render path, ``n_frames`` cameras evenly spaced along it (all
    of them when None), so a short video still goes all the way round. Returns the path
    written (a GIF beside ``out_path`` without an MP4 encoder) and the frame count."""
    path = run.scene.render_path
    n_frames = len(path) if n_frames is None else n_frames
    if not 1 <= n_frames <= len(path):
        raise ValueError(f"frames must be between 1 and {len(path)} (the frames of this scene's "
                         f"render path), got {n_frames}")
    frames = path[torch.linspace(0, len(path) - 1, n_frames).round().long()]
    with precision_context(run.precision, run.device):
        written = render_video(run.model, frames, out_path, fps=fps, backend=run.backend,
                               device=run.device, progress=progress,
                               **render_settings(run.scene, run.device))
    return written, n_frames


def export_mesh(run: TrainedRun, out_path, resolution: Optional[int] = None
                ) -> Tuple[np.ndarray, np.ndarray]:
    """The NeuS surface by marching cubes at ``resolution`` (fastfield.mesh.extract_mesh's
    default when None), in world coordinates, written as PLY with vertex normals. Returns
    (vertices [V, 3], faces [F, 3])."""
    if run.config.model != "neus":
        raise ValueError(f"{run.run_dir} trained a {run.config.model} model; meshes come from "
                         f"a NeuS run (an SDF): train a neus-* preset")
    vertices, faces = extract_mesh(run.model, resolution, scale_mat=run.scene.scale_mat,
                                   device=run.device)
    write_ply(out_path, vertices, faces, normals=vertex_normals(vertices, faces))
    return vertices, faces


def chamfer(run: TrainedRun, resolution: Optional[int], n_points: int, seed: int = 0
            ) -> Dict[str, Any]:
    """The Chamfer distance of a NeuS run's mesh to the built-in scene's exact surface (see
    fastfield.train.surface.score_builtin_surface)."""
    return score_builtin_surface(run.model, run.config, resolution, n_points, seed, run.device)
