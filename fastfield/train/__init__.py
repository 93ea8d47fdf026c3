"""Training, evaluation and metrics for fastfield's NeRF and NeuS models.

``Trainer(config, out_dir, device).train()`` trains a ``fastfield.config.TrainConfig`` (its
optimiser updates are a ``StepRunner``'s); ``evaluate(model, scene)`` measures PSNR / SSIM per
view. Run folders are loaded back by fastfield.app.runs.load_run.
"""
from .checkpoint import CHECKPOINT_NAME, load_checkpoint, save_atomic
from .device import resolve_device
from .evaluate import evaluate, render_view
from .losses import loss_for, nerf_loss, neus_loss
from .metrics import mean_colour_psnr, psnr, ssim
from .precision import PRECISIONS, precision_context
from .scenes import load_config_scene, render_settings, split_note
from .schedule import cos_anneal_ratio, learning_rate
from .step import StepRunner, TrainingImages
from .trainer import Trainer

__all__ = ["Trainer", "StepRunner", "TrainingImages", "evaluate", "render_view", "psnr", "ssim",
           "mean_colour_psnr", "learning_rate", "cos_anneal_ratio", "resolve_device",
           "load_checkpoint", "save_atomic", "CHECKPOINT_NAME", "PRECISIONS",
           "precision_context", "load_config_scene", "render_settings", "split_note",
           "loss_for", "nerf_loss", "neus_loss"]
