"""The scene a training config names, and how a model renders it."""
import dataclasses
from typing import Any, Dict, Optional

import torch

from ..data import Scene, builtin_scene, load_scene, scene_format

# The NeRF-synthetic scenes and the size of their published test split (200 views each).
NERF_SYNTHETIC = ("chair", "drums", "ficus", "hotdog", "lego", "materials", "mic", "ship")
NERF_SYNTHETIC_TEST_VIEWS = 200


# The DataConfig options each format's loader honours (besides path and the builtin_* pair,
# which choose the scene). Setting any other option away from its default is an error.
FORMAT_OPTIONS = {"blender": ("downscale", "half_res", "white_background"),
                  "llff": ("downscale", "llffhold", "ndc", "spherify"),
                  "neus": ("downscale", "use_masks"),
                  "nerfstudio": ("downscale", "llffhold", "ndc", "use_masks")}
FORMAT_NAMES = {"blender": "Blender", "llff": "LLFF", "neus": "NeuS",
                "nerfstudio": "nerfstudio (transforms.json) capture"}
SCENE_CHOICE = ("path", "builtin_format", "builtin_resolution")


def load_config_scene(data, model: Optional[str] = None) -> Scene:
    """The scene of a fastfield.config.DataConfig, with the options that apply to its format.

    ``data.path`` None is the built-in scene (``builtin_format``, ``builtin_resolution``). An
    option set for a format whose loader cannot honour it is a ValueError naming it (see
    FORMAT_OPTIONS). ``model`` "neus" loads a nerfstudio capture in its unit-sphere frame
    (cameras_sphere.npz); other formats come as they are.
    """
    if data.path is None:
        if data.builtin_format not in ("blender", "neus"):
            raise ValueError(f"data.builtin_format must be 'blender' or 'neus', "
                             f"got {data.builtin_format!r}")
        kind = data.builtin_format
    else:
        kind = scene_format(data.path)
    options = format_options(data, kind)
    if kind == "nerfstudio":
        options["unit_sphere"] = model == "neus"
    if data.path is None:
        return builtin_scene(kind=kind, resolution=data.builtin_resolution, **options)
    return load_scene(data.path, kind=kind, **options)


def format_options(data, kind: str) -> Dict[str, Any]:
    """The loader keywords of ``data`` for format ``kind``; ValueError for a set option that
    the format does not take. Options that are None (downscale, ndc) are left to the loader's
    default."""
    defaults = type(data)()
    for option in (f.name for f in dataclasses.fields(data)):
        if option in SCENE_CHOICE or option in FORMAT_OPTIONS[kind]:
            continue
        value = getattr(data, option)
        if value != getattr(defaults, option):
            takers = [FORMAT_NAMES[k] for k, names in FORMAT_OPTIONS.items() if option in names]
            raise ValueError(f"data.{option}={value} applies to {' and '.join(takers)} scenes; "
                             f"{_scene_label(data)} is {FORMAT_NAMES[kind]} (unset the option)")
    return {option: getattr(data, option) for option in FORMAT_OPTIONS[kind]
            if getattr(data, option) is not None}


def _scene_label(data) -> str:
    return "the built-in scene" if data.path is None else f"scene {data.path}"


def check_scene_for_model(scene: Scene, config) -> None:
    """ValueError when ``scene`` cannot train the model of ``config`` as configured."""
    if config.model == "neus" and scene.bounds != "sphere":
        raise ValueError(f"NeuS needs a scene normalised to the unit sphere (NeuS format with "
                         f"cameras_sphere.npz, or a fastfield process capture); scene "
                         f"{scene.name!r} is {scene.kind} "
                         f"(use data.builtin_format=neus for the built-in scene)")
    if config.model == "neus" and config.mask_weight > 0 and scene.split("train").masks is None:
        raise ValueError(f"mask_weight={config.mask_weight} needs object masks, but scene "
                         f"{scene.name!r} was loaded without (set data.use_masks=true or "
                         f"mask_weight=0)")
    if config.random_background and (scene.background is None
                                     or scene.split("train").masks is None):
        raise ValueError(f"random_background=true needs training images with alpha (a Blender "
                         f"scene); scene {scene.name!r} ({scene.kind}) has none "
                         f"(set random_background=false)")


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
    if scene.kind == "neus" or (scene.kind == "nerfstudio" and scene.bounds == "sphere"):
        return (f"{n} {split} views that are also training views (NeuS validates on its "
                f"training images): not held out")
    if scene.kind in ("llff", "nerfstudio"):
        return f"{n} held-out views (LLFF hold-out: every llffhold-th image)"
    if scene.name == "builtin":
        return f"all {n} held-out {split} views of the built-in scene"
    return f"all {n} {split} views of scene {scene.name!r}"
