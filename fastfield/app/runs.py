"""Run folders: a finished (or interrupted) training run, loaded back from its folder (or taken
from the Trainer that just ran it), for the commands that evaluate, render and mesh it."""
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import torch
from torch import nn

from ..config import TrainConfig
from ..data.scene import Scene
from ..fields import build_model
from ..train import Trainer
from ..train.checkpoint import (checkpoint_config, checkpoint_path, load_checkpoint,
                                load_model_state)
from ..train.device import resolve_device
from ..train.precision import resolve_precision
from ..train.scenes import load_config_scene


@dataclass
class TrainedRun:
    """A run folder's config, model (weights loaded, on ``device``, in eval mode) and scene.

    ``backend`` and ``precision`` are those it trained with unless overridden when loading.
    """

    run_dir: Path
    config: TrainConfig
    model: nn.Module
    scene: Scene
    step: int
    backend: str
    precision: str
    device: torch.device

    @classmethod
    def from_trainer(cls, trainer: Trainer) -> "TrainedRun":
        """The run a Trainer holds (its model as trained, on its device)."""
        return cls(trainer.out_dir, trainer.config, trainer.model, trainer.scene, trainer.step,
                   trainer.backend, trainer.precision, trainer.device)


def load_run(run_dir, device="auto", backend: Optional[str] = None,
             precision: Optional[str] = None, load_scene: bool = True) -> TrainedRun:
    """Load ``run_dir/checkpoint.pt``, rebuild its model and (``load_scene``) its scene.

    ValueError (one line) for a missing folder or checkpoint, or a file that is not one.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"run folder {run_dir} not found (expected the --out folder of "
                         f"'fastfield train')")
    path = checkpoint_path(run_dir)
    if not path.is_file():
        raise ValueError(f"{run_dir} holds no {path.name} (expected the --out folder of "
                         f"'fastfield train')")
    payload: Dict[str, Any] = load_checkpoint(path)
    config = checkpoint_config(payload)
    backend = backend or payload["backend"]
    device = resolve_device(device, backend)
    precision, _ = resolve_precision(precision, payload["precision"], device)
    model = build_model(config)
    load_model_state(model, payload["model"], path)
    model.to(device).eval()
    scene = load_config_scene(config.data, config.model) if load_scene else None
    return TrainedRun(run_dir, config, model, scene, int(payload["step"]), backend, precision,
                      device)
