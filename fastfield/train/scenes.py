"""The scene a training config names, and how a model renders it."""
from typing import Any, Dict

import torch

from ..data import Scene, builtin_scene, load_scene, scene_format

# The NeRF-synthetic scenes and the size of their published test split (200 views each).
NERF_SYNTHETIC = ("chair", "drums", "ficus", "hotdog", "lego", "materials", "mic", "ship")
NERF_SYNTHETIC_TEST_VIEWS = 200


def load_config_scene(data) -> Scene:
    """The scene of a fastfield.config.DataConfig, with the options that apply to its format.

    ``data.path`` None is the built-in scene (``builtin_format``, ``builtin_resolution``).
    """
    options = {"blender": dict(half_res=data.half_res, white_background=data.white_background,
                               downscale=data.downscale),
               "llff": dict(factor=data.factor, llffhold=data.llffhold, ndc=data.ndc,
                            spherify=data.spherify),
               "neus": dict(use_masks=data.use_masks)}
    if data.path is None:
        if data.builtin_format not in ("blender", "neus"):
            raise ValueError(f"data.builtin_format must be 'blender' or 'neus', "
                             f"got {data.builtin_format!r}")
        return builtin_scene(kind=data.builtin_format, resolution=data.builtin_resolution,
                             **options[data.builtin_format])
    kind = scene_format(data.path)
    return load_scene(data.path, kind=kind, **options[kind])


def check_scene_for_model(scene: Scene, config) -> None:
    """ValueError when ``scene`` cannot train the model of ``config`` as configured."""
    if config.model == "neus" and scene.bounds != "sphere":
        raise ValueError(f"NeuS needs a scene normalised to the unit sphere (NeuS format with "
                         f"cameras_sphere.npz); scene {scene.name!r} is {scene.kind} "
                         f"(use data.builtin_format=neus for the built-in scene)")
    if config.model == "neus" and config.mask_weight > 0 and scene.split("train").masks is None:
        raise ValueError(f"mask_weight={config.mask_weight} needs object masks, but scene "
                         f"{scene.name!r} was loaded without (set data.use_masks=true or "
                         f"mask_weight=0)")


def render_settings(scene: Scene, device: torch.device) -> Dict[str, Any]:
    """near, far, ndc and background for fastfield.render / render_image on ``scene``.

    Fixed bounds (Blender 2/6, LLFF) come from the scene; "sphere" scenes (NeuS) leave near/far
    None, which bounds each ray by the unit sphere. Blender's background colour is composited
    behind the render as it was behind the training images; photos have none.
    """
    fixed = scene.bounds == "fixed"
    background = (None if scene.background is None
                  else torch.tensor(scene.background, dtype=torch.float32, device=device))
    return {"near": scene.near if fixed else None, "far": scene.far if fixed else None,
            "ndc": scene.ndc, "background": background}


def split_note(scene: Scene, split: str) -> str:
    """What the views of ``split`` are, to print next to any number measured on them."""
    n = len(scene.split(split))
    if scene.kind == "blender" and scene.name in NERF_SYNTHETIC and split == "test" \
            and n != NERF_SYNTHETIC_TEST_VIEWS:
        return (f"{n} of the {NERF_SYNTHETIC_TEST_VIEWS} test views of NeRF-synthetic "
                f"{scene.name}: a subset, so not directly comparable with published numbers "
                f"(which use all {NERF_SYNTHETIC_TEST_VIEWS})")
    if scene.kind == "neus":
        return (f"{n} {split} views that are also training views (NeuS validates on its "
                f"training images): not held out")
    if scene.kind == "llff":
        return f"{n} held-out views (LLFF hold-out: every llffhold-th image)"
    if scene.name == "builtin":
        return f"all {n} held-out {split} views of the built-in scene"
    return f"all {n} {split} views of scene {scene.name!r}"
