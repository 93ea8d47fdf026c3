"""The training step captured in a CUDA graph and replayed (``--cuda-graph auto|on|off``).

A step makes no host-device synchronisation (tests/test_train.py), so the whole of it -- pixel
ids, rays, render, loss, backward, Adam -- can be recorded once and replayed: on an H200 that
took the pipeline-only nerf-lego step from 3.77 to 1.10 ms (issue 16). What changes between
steps enters as device tensors updated in place before each replay (StepRunner's
DeviceSchedule: the learning rate, which Adam(capturable=True) reads on the device, NeuS's
cos_anneal_ratio and a one-image step's camera); the random draws come from the run's
generator, registered with the graph so each replay advances it and a checkpoint saves where
it stands. A change of the step's shape of work (nerf-pytorch's precrop window ending) captures
again. The captured code is StepRunner.run_step, the eager step itself.

Capture follows PyTorch's whole-network recipe: a few eager warm-up steps on a side stream
(they are real updates), then one step recorded, then replays; metrics are the graph's static
output tensors, summed by the Trainer outside the graph and read once per log window.

``auto`` captures where it can and otherwise trains eagerly, saying why in one line; ``on``
where capture cannot work is a one-line error.
"""
from typing import Dict, Hashable, List, Optional, Tuple

import torch
from torch import Tensor

from ..core.checks import first_line
from ..render.backend import uses_kernels
from ..render.graphed import check_graph_mode
from .distributed import World
from .step import StepRunner

WARMUP_STEPS = 3  # eager steps on a side stream before a capture (cuBLAS workspaces, Adam state)


def capture_problem(runner: StepRunner, world: World) -> Optional[str]:
    """Why this run's step cannot be captured, or None."""
    if runner.device.type != "cuda":
        return f"CUDA graphs need a CUDA device; this run trains on {runner.device.type}"
    if world.distributed:
        return ("a multi-process step all-reduces its gradients between backward and the "
                "update, which is not captured")
    if hasattr(runner.pipeline, "update_grid"):
        return ("the occupancy sampler refreshes its grid every few steps (a different step), "
                "which one captured graph cannot replay")
    if not uses_kernels(runner.backend):
        return "the reference backend's ops read values back to the host"
    if not hasattr(torch.cuda.CUDAGraph, "register_generator_state"):
        return f"torch {torch.__version__} cannot register the run's generator with a graph"
    return None


def graph_runner(runner: StepRunner, mode: str, world: World) -> Tuple[object, str]:
    """(the step runner to train with, a notice or ''): ``runner`` itself for ``off`` and
    where capture cannot work under ``auto``, else a GraphedStepRunner around it. ValueError
    for ``on`` where capture cannot work."""
    check_graph_mode(mode)
    if mode == "off":
        return runner, ""
    problem = capture_problem(runner, world)
    if problem is not None:
        if mode == "on":
            raise ValueError(f"--cuda-graph on: {problem}")
        return runner, f"cuda graph off: {problem}"
    return GraphedStepRunner(runner, strict=mode == "on"), ""


class GraphedStepRunner:
    """A StepRunner whose step is captured in a CUDA graph and replayed; called and
    checkpointed like it (``model``, ``optimizer``, ``pixels``, ``generator`` are the
    runner's). ``strict``: a failed capture raises instead of falling back to eager steps.
    ``notices`` collects lines for the user (a fallback's reason)."""

    def __init__(self, runner: StepRunner, strict: bool = False):
        self.runner, self.strict = runner, strict
        self.notices: List[str] = []
        for group in runner.optimizer.param_groups:
            group["capturable"] = True  # Adam's step counters and lr on the device
        for state in runner.optimizer.state.values():
            if "step" in state:
                state["step"] = state["step"].to(runner.device, torch.float32)
        runner.use_device_schedule()
        self.graph: Optional[torch.cuda.CUDAGraph] = None
        self.key: Optional[Hashable] = None
        self.warm_steps = 0
        self.stats: Dict[str, Tensor] = {}
        self.eager_reason: Optional[str] = None
        self.pool = None
        self.side_stream = torch.cuda.Stream(runner.device)

    def __getattr__(self, name):  # model, optimizer, pixels, generator, ...
        return getattr(self.__dict__["runner"], name)

    def shape_key(self, step: int) -> Hashable:
        """What fixes the captured work: a new value captures again."""
        return (self.runner.pixels.precropping(step),)

    def __call__(self, step: int) -> Dict[str, Tensor]:
        self.runner.set_schedule(step)
        if self.eager_reason is not None:
            return self.runner.run_step(step)
        key = self.shape_key(step)
        if key != self.key:
            self.key, self.graph, self.warm_steps = key, None, 0
        if self.graph is None:
            if self.warm_steps < WARMUP_STEPS:
                self.warm_steps += 1
                return self._side_stream_step(step)
            if not self._capture(step):
                return self.runner.run_step(step)
        self.graph.replay()
        return self.stats

    def _side_stream_step(self, step: int) -> Dict[str, Tensor]:
        current = torch.cuda.current_stream(self.runner.device)
        self.side_stream.wait_stream(current)
        with torch.cuda.stream(self.side_stream):
            stats = self.runner.run_step(step)
        current.wait_stream(self.side_stream)
        return stats

    def _capture(self, step: int) -> bool:
        """Record run_step(step) (nothing runs: the replay that follows does the update).
        Returns False after falling back to eager steps (auto), raises in strict mode."""
        graph = torch.cuda.CUDAGraph()
        try:
            graph.register_generator_state(self.runner.generator)
            self.runner.optimizer.zero_grad(set_to_none=True)
            with torch.cuda.graph(graph, pool=self.pool):
                stats = self.runner.run_step(step)
        except Exception as error:  # capture refuses what it cannot record: say what
            if self.strict:
                raise RuntimeError(f"--cuda-graph on: capturing the step failed: "
                                   f"{first_line(error)}") from error
            self.eager_reason = first_line(error)
            self.notices.append(f"cuda graph off: capturing the step failed "
                                f"({self.eager_reason}); training eagerly")
            return False
        self.pool = graph.pool()  # re-captures share the memory pool
        self.graph, self.stats = graph, stats
        return True


def eager_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Undo what a graphed run saved in its optimiser state (capturable groups, a tensor lr,
    step counters on the GPU), so any run can resume it; GraphedStepRunner sets them again."""
    for group in optimizer.param_groups:
        group["capturable"] = False
        if isinstance(group["lr"], Tensor):
            group["lr"] = float(group["lr"])
    for state in optimizer.state.values():
        if isinstance(state.get("step"), Tensor):
            state["step"] = state["step"].detach().cpu()
