"""The training run: nerf-pytorch's loop for NeRF, NeuS's for NeuS, on fastfield's pipelines.

``Trainer`` orchestrates a run -- the scene, the model and its optimiser, checkpoints (resume
continues exactly), logging, validation renders, Ctrl-C -- and leaves each optimiser update to
its step runner (fastfield.train.step.StepRunner: pixels -> rays -> render -> loss -> backward
-> optimiser). Metrics stay device tensors, summed over ``log_every`` steps and read once per
window, so a GPU never waits on the host inside a step.
"""
import copy
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import Tensor

from ..config import TrainConfig, to_dict
from ..fields import build_model
from ..render import DEFAULT_BACKEND, backend_ops
from .batching import PixelSampler
from .checkpoint import (FORMAT, VERSION, check_compatible, checkpoint_config, checkpoint_path,
                         config_differences, load_checkpoint, load_model_state, save_atomic)
from .compiled import compile_failure, compile_fields, is_compile_failure
from .device import resolve_device
from .distributed import GradientReducer, World, restore_streams, share_of_batch
from .evaluate import render_view
from .images import view_panels, write_side_by_side
from .graph import check_graph_mode, eager_optimizer_state, graph_runner
from .interrupt import interrupt_between_steps
from .log import SilentLog, TrainingLog
from .losses import loss_for
from .metrics import psnr
from .options import check_training_config
from .precision import resolve_precision
from .scenes import check_scene_for_model, load_config_scene, render_settings
from .schedule import cos_anneal_ratio, learning_rate
from .step import StepRunner, TrainingImages, make_optimizer


# Step metrics the log reports as the window's total rather than its mean.
SUMMED_METRICS = ("dropped_rays",)


class Trainer:
    """Trains the model of a ``TrainConfig`` on its scene, writing everything to ``out_dir``:
    ``checkpoint.pt``, ``metrics.jsonl``, ``training_curve.png`` and ``val/step_*.png``.

    Args:
        config: the run's configuration (copied).
        out_dir: the run folder. Without ``resume`` it must not hold a checkpoint yet.
        device: "cpu", "cuda", "cuda:N", "auto" or a torch.device.
        backend: "kernels" or "reference" (see fastfield.render.backend_ops). None: the
            checkpoint's when resuming, else "kernels".
        precision: "fp32", "tf32" or "bf16" (see fastfield.train.precision). None: the
            checkpoint's when resuming, else the device's default (tf32 on CUDA, fp32).
        resume: continue from ``out_dir/checkpoint.pt`` exactly where it stopped (same random
            streams, optimiser state and schedule position).
        progress: show the tqdm progress bar.
        world: this process's rank in a multi-process run (fastfield.train.distributed:
            rank 0 alone logs, validates and writes checkpoints); None: a single process.
        cuda_graph: "auto", "on" or "off": capture the step in a CUDA graph (train.graph).
        compile: compile the fields with torch.compile (train.compiled; not saved in the
            checkpoint: a resumed run compiles when asked again).
    """

    def __init__(self, config: TrainConfig, out_dir, device="cpu", backend: Optional[str] = None,
                 precision: Optional[str] = None, resume: bool = False, progress: bool = True,
                 world: Optional[World] = None, cuda_graph: str = "auto",
                 compile: bool = False):
        self.config = config = copy.deepcopy(config)
        self.out_dir = Path(out_dir)
        self.world = world = world or World()
        self.progress = progress and world.is_main
        self.notices: List[str] = []  # shown when training starts
        check_training_config(config)
        check_graph_mode(cuda_graph)
        self.checkpoint_path = checkpoint_path(self.out_dir)
        payload = self._read_resume_checkpoint(resume)
        self.backend = backend or (payload["backend"] if payload else DEFAULT_BACKEND)
        backend_ops(self.backend)  # ValueError for an unknown backend, before any work
        self.device = world.rank_device(resolve_device(device, self.backend))
        self.precision, notice = resolve_precision(
            precision, payload["precision"] if payload else None, self.device)
        if notice:
            self.notices.append(notice)

        self.scene = load_config_scene(config.data, config.model)
        check_scene_for_model(self.scene, config)
        train = self.scene.split("train")
        # The training images stay uint8 on the training device: memory grows with the images,
        # never with rays; colours are gathered per step by pixel id.
        masks = None
        if config.model == "neus" and config.mask_weight > 0:
            masks = (train.masks * 255).round().to(torch.uint8).to(self.device)  # [n, H, W]
        alphas = None
        if config.random_background:  # the alpha the training images were composited with
            alphas = (train.masks * 255).round().to(torch.uint8).to(self.device)  # [n, H, W]
        self.data = TrainingImages(train.images.to(self.device), masks,
                                   train.cameras.to(self.device), alphas)
        self.render_settings = render_settings(self.scene, self.device)

        torch.manual_seed(config.seed)  # the model's initialisation
        self.model = build_model(config).to(self.device)
        self.optimizer = make_optimizer(self.model, config)
        # Every random draw of a step (pixels, jitter, density noise, PDF quantiles) comes from
        # this generator, so a checkpoint can hold its state.
        # Each rank has its own stream (rank 0's is the single-process one).
        self.generator = torch.Generator(self.device).manual_seed(world.stream_seed(config.seed))
        image_order = "permutation" if config.model == "neus" else "random"
        self.sampler = PixelSampler(config.batching, image_order, len(train), train.cameras.height,
                                    train.cameras.width, share_of_batch(config.batch_rays, world),
                                    config.precrop_iters, config.precrop_frac, config.seed + 1,
                                    self.device)
        self.runner = self.step_runner = StepRunner(
            self.model, self.optimizer, self.sampler, self.data, loss_for(config),
            learning_rate=lambda step: learning_rate(config, step),
            cos_anneal_ratio=lambda step: cos_anneal_ratio(config, step),
            render_settings=self.render_settings, backend=self.backend,
            precision=self.precision, device=self.device, generator=self.generator,
            target_samples=config.target_samples,
            reduce_gradients=(GradientReducer(self.model.parameters(), world)
                              if world.distributed else None))
        self.step = 0
        self.elapsed = 0.0
        self.val_psnr: Optional[float] = None
        self.last_record: Dict[str, Any] = {}  # the latest metrics.jsonl training record
        self._last_saved_step: Optional[int] = None
        if payload is not None:
            self._load_state(payload)
        world.broadcast_module(self.model)
        self.compiled = compile
        if compile:
            self.notices.extend(compile_fields(self.model))
        self.runner, graph_notice = graph_runner(self.runner, cuda_graph, world)
        self.cuda_graph = graph_notice or ("on" if self.runner is not self.step_runner else "off")
        if graph_notice and self.device.type == "cuda":
            self.notices.append(graph_notice)

    # -- checkpoints --------------------------------------------------------------------------
    def _read_resume_checkpoint(self, resume: bool) -> Optional[Dict[str, Any]]:
        exists = self.checkpoint_path.is_file()
        if not resume:
            if exists:
                raise ValueError(f"{self.out_dir} already holds a run "
                                 f"({self.checkpoint_path.name}); resume it (--resume) or "
                                 f"choose another output folder")
            return None
        if not exists:
            raise ValueError(f"{self.out_dir}: no {self.checkpoint_path.name} to resume from")
        payload = load_checkpoint(self.checkpoint_path)
        check_compatible(payload, self.config, self.checkpoint_path)
        # The stored config as this fastfield reads it (older data sections migrated).
        stored = to_dict(checkpoint_config(payload))
        changed = [d for d in config_differences(stored, to_dict(self.config), "")
                   if not d.startswith((".iters ", ".log_every ", ".val_every ", ".ckpt_every "))]
        if changed:
            self.notices.append("resuming with changed settings: "
                                + "; ".join(d.lstrip(".") for d in changed))
        return payload

    def state_dict(self) -> Dict[str, Any]:
        """The checkpoint: model, optimiser, step, config, backend/precision and every random
        state a step draws from: torch's CPU generator, the training device's generator (and
        CUDA's default one on a GPU), the sampler's Python ``random`` state and NeuS's image
        permutation. Every rank's generator state is gathered (``device_generators``, in rank
        order; ``device_generator`` is rank 0's), so all ranks must call this together."""
        streams = self.world.gather(self.generator.get_state())
        rng = {"torch_cpu": torch.get_rng_state(), "device_type": self.device.type,
               "device_generator": streams[0], "device_generators": streams,
               "sampler": self.sampler.state_dict(),
               "torch_cuda": (torch.cuda.get_rng_state(self.device)
                              if self.device.type == "cuda" else None)}
        return {"format": FORMAT, "version": VERSION, "step": self.step,
                "config": to_dict(self.config), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "backend": self.backend,
                "precision": self.precision, "rng": rng, "elapsed": self.elapsed,
                "val_psnr": self.val_psnr, "last_record": self.last_record,
                "runner": self.step_runner.state_dict()}

    def _load_state(self, payload: Dict[str, Any]) -> None:
        load_model_state(self.model, payload["model"], self.checkpoint_path)
        self.optimizer.load_state_dict(payload["optimizer"])
        self.step_runner.load_state_dict(payload.get("runner", {}))
        eager_optimizer_state(self.optimizer)
        self.step, self.elapsed = int(payload["step"]), float(payload["elapsed"])
        self.val_psnr, self.last_record = payload["val_psnr"], payload["last_record"]
        rng = payload["rng"]
        torch.set_rng_state(rng["torch_cpu"])
        self.sampler.load_state_dict(rng["sampler"])
        if rng["device_type"] == self.device.type:
            notice = restore_streams(rng.get("device_generators", [rng["device_generator"]]),
                                     self.generator, self.world, self.config.seed, self.step)
            if notice:
                self.notices.append(notice)
            if rng["torch_cuda"] is not None:
                torch.cuda.set_rng_state(rng["torch_cuda"], self.device)
        else:  # a generator's state only fits its own device type
            self.generator.manual_seed(self.world.stream_seed(self.config.seed, self.step))
            self.notices.append(f"resuming on {self.device.type} a run that trained on "
                                f"{rng['device_type']}: the random stream restarts, so the "
                                f"result will differ from an uninterrupted run")
        if self.backend != payload["backend"] or self.precision != payload["precision"]:
            self.notices.append(f"resuming a {payload['backend']}/{payload['precision']} run "
                                f"with {self.backend}/{self.precision}")
        self._last_saved_step = self.step

    def save_checkpoint(self) -> Path:
        """Write ``checkpoint.pt`` atomically (see checkpoint.save_atomic); in a multi-process
        run every rank calls this together and rank 0 writes."""
        state = self.state_dict()
        if self.world.is_main:
            save_atomic(state, self.checkpoint_path)
        self._last_saved_step = self.step
        return self.checkpoint_path

    # -- one step -----------------------------------------------------------------------------
    @property
    def images(self) -> Tensor:
        """The training images on the training device, [n, H, W, 3] uint8."""
        return self.data.images

    def train_step(self) -> Dict[str, Tensor]:
        """One optimiser update by the step runner; returns the step's metrics as device
        tensors (never read here)."""
        try:
            stats = self.runner(self.step)
        except Exception as error:
            if self.compiled and is_compile_failure(error):
                raise compile_failure(error) from error
            raise
        self.step += 1
        return stats

    # -- validation ---------------------------------------------------------------------------
    def validate(self) -> Dict[str, Any]:
        """Render one validation view (they take turns), save ``val/step_<step>.png`` (image |
        render | depth [| normals]) and return its record."""
        split = "val" if "val" in self.scene.splits else "test"
        views = self.scene.split(split)
        index = (self.step // max(self.config.val_every, 1)) % len(views)
        out = render_view(self.model, self.scene, split, index, backend=self.backend,
                          precision=self.precision, device=self.device)
        target = views.images[index]
        value = psnr(out["rgb"].clamp(0, 1).cpu(), target.float() / 255.0)
        panels = [target.numpy(), *view_panels(out, views.cameras.c2w[index]).values()]
        path = write_side_by_side(self.out_dir / "val" / f"step_{self.step:06d}.png", panels)
        self.val_psnr = value
        return {"step": self.step, "val_psnr": value, "val_view": f"{split}/{views.names[index]}",
                "image": str(path.relative_to(self.out_dir))}

    # -- the loop -----------------------------------------------------------------------------
    def train(self, callback: Optional[Callable[["Trainer"], None]] = None) -> Dict[str, Any]:
        """Train until ``config.iters`` updates; returns the summary (see ``summary``).

        ``callback(trainer)`` runs after every update (tests use it to interrupt a run).
        Ctrl-C (or a KeyboardInterrupt from the callback) between two updates saves a
        checkpoint, then the KeyboardInterrupt propagates; a second Ctrl-C stops at once.
        """
        cfg = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        log = (TrainingLog(self.out_dir, cfg.iters, self.step, progress=self.progress)
               if self.world.is_main else SilentLog())
        for message in self.notices:
            log.notice(message)
        window: Dict[str, Tensor] = {}
        window_steps, window_start, overhead = 0, time.perf_counter(), 0.0
        session_start = time.perf_counter()
        completed_step = True  # whether the state is that of a finished update
        try:
            with interrupt_between_steps() as interrupt_requested:
                while self.step < cfg.iters:
                    completed_step = False
                    stats = self.train_step()
                    completed_step = True
                    for message in getattr(self.runner, "notices", ()):
                        log.notice(message)
                    getattr(self.runner, "notices", []).clear()
                    for key, value in stats.items():
                        window[key] = window[key] + value if key in window else value
                    window_steps += 1
                    if self.step % cfg.log_every == 0 or self.step == cfg.iters:
                        now = time.perf_counter()
                        self.elapsed += now - session_start
                        session_start = now
                        self._log_window(log, window, window_steps,
                                         now - window_start - overhead)
                        window, window_steps, window_start, overhead = {}, 0, now, 0.0
                    started = time.perf_counter()
                    if (self.world.is_main and cfg.val_every > 0
                            and self.step % cfg.val_every == 0):
                        log.record(self.validate())
                        log.plot()
                    if cfg.ckpt_every > 0 and self.step % cfg.ckpt_every == 0:
                        self.save_checkpoint()
                    overhead += time.perf_counter() - started
                    if callback is not None:
                        callback(self)
                    if self.world.any(interrupt_requested()):  # every rank stops here
                        raise KeyboardInterrupt
        except KeyboardInterrupt:
            self.elapsed += time.perf_counter() - session_start
            if completed_step:
                self.save_checkpoint()
                log.notice(f"interrupted: checkpoint of step {self.step} saved to "
                           f"{self.checkpoint_path}; continue with --resume")
            else:
                log.notice(f"interrupted inside a step: the last checkpoint "
                           f"(step {self._last_saved_step}) is kept")
            raise
        finally:
            log.plot()
            log.close()
        if self._last_saved_step != self.step:
            self.save_checkpoint()
        return self.summary()

    def _log_window(self, log: TrainingLog, window: Dict[str, Tensor], steps: int,
                    seconds: float) -> None:
        """Read the window's summed metrics from the device (the only sync of the loop),
        averaged over the ranks."""
        names = list(window)
        means = self.world.mean(torch.stack([window[name].float() for name in names])
                                / steps).tolist()
        values = {name: value * steps if name in SUMMED_METRICS else value
                  for name, value in zip(names, means)}
        record = {"step": self.step, **values,
                  "lr": learning_rate(self.config, self.step - 1),
                  "it_s": steps / max(seconds, 1e-9), "elapsed": self.elapsed}
        log.record(record)
        if record.get("dropped_rays", 0) > 0:
            log.notice(f"steps {self.step - steps + 1}-{self.step}: "
                       f"{record['dropped_rays']:.0f} rays did not fit the sample buffer and "
                       f"rendered background only (target_samples sets the buffer)")
        log.advance(steps, {"loss": f"{record['loss']:.4g}", "psnr": f"{record['psnr']:.2f}",
                            "lr": f"{record['lr']:.2e}"})
        self.last_record = record

    def summary(self) -> Dict[str, Any]:
        """{"step", "loss", "psnr" (last training window), "val_psnr" (last validation view),
        "elapsed", "checkpoint", "backend", "precision", "device", "processes", "cuda_graph",
        "compile"}."""
        last = self.last_record
        return {"step": self.step, "loss": last.get("loss"), "psnr": last.get("psnr"),
                "val_psnr": self.val_psnr, "elapsed": self.elapsed,
                "checkpoint": str(self.checkpoint_path), "backend": self.backend,
                "precision": self.precision, "device": str(self.device),
                "processes": self.world.size, "cuda_graph": self.cuda_graph,
                "compile": self.compiled}
