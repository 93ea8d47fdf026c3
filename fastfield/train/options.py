"""Checks of a TrainConfig's training options (the loop's, the schedule's and the optimiser's)
before a run starts: each bad value is a ValueError that names the field."""
from .schedule import learning_rate


def check_training_config(config) -> None:
    """ValueError naming the field for settings the loop cannot run with."""
    for name in ("iters", "log_every"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    if config.lr_schedule == "exponential" and config.lr_decay_steps <= 0:
        raise ValueError(f"lr_decay_steps must be > 0, got {config.lr_decay_steps}")
    if config.lr_schedule == "ngp" and config.lr_decay_interval <= 0:
        raise ValueError(f"lr_decay_interval must be > 0, got {config.lr_decay_interval}")
    if len(config.adam_betas) != 2 or not all(0.0 <= b < 1.0 for b in config.adam_betas):
        raise ValueError(f"adam_betas must be two numbers in [0, 1), got {config.adam_betas}")
    if config.adam_eps <= 0.0 or config.weight_decay < 0.0:
        raise ValueError(f"adam_eps must be > 0 and weight_decay >= 0, got "
                         f"{config.adam_eps} and {config.weight_decay}")
    learning_rate(config, 0)  # ValueError for an unknown schedule
    if config.target_samples is not None:
        if config.target_samples < 1:
            raise ValueError(f"target_samples must be >= 1 or None, got {config.target_samples}")
        if config.model != "nerf" or config.nerf is None or config.nerf.sampler != "occupancy":
            raise ValueError("target_samples adapts the batch of the occupancy sampler only; "
                             "set nerf.sampler=occupancy or target_samples=None")
