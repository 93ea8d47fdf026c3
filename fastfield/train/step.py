"""One training step as one object: draw pixel ids -> rays -> render -> loss -> backward ->
optimiser update.

``StepRunner(step)`` runs update ``step`` and returns its metrics; the run around it (logging,
validation, checkpoints, Ctrl-C) is fastfield.train.trainer's. A runner that captures the step
in a CUDA graph or splits it over processes replaces this one behind the same call, and owns
the same state: ``model``, ``optimizer``, ``pixels`` (the PixelSampler) and ``generator``
(every random draw of a step), which is what a checkpoint saves.
"""
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

import torch
from torch import Tensor, nn

from ..fields import HashGrid
from ..fields.encoding import positional_encoding_kernels
from ..render import camera_rays, pipeline_for, render
from ..render.backend import uses_kernels
from .adaptive import AdaptiveRayCount
from .batching import PixelSampler
from .losses import LossFn
from .precision import autocast_context, matmul_context


@dataclass
class TrainingImages:
    """The training split on the training device: colours are gathered per step by pixel id,
    so memory grows with the images, never with rays.

    images: [n, H, W, 3] uint8; masks: [n, H, W] uint8 (NeuS with a mask loss) or None;
    cameras: the n cameras (a fastfield.data.Camera).
    alphas: [n, H, W] uint8 alpha the images were composited with over the scene's background,
        or None; given, each ray gets a uniform random background (instant-ngp).
    """
    images: Tensor
    masks: Optional[Tensor]
    cameras: Any
    alphas: Optional[Tensor] = None


def over_background(rgb: Tensor, alpha: Tensor, background_was: Tensor, background: Tensor
                    ) -> Tensor:
    """Colours composited over ``background_was`` moved onto ``background``:
    rgb + (background - background_was) (1 - alpha). rgb [..., 3], alpha [..., 1]."""
    return rgb + (background - background_was) * (1.0 - alpha)


def make_optimizer(model: nn.Module, config) -> torch.optim.Adam:
    """Adam with the config's eps and betas; ``weight_decay`` on the networks' parameters only
    (hash tables, HashGrid ``params``, never decay: most entries see no gradient in a step)."""
    table_ids = {id(m.params) for m in model.modules() if isinstance(m, HashGrid)}
    tables = [p for p in model.parameters() if id(p) in table_ids]
    networks = [p for p in model.parameters() if id(p) not in table_ids]
    groups = [{"params": networks, "weight_decay": config.weight_decay}]
    if tables:
        groups.append({"params": tables, "weight_decay": 0.0})
    return torch.optim.Adam(groups, lr=config.lr, eps=config.adam_eps,
                            betas=tuple(config.adam_betas))


class DeviceSchedule:
    """The per-step values as 0-d tensors on the training device: lr (float32), NeuS's
    cos_anneal_ratio (float32) and the camera of a one-image step (int64)."""

    def __init__(self, device: torch.device):
        self.lr = torch.zeros((), device=device)
        self.cos_anneal_ratio = torch.zeros((), device=device)
        self.camera = torch.zeros((), dtype=torch.long, device=device)


class StepRunner:
    """One optimiser update of ``model`` per call: ``runner(step) -> {name: 0-d tensor}``.

    ``step`` is the number of updates done before this one (it picks the learning rate, NeuS's
    cos_anneal_ratio and nerf-pytorch's precrop). Nothing in a step reads a value back from
    the device (no .item(), no boolean indexing, no data-dependent shapes): on a GPU the host
    never waits inside a step, and the metrics stay device tensors.

    Args:
        model, optimizer: what is trained, and how.
        pixels: draws each step's pixel ids (camera, row, col).
        data: the training images, masks and cameras.
        loss: the method's loss (fastfield.train.losses.loss_for).
        learning_rate, cos_anneal_ratio: step -> value (fastfield.train.schedule).
        render_settings: near, far, ndc and background of the scene (scenes.render_settings).
        backend, precision, device: as the Trainer's.
        generator: every random draw of a step (pixels, jitter, noise, PDF quantiles).
        target_samples: occupancy sampler only: adapt the rays per step towards this many
            marched samples (fastfield.train.adaptive; ``pixels`` draws the ray buffer).

    A pipeline with an occupancy grid (``update_grid``) has its grid refreshed from the field at
    the start of every step (the grid acts every ``update_every`` steps); its steps report
    ``samples_per_ray`` (composited samples per rendered ray), ``rays`` and ``dropped_rays``
    (rays that did not fit the sample buffer, summed by the Trainer and reported).
        reduce_gradients: called between backward and the optimiser update (a multi-process
            run averages the gradients over its ranks there: distributed.GradientReducer).
        perturb: training-time sampling (jitter, density noise); False makes a step a
            deterministic function of its rays (tests compare steps so).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, pixels: PixelSampler,
                 data: TrainingImages, loss: LossFn, *, learning_rate: Callable[[int], float],
                 cos_anneal_ratio: Callable[[int], float], render_settings: Dict[str, Any],
                 backend: str, precision: str, device: torch.device,
                 generator: torch.Generator, target_samples: Optional[int] = None,
                 reduce_gradients: Optional[Callable[[], None]] = None, perturb: bool = True):
        self.model, self.optimizer, self.pixels, self.data = model, optimizer, pixels, data
        self.loss, self.learning_rate, self.cos_anneal_ratio = loss, learning_rate, cos_anneal_ratio
        self.render_settings = render_settings
        self.backend, self.precision, self.device = backend, precision, device
        self.generator = generator
        self.reduce_gradients, self.perturb = reduce_gradients, perturb
        self.schedule: Optional[DeviceSchedule] = None  # see use_device_schedule
        self.pipeline = pipeline_for(model)
        self.adaptive = None
        if target_samples is not None:
            if not hasattr(self.pipeline, "update_grid"):
                raise ValueError("target_samples adapts the batch of the occupancy sampler; "
                                 f"{type(self.pipeline).__name__} samples a fixed number per "
                                 "ray (set nerf.sampler=occupancy or target_samples=None)")
            self.adaptive = AdaptiveRayCount(target_samples, pixels.batch_rays,
                                             self.pipeline.points_per_ray(), device)
            self.pipeline.capacity = self.adaptive.capacity

    def state_dict(self) -> Dict[str, Any]:
        """What a step carries over to the next besides the model, optimiser and random
        streams: the adaptive batch's ray count."""
        return {} if self.adaptive is None else {"adaptive": self.adaptive.state_dict()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if self.adaptive is not None and "adaptive" in state:
            self.adaptive.load_state_dict(state["adaptive"])

    def __call__(self, step: int) -> Dict[str, Tensor]:
        self.set_schedule(step)
        return self.run_step(step)

    def use_device_schedule(self) -> None:
        """From now on the learning rate, NeuS's cos_anneal_ratio and a one-image step's camera
        live in 0-d device tensors that ``set_schedule`` updates in place, so a step captured
        in a CUDA graph (train.graph) reads each replay's values. Same step code, same
        results as the eager path (tests/test_graph.py)."""
        self.schedule = DeviceSchedule(self.device)
        for group in self.optimizer.param_groups:
            group["lr"] = self.schedule.lr

    def set_schedule(self, step: int) -> None:
        """Set the values of update ``step`` that change from step to step (host side)."""
        lr = self.learning_rate(step)
        if self.schedule is None:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            return
        self.schedule.lr.fill_(lr)
        self.schedule.cos_anneal_ratio.fill_(self.cos_anneal_ratio(step))
        camera = self.pixels.image_for(step)
        if camera is not None:
            self.schedule.camera.fill_(camera)

    def run_step(self, step: int) -> Dict[str, Tensor]:
        """The step itself, after ``set_schedule(step)``: what a CUDA graph captures."""
        schedule = self.schedule
        # TF32 covers the backward's matrix products too; autocast only the forward pass.
        with matmul_context(self.precision, self.device):
            pixels = (self.pixels.sample(step, self.generator) if schedule is None  # [B, 3]
                      else self.pixels.sample(step, self.generator, schedule.camera))
            camera, row, col = pixels.unbind(-1)
            target = self.data.images[camera, row, col].float() / 255.0         # [B, 3]
            masks = self.data.masks
            mask = None if masks is None else masks[camera, row, col].float() / 255.0
            settings = self.render_settings
            if self.data.alphas is not None:
                # Each target recomposited over a random colour (instant-ngp).
                alpha = self.data.alphas[camera, row, col].float()[:, None] / 255.0  # [B, 1]
                background = torch.rand(target.shape, generator=self.generator,
                                        device=target.device)                      # [B, 3]
                target = over_background(target, alpha, settings["background"], background)
                settings = {**settings, "background": background}
            rays = camera_rays(self.model, self.data.cameras, pixels, self.backend)
            if hasattr(self.pipeline, "update_grid"):
                # The grid reads the field outside render(): its encodings follow the backend.
                with positional_encoding_kernels(uses_kernels(self.backend)):
                    self.pipeline.update_grid(step, self.generator)
            if self.adaptive is not None:
                active = self.adaptive.active()
                near, far = self.adaptive.bounds(settings["near"], settings["far"], active)
                settings = {**settings, "near": near, "far": far}
                mask = active.float()
            with autocast_context(self.precision, self.device):
                out = render(self.model, rays.origins, rays.directions, perturb=self.perturb,
                             backend=self.backend, generator=self.generator,
                             cos_anneal_ratio=(self.cos_anneal_ratio(step) if schedule is None
                                               else schedule.cos_anneal_ratio),
                             pipeline=self.pipeline, **settings)
            out = {key: value.float() for key, value in out.items()}  # bf16 autocast leftovers
            loss, stats = self.loss(out, target, mask)
            if "samples" in out:  # the occupancy sampler's counts (0-d device tensors)
                rays_rendered = mask.sum() if self.adaptive is not None else out["rgb"].new_tensor(
                    float(out["rgb"].shape[0]))
                stats.update(samples_per_ray=out["samples_kept"] / rays_rendered.clamp(min=1.0),
                             rays=rays_rendered, dropped_rays=out["dropped_rays"])
                if self.adaptive is not None:
                    self.adaptive.update(out["samples"])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.reduce_gradients is not None:
                self.reduce_gradients()
            self.optimizer.step()
        return stats
