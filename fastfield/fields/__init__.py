"""Fields: the networks a radiance-field method trains, as plain nn.Modules that map points (and
view directions) to what the renderer composites. They never sample or composite; the
pipelines in fastfield.render call them.

- ``NeRFField``: (points, view directions) -> (raw density, raw rgb); ``.density(points)``.
- ``BackgroundField``: NeRF++'s background, the NeRF field over the inverted sphere.
- ``SDFField``: points -> (sdf, feature); ``ColorField``: (points, normals, view directions,
  feature) -> rgb; ``sdf_and_gradient`` for normals.
- ``HashNeRFField`` (instant-ngp) and ``HashSDFField`` (instant-nsr-pl): the same signatures
  on a multi-resolution hash grid (``HashGrid``), configured by ``HashFieldConfig``;
  ``SphericalHarmonics`` encodes their view directions.
- ``NeRF`` (coarse + fine fields) and ``NeuS`` (SDF, colour, variance, background): the field
  sets a checkpoint holds, with their configurations; ``build_model(config)``.
"""
from torch import nn

from .background import BackgroundField, inverted_sphere
from .encoding import PositionalEncoding
from .hash_field import HashFieldConfig, HashNeRFField
from .hash_grid import HashGrid
from .hash_sdf import HashSDFField
from .nerf import NeRF, NeRFConfig, OccupancyConfig
from .neus import NeuS, NeuSConfig
from .radiance import MLPConfig, NeRFField
from .sdf import ColorConfig, ColorField, SDFConfig, SDFField, sdf_and_gradient
from .spherical_harmonics import SphericalHarmonics, spherical_harmonics

__all__ = ["PositionalEncoding", "HashGrid", "MLPConfig", "NeRFField", "BackgroundField", "inverted_sphere",
           "SDFConfig", "SDFField", "ColorConfig", "ColorField", "sdf_and_gradient",
           "NeRF", "NeRFConfig", "OccupancyConfig", "NeuS", "NeuSConfig", "build_model",
           "HashFieldConfig", "HashNeRFField", "HashSDFField", "SphericalHarmonics",
           "spherical_harmonics"]


def build_model(config) -> nn.Module:
    """The model (field set) a fastfield.config.TrainConfig describes."""
    if config.model == "nerf":
        return NeRF(config.nerf)
    if config.model == "neus":
        return NeuS(config.neus)
    raise ValueError(f"model must be 'nerf' or 'neus', got {config.model!r}")
