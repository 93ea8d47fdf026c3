"""Training, evaluation and metrics for fastfield's NeRF and NeuS models.

``Trainer(config, out_dir, device).train()`` trains a ``fastfield.config.TrainConfig``;
``evaluate(model, scene)`` measures PSNR / SSIM per view; ``load_run(run_dir)`` brings a trained
run back (config, model, scene) for evaluation, videos and meshes.
"""
from .checkpoint import CHECKPOINT_NAME, load_checkpoint, save_atomic
from .device import resolve_device
from .evaluate import evaluate, render_view
from .metrics import mean_colour_psnr, psnr, ssim
from .precision import PRECISIONS, precision_context
from .run import TrainedRun, load_run
from .scenes import load_config_scene, render_settings, split_note
from .schedule import cos_anneal_ratio, learning_rate
from .trainer import Trainer

__all__ = ["Trainer", "evaluate", "render_view", "load_run", "TrainedRun", "psnr", "ssim",
           "mean_colour_psnr", "learning_rate", "cos_anneal_ratio", "resolve_device",
           "load_checkpoint", "save_atomic", "CHECKPOINT_NAME", "PRECISIONS",
           "precision_context", "load_config_scene", "render_settings", "split_note"]
