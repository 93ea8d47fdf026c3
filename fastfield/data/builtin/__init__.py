"""The built-in scene: its shapes (shapes.py: the exact SDF and shading), its renderer
(renderer.py: sphere tracing) and its files (files.py: the Blender and NeuS writers,
``builtin_scene``). The frames and constants are files.py's."""
from .files import (CAMERA_ANGLE_X, CAMERA_DISTANCE, CAMERA_Z_RANGE, GENERATOR_VERSION,
                    NEUS_BACKGROUND, SCALE_MAT, builtin_scene, default_cache_dir,
                    write_builtin_scene)
from .renderer import render_views, sphere_trace
from .shapes import AMBIENT, BOUNDING_RADIUS, LIGHT_DIRECTION, BuiltinShapes

__all__ = ["BuiltinShapes", "sphere_trace", "render_views", "builtin_scene",
           "write_builtin_scene", "default_cache_dir", "SCALE_MAT", "CAMERA_DISTANCE",
           "CAMERA_ANGLE_X", "CAMERA_Z_RANGE", "NEUS_BACKGROUND", "GENERATOR_VERSION",
           "BOUNDING_RADIUS", "LIGHT_DIRECTION", "AMBIENT"]
