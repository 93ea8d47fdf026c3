"""Checkpoints: written atomically, read back with one-line errors for foreign or mismatched files.

A checkpoint is a dict saved with ``torch.save``:

    format, version      "fastfield-checkpoint", 1
    step                 optimiser updates done
    config               fastfield.config.to_dict(TrainConfig)
    model, optimizer     state dicts
    backend, precision   what the run trained with
    rng                  every random state the run draws from (see Trainer.state_dict)
    elapsed              training seconds so far
"""
from pathlib import Path
from typing import Any, Dict, List

import torch

from ..config import TrainConfig, from_dict, to_dict
from ..core.atomic import atomic_path, leftover_temporaries
from ..core.checks import first_line, message_lines

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT, VERSION = "fastfield-checkpoint", 1


def checkpoint_path(run_dir) -> Path:
    return Path(run_dir) / CHECKPOINT_NAME


def save_atomic(payload: Dict[str, Any], path) -> None:
    """``torch.save(payload)`` to ``path`` so that ``path`` always holds a complete file (see
    fastfield.core.atomic.atomic_path); if anything fails, the previous file is untouched."""
    with atomic_path(path) as temporary, open(temporary, "wb") as file:
        torch.save(payload, file)


def load_checkpoint(path) -> Dict[str, Any]:
    """The checkpoint dict at ``path`` (tensors on the CPU); ValueError when the file is missing,
    unreadable or not a fastfield checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, zip and runtime errors for bad files
        raise ValueError(f"{path}: not a readable checkpoint ({first_line(error, 200)})") \
            from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a fastfield checkpoint")
    if payload.get("version") != VERSION:
        raise ValueError(f"{path}: checkpoint version {payload.get('version')!r}, this "
                         f"fastfield reads version {VERSION}")
    return payload


def checkpoint_config(payload: Dict[str, Any]) -> TrainConfig:
    return from_dict(TrainConfig, payload["config"])


def config_differences(stored: Any, current: Any, prefix: str) -> List[str]:
    """The values that differ between two to_dict() trees, one line each:
    "<prefix>.<dotted key> <stored> in the checkpoint, <current> here"."""
    if isinstance(stored, dict) and isinstance(current, dict):
        found = []
        for key in sorted(set(stored) | set(current)):
            found += config_differences(stored.get(key), current.get(key), f"{prefix}.{key}")
        return found
    if isinstance(stored, (list, tuple)) and isinstance(current, (list, tuple)):
        stored, current = list(stored), list(current)
    return [] if stored == current else [f"{prefix} {stored!r} in the checkpoint, "
                                         f"{current!r} here"]


def check_compatible(payload: Dict[str, Any], config: TrainConfig, path) -> None:
    """ValueError (one line) when the checkpoint's model is not the one ``config`` builds."""
    stored_kind, kind = payload["config"].get("model"), config.model
    if stored_kind != kind:
        raise ValueError(f"{path} holds a {stored_kind} model but this run builds a {kind} "
                         f"model; use the matching preset or another output folder")
    # Read through from_dict, so fields added since the checkpoint was written (e.g.
    # nerf.sampler) take their defaults, which is what that checkpoint trained with.
    stored = to_dict(checkpoint_config(payload))[kind]
    current = to_dict(config)[kind]
    differences = config_differences(stored, current, kind)
    if differences:
        more = f" (and {len(differences) - 3} more)" if len(differences) > 3 else ""
        raise ValueError(f"{path} holds a different {kind} model: "
                         f"{'; '.join(differences[:3])}{more}")


def load_model_state(model: torch.nn.Module, state: Dict[str, torch.Tensor], path) -> None:
    """``model.load_state_dict(state)`` with a one-line error instead of torch's listing."""
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        # torch's first line only names the model; the next two say which keys or shapes differ.
        detail = " ".join(message_lines(error)[1:3]) or first_line(error)
        raise ValueError(f"{path}: the model weights do not fit this model ({detail[:300]})") \
            from None



def remove_partial_checkpoints(run_dir) -> List[Path]:
    """Delete the temporary files an interrupted checkpoint write left in ``run_dir`` (see
    core.atomic.leftover_temporaries); returns the paths removed."""
    partial = leftover_temporaries(checkpoint_path(run_dir))
    for path in partial:
        path.unlink(missing_ok=True)
    return partial
