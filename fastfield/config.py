"""Training configurations and the named presets.

A preset is a plain ``TrainConfig``: print it (``fastfield train --preset nerf-lego
--print-config``), copy it, override any field from the command line with dotted keys
(``--set model.n_fine=64 --set lr=1e-3``).

Published configurations: ``nerf-lego`` and ``nerf-fern`` (nerf-pytorch's configs/lego.txt and
fern.txt), ``neus-womask`` and ``neus-wmask`` (NeuS's confs), ``nerf-lego-occ`` (nerfacc's
vanilla NeRF with an occupancy grid). Small CPU presets with sizes fixed so benchmarks stay
comparable: ``nerf-small``, ``nerf-small-occ`` and ``neus-small``.
"""
import copy
import dataclasses
import json
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

from .fields.hash_field import HashFieldConfig
from .fields.radiance import MLPConfig
from .fields.nerf import NeRFConfig, OccupancyConfig
from .fields.neus import NeuSConfig
from .fields.sdf import ColorConfig, SDFConfig


@dataclass
class DataConfig:
    """Which scene and how to load it (see fastfield.data and train.scenes.load_config_scene).

    Each option applies to the formats named beside it; setting one (away from its default)
    for a scene of another format is an error, never ignored.
    """
    path: Optional[str] = None       # None: the built-in scene
    builtin_format: str = "blender"  # built-in scene only: written as "blender" or "neus"
    builtin_resolution: int = 64     # built-in scene only
    # Every format: shrink the images by this integer factor from the scene's full resolution
    # (LLFF and nerfstudio captures read their images_N/ folders where present). None: LLFF's
    # images_8 (nerf-pytorch's default factor), full size for the other formats.
    downscale: Optional[int] = None
    half_res: bool = False           # Blender: nerf-pytorch's half_res (x2 on top of downscale)
    white_background: bool = True    # Blender
    llffhold: int = 8                # LLFF, captures: every llffhold-th image held out
    ndc: Optional[bool] = None       # LLFF, captures: None = LLFF on, captures when forward-facing
    spherify: bool = False           # LLFF
    use_masks: bool = True           # NeuS, captures with mask_path

    @staticmethod
    def migrate(data: Dict[str, Any]) -> Dict[str, Any]:
        """A data section written before ``downscale`` served every format (it had LLFF's
        ``factor`` beside a Blender-only ``downscale``, and ``ndc`` True by default),
        rewritten to the resolution and options that run actually used."""
        if "factor" not in data:
            return data
        from .data import scene_format  # the data layer never imports the config

        data = dict(data)
        factor = data.pop("factor")
        if data.get("path") is None:
            kind = data.get("builtin_format", "blender")
        else:
            try:
                kind = scene_format(data["path"])
            except ValueError:
                kind = None  # the folder is gone: loading the scene will say so
        if kind == "llff":
            data["downscale"] = factor
        else:
            data["ndc"] = None  # ndc applied to LLFF only
            if kind == "neus" or data.get("downscale") == 1:
                data["downscale"] = None  # full size (the NeuS loader ignored downscale then)
        return data


@dataclass
class TrainConfig:
    model: str                       # "nerf" or "neus"
    nerf: Optional[NeRFConfig] = None
    neus: Optional[NeuSConfig] = None
    data: DataConfig = field(default_factory=DataConfig)
    iters: int = 200_000
    batch_rays: int = 1024
    batching: str = "one_image"      # "one_image" (nerf-pytorch no_batching, NeuS) or "all_images"
    precrop_iters: int = 0
    precrop_frac: float = 0.5
    lr: float = 5e-4
    lr_schedule: str = "exponential"  # exponential (nerf-pytorch), cosine (NeuS), multistep, ngp
    lr_decay_steps: int = 500_000     # exponential: lr * 0.1 ** (step / lr_decay_steps)
    warm_up: int = 0                  # cosine, ngp: linear warm-up steps
    lr_alpha: float = 0.05            # cosine: final lr factor
    # multistep (nerfacc): lr x lr_gamma at each milestone, given as a fraction of iters
    lr_milestones: Tuple[float, ...] = (0.5, 0.75, 5 / 6, 0.9)
    lr_gamma: float = 0.33
    # ngp (instant-ngp's ExponentialDecay): lr * lr_decay_base ** ((step - lr_decay_start)
    # // lr_decay_interval) from lr_decay_start on (see fastfield.train.schedule).
    lr_decay_start: int = 20_000
    lr_decay_interval: int = 10_000
    lr_decay_base: float = 0.33
    adam_eps: float = 1e-8
    adam_betas: Tuple[float, float] = (0.9, 0.999)
    # L2 on the network weights only (instant-ngp's l2_reg); hash tables never decay.
    weight_decay: float = 0.0
    # A uniform random background colour per ray behind the training images (instant-ngp),
    # recomposited from their alpha: scenes with alpha only (Blender).
    random_background: bool = False
    anneal_end: int = 0               # NeuS cos_anneal_ratio rises 0 -> 1 over this many steps
    eikonal_weight: float = 0.1
    mask_weight: float = 0.0
    log_every: int = 100
    val_every: int = 5_000
    ckpt_every: int = 10_000
    seed: int = 0
    # Occupancy sampler only: rays per step adapt towards this many marched samples (nerfacc's
    # target_sample_batch_size), from the previous step's count kept on the device; batch_rays
    # is then the upper bound of the ray buffer. None: batch_rays rays every step.
    target_samples: Optional[int] = None


def _small_mlp(in_dim: int = 3) -> MLPConfig:
    return MLPConfig(depth=4, width=128, skips=(2,), pos_frequencies=10, dir_frequencies=4,
                     in_dim=in_dim)


def _presets() -> Dict[str, TrainConfig]:
    lego = TrainConfig(
        model="nerf", nerf=NeRFConfig(n_coarse=64, n_fine=128),
        data=DataConfig(half_res=True, white_background=True),
        iters=200_000, batch_rays=1024, batching="one_image", precrop_iters=500,
        precrop_frac=0.5, lr=5e-4, lr_schedule="exponential", lr_decay_steps=500_000)
    fern = TrainConfig(
        model="nerf", nerf=NeRFConfig(n_coarse=64, n_fine=64, raw_noise_std=1.0),
        data=DataConfig(downscale=8, llffhold=8),
        iters=200_000, batch_rays=1024, batching="all_images", lr=5e-4,
        lr_schedule="exponential", lr_decay_steps=250_000)
    neus_womask = TrainConfig(
        model="neus", neus=NeuSConfig(n_samples=64, n_importance=64, up_sample_steps=4,
                                      n_outside=32),
        data=DataConfig(use_masks=False),
        iters=300_000, batch_rays=512, batching="one_image", lr=5e-4, lr_schedule="cosine",
        warm_up=5_000, lr_alpha=0.05, anneal_end=50_000, eikonal_weight=0.1, mask_weight=0.0,
        val_every=10_000)
    neus_wmask = dataclasses.replace(
        neus_womask, neus=NeuSConfig(n_samples=64, n_importance=64, up_sample_steps=4,
                                     n_outside=0),
        data=DataConfig(use_masks=True), anneal_end=0, mask_weight=0.1)
    nerf_small = TrainConfig(
        model="nerf", nerf=NeRFConfig(coarse=_small_mlp(), fine=_small_mlp(), n_coarse=32,
                                      n_fine=64),
        data=DataConfig(), iters=2_000, batch_rays=512, batching="all_images", lr=5e-4,
        lr_schedule="exponential", lr_decay_steps=500_000, log_every=50, val_every=500,
        ckpt_every=500)
    neus_small = TrainConfig(
        model="neus",
        neus=NeuSConfig(sdf=SDFConfig(depth=4, width=128, skips=(2,), feature_dim=128),
                        color=ColorConfig(depth=2, width=128),
                        background=MLPConfig(depth=4, width=64, skips=(2,), in_dim=4),
                        n_samples=32, n_importance=32, up_sample_steps=2, n_outside=16),
        data=DataConfig(builtin_format="neus", use_masks=False), iters=2_000, batch_rays=256,
        batching="one_image", lr=5e-4, lr_schedule="cosine", warm_up=100, lr_alpha=0.05,
        anneal_end=500, eikonal_weight=0.1, mask_weight=0.0, log_every=50, val_every=500,
        ckpt_every=500)
    return {"nerf-lego": lego, "nerf-fern": fern, "neus-womask": neus_womask,
            "neus-wmask": neus_wmask, "nerf-small": nerf_small, "neus-small": neus_small}


def _occupancy_presets() -> Dict[str, TrainConfig]:
    """NeRF with an occupancy grid (nerfacc's vanilla NeRF): one network, no fine pass."""
    lego_occ = TrainConfig(
        model="nerf",
        nerf=NeRFConfig(coarse=MLPConfig(), fine=None, n_fine=0, sampler="occupancy",
                        occupancy=OccupancyConfig(resolution=128, levels=1,
                                                  aabb=(-1.5, -1.5, -1.5, 1.5, 1.5, 1.5))),
        data=DataConfig(half_res=False, white_background=True),
        iters=50_000, batch_rays=1 << 16, target_samples=1 << 18, batching="all_images",
        lr=5e-4, lr_schedule="multistep", log_every=100, val_every=5_000, ckpt_every=5_000)
    # The built-in scene: every primitive lies within 0.85 of the origin of its normalised
    # frame, world = 1.7 x normalised + (0.3, -0.2, 0.5) (data/builtin/files.py SCALE_MAT),
    # so a box of half-size 1.5 about (0.3, -0.2, 0.5) holds it (tests check this). A step of
    # 0.025 is a quarter of a 32 x 32 view's pixel at the object; with one network evaluated at
    # ~15 samples per ray, 512 rays and lr 2e-3 reached nerf-small's PSNR soonest (RESULTS.md).
    small_occ = TrainConfig(
        model="nerf",
        nerf=NeRFConfig(coarse=_small_mlp(), fine=None, n_fine=0, sampler="occupancy",
                        occupancy=OccupancyConfig(resolution=32, levels=1, warm_up=64,
                                                  update_every=8, render_step_size=0.025,
                                                  aabb=(-1.2, -1.7, -1.0, 1.8, 1.3, 2.0))),
        data=DataConfig(), iters=2_000, batch_rays=512, batching="all_images", lr=2e-3,
        lr_schedule="exponential", lr_decay_steps=500_000, log_every=50, val_every=500,
        ckpt_every=500)
    return {"nerf-lego-occ": lego_occ, "nerf-small-occ": small_occ}



def _hash_presets() -> Dict[str, TrainConfig]:
    """instant-ngp's recipe (hash-grid fields, Adam lr 1e-2 / eps 1e-15 / betas 0.9, 0.99, a
    random background per ray) and instant-nsr-pl's for NeuS.

    The NeRF presets march one hash field through an occupancy grid (``sampler="occupancy"``):
    constant steps in occupied cells only, early termination, packed compositing.
    """
    lego_box = (-1.5, -1.5, -1.5, 1.5, 1.5, 1.5)
    ngp = dict(lr=1e-2, adam_eps=1e-15, adam_betas=(0.9, 0.99), weight_decay=1e-6,
               lr_schedule="ngp", random_background=True, batching="all_images")
    ngp_lego = TrainConfig(
        model="nerf",
        nerf=NeRFConfig(fine=None, n_fine=0, field="hash", hash=HashFieldConfig(aabb=lego_box),
                        sampler="occupancy",
                        occupancy=OccupancyConfig(resolution=128, aabb=lego_box)),
        data=DataConfig(downscale=1, half_res=False, white_background=True),
        # instant-ngp's 2^18 samples per step; batch_rays is the ray buffer the count adapts in.
        iters=20_000, batch_rays=1 << 16, target_samples=1 << 18, lr_decay_start=10_000,
        lr_decay_interval=5_000, val_every=5_000, ckpt_every=5_000, **ngp)
    # The built-in scene's objects lie within 1.4 of (0.3, -0.2, 0.5) in its Blender frame.
    builtin_box = (-1.2, -1.7, -1.0, 1.8, 1.3, 2.0)
    ngp_small = TrainConfig(
        model="nerf",
        nerf=NeRFConfig(fine=None, n_fine=0, field="hash",
                        hash=HashFieldConfig(log2_table_size=15, finest_resolution=256,
                                             aabb=builtin_box),
                        sampler="occupancy",  # the grid of nerf-small-occ (same box and step)
                        occupancy=OccupancyConfig(resolution=32, warm_up=64, update_every=8,
                                                  render_step_size=0.025, aabb=builtin_box)),
        data=DataConfig(), iters=1_000, batch_rays=512, lr_decay_start=500,
        lr_decay_interval=250, log_every=50, val_every=500, ckpt_every=500, **ngp)
    neus_ngp = TrainConfig(
        model="neus",
        neus=NeuSConfig(sdf=SDFConfig(init_radius=0.5), color=ColorConfig(depth=2, width=64),
                        background=MLPConfig(depth=2, width=64, skips=(), in_dim=4),
                        n_samples=32, n_importance=32, up_sample_steps=2, n_outside=16,
                        field="hash",
                        hash=HashFieldConfig(log2_table_size=15, finest_resolution=512,
                                             aabb=(-1.0, -1.0, -1.0, 1.0, 1.0, 1.0))),
        data=DataConfig(builtin_format="neus", use_masks=False), iters=1_000, batch_rays=256,
        batching="one_image", lr=1e-2, adam_eps=1e-15, adam_betas=(0.9, 0.99),
        lr_schedule="cosine", warm_up=50, lr_alpha=0.05, anneal_end=250, eikonal_weight=0.1,
        log_every=50, val_every=500, ckpt_every=500)
    return {"ngp-lego": ngp_lego, "ngp-small": ngp_small, "neus-ngp": neus_ngp}



PRESETS = {**_presets(), **_occupancy_presets(), **_hash_presets()}


def preset(name: str) -> TrainConfig:
    """A fresh copy of the named preset; ValueError lists the accepted names."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; accepted: {', '.join(sorted(PRESETS))}")
    return copy.deepcopy(PRESETS[name])


def to_dict(config: Any) -> Dict[str, Any]:
    return dataclasses.asdict(config)


def to_json(config: Any) -> str:
    return json.dumps(to_dict(config), indent=2)


def _coerce(value: str, annotation, key: str):
    """Parse a command-line string as the field's declared type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Union:  # Optional[X]
        if value.lower() in ("none", "null"):
            return None
        return _coerce(value, next(a for a in args if a is not type(None)), key)
    if annotation is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{key}: expected true or false, got {value!r}")
    if annotation in (int, float, str):
        try:
            return annotation(float(value)) if annotation is int and "e" in value.lower() \
                else annotation(value)
        except ValueError:
            raise ValueError(f"{key}: expected {annotation.__name__}, got {value!r}") from None
    if origin in (tuple, list, typing.Tuple, typing.List):
        items = [v for v in value.strip("()[] ").split(",") if v.strip()]
        return tuple(_coerce(v.strip(), args[0], key) for v in items)
    raise ValueError(f"{key}: cannot set a field of type {annotation} from the command line")


# Options that were folded into others: the override names the one to use instead.
RENAMED = {"data.factor": "data.downscale (one resolution option for every format; LLFF reads "
                          "its images_N folder)"}


def apply_override(config: Any, assignment: str) -> None:
    """Apply "dotted.key=value" to a (nested) dataclass config in place."""
    if "=" not in assignment:
        raise ValueError(f"override {assignment!r} must look like key=value (e.g. lr=1e-3)")
    key, value = assignment.split("=", 1)
    if key.strip() in RENAMED:
        raise ValueError(f"override {key.strip()!r}: that option is now "
                         f"{RENAMED[key.strip()]}")
    target = config
    parts = key.strip().split(".")
    for depth, name in enumerate(parts):
        if not dataclasses.is_dataclass(target):
            raise ValueError(f"override {key!r}: {'.'.join(parts[:depth])} is not a section")
        fields = {f.name: f for f in dataclasses.fields(target)}
        if name not in fields:
            raise ValueError(f"override {key!r}: unknown field {name!r}; accepted: "
                             f"{', '.join(sorted(fields))}")
        hints = typing.get_type_hints(type(target))
        if depth == len(parts) - 1:
            if dataclasses.is_dataclass(getattr(target, name)):
                raise ValueError(f"override {key!r} names a section; set one of its fields")
            setattr(target, name, _coerce(value.strip(), hints[name], key))
            return
        target = getattr(target, name)
        if target is None:
            raise ValueError(f"override {key!r}: section {name!r} is not used by this preset")


def from_dict(cls, data: Dict[str, Any]):
    """Rebuild a (nested) dataclass from to_dict()'s output (checkpoints store configs so).

    A class with a ``migrate`` static method gets the chance to rewrite data written by an
    older fastfield first."""
    hints = typing.get_type_hints(cls)
    if hasattr(cls, "migrate"):
        data = cls.migrate(data)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value, annotation = data[f.name], hints[f.name]
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        target = inner[0] if typing.get_origin(annotation) is Union and inner else annotation
        if dataclasses.is_dataclass(target) and isinstance(value, dict):
            value = from_dict(target, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def describe(names: Optional[List[str]] = None) -> str:
    """One line per preset, for --help and errors."""
    lines = []
    for name in names or sorted(PRESETS):
        cfg = PRESETS[name]
        lines.append(f"{name}: {cfg.model}, {cfg.iters} iters, {cfg.batch_rays} rays/step")
    return "\n".join(lines)
