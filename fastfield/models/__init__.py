"""Radiance-field models: NeRF (density) and NeuS (SDF). Each has ``render_rays`` (driven by
fastfield.render with an op backend) and ``loss``."""
from torch import nn

from .mlp import MLPConfig, NeRFMLP
from .nerf import NeRF, NeRFConfig
from .neus import ColorConfig, NeuS, NeuSConfig, SDFConfig

__all__ = ["MLPConfig", "NeRFMLP", "NeRF", "NeRFConfig", "NeuS", "NeuSConfig", "SDFConfig",
           "ColorConfig", "build_model"]


def build_model(config) -> nn.Module:
    """The model a fastfield.config.TrainConfig describes."""
    if config.model == "nerf":
        return NeRF(config.nerf)
    if config.model == "neus":
        return NeuS(config.neus)
    raise ValueError(f"model must be 'nerf' or 'neus', got {config.model!r}")
