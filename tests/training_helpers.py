"""Tiny training configurations for fast CPU tests of the trainer and the CLI."""
from typing import List

from fastfield.config import TrainConfig, apply_override, preset

# Sizes that keep a step at a few milliseconds while exercising every part of the pipeline:
# coarse + fine for NeRF; marching, grid updates and early termination for
# NeRF with an occupancy grid; up-sampling, the background model and the eikonal term for NeuS.
TINY = {
    "nerf-small": ["data.builtin_resolution=32", "batch_rays=32", "nerf.n_coarse=8",
                   "nerf.n_fine=8", "nerf.coarse.width=32", "nerf.coarse.depth=2",
                   "nerf.fine.width=32", "nerf.fine.depth=2", "log_every=2", "val_every=0",
                   "ckpt_every=0"],
    "nerf-small-occ": ["data.builtin_resolution=32", "batch_rays=32", "nerf.coarse.width=32",
                       "nerf.coarse.depth=2", "nerf.occupancy.resolution=16",
                       "nerf.occupancy.render_step_size=0.05", "nerf.occupancy.update_every=2",
                       "nerf.occupancy.warm_up=4", "log_every=2", "val_every=0",
                       "ckpt_every=0"],
    "neus-small": ["data.builtin_resolution=32", "batch_rays=16", "neus.n_samples=8",
                   "neus.n_importance=8", "neus.up_sample_steps=2", "neus.n_outside=4",
                   "neus.sdf.width=32", "neus.sdf.depth=2", "neus.sdf.skips=()",
                   "neus.sdf.feature_dim=16", "neus.color.width=32", "neus.color.depth=1",
                   "neus.background.width=32", "neus.background.depth=2",
                   "neus.background.skips=()", "warm_up=2", "anneal_end=4", "log_every=2",
                   "val_every=0", "ckpt_every=0"],
    # One hash field (instant-ngp's shape) and the hash SDF field, on small tables.
    "ngp-small": ["data.builtin_resolution=32", "batch_rays=32", "nerf.n_coarse=8",
                  "nerf.hash.n_levels=4", "nerf.hash.log2_table_size=10",
                  "nerf.hash.finest_resolution=64", "nerf.hash.hidden_width=16",
                  "log_every=2", "val_every=0", "ckpt_every=0"],
    "neus-ngp": ["data.builtin_resolution=32", "batch_rays=16", "neus.n_samples=8",
                 "neus.n_importance=8", "neus.up_sample_steps=2", "neus.n_outside=4",
                 "neus.hash.n_levels=4", "neus.hash.log2_table_size=10",
                 "neus.hash.finest_resolution=64", "neus.hash.hidden_width=16",
                 "neus.color.width=16", "neus.background.width=16", "warm_up=2",
                 "anneal_end=4", "log_every=2", "val_every=0", "ckpt_every=0"],
}


def tiny_overrides(name: str, iters: int, *extra: str) -> List[str]:
    """The --set assignments of a tiny ``name`` run of ``iters`` steps."""
    return [*TINY[name], f"iters={iters}", *extra]


def tiny_config(name: str, iters: int, *extra: str) -> TrainConfig:
    config = preset(name)
    for assignment in tiny_overrides(name, iters, *extra):
        apply_override(config, assignment)
    return config
