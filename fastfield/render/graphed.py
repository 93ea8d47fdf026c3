"""Full-size chunks of a render without gradients, replayed from a CUDA graph.

An image renders as many chunks of the same number of rays through the same pipeline, and at
test time nothing changes between them but the rays. The first full chunk renders eagerly (the
warm-up CUDA's recipe asks for; its result is kept), then one chunk is captured with static
ray buffers, and every further full chunk is copied into those buffers and replayed: one
launch instead of the pipeline's hundreds of small ones. The last, partial chunk renders
eagerly. The training step's graph (fastfield.train.graph) is the same technique.

``cuda_graph``: "auto" replays where it can (else renders eagerly, silently: the images are the
same), "on" raises where it cannot, "off" never replays.
"""
import warnings
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

from .backend import uses_kernels
from .samples import RayBundle, RenderContext

GRAPH_MODES = ("auto", "on", "off")
Outputs = Dict[str, Tensor]


class CudaGraphCapture:
    """How chunks are recorded on a CUDA device (tests substitute an object with the same two
    methods that re-runs the recorded render on replay, to check the chunk logic on a CPU)."""

    def warm_up(self):
        """The context of the eager render before a capture: a side stream (PyTorch's recipe:
        lazy initialisations and the warm-up's memory stay out of the graph's pool)."""
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        return _SideStream(stream)

    def __call__(self, render: Callable[[], Outputs]) -> Tuple[Callable[[], None], Outputs]:
        """(replay, outputs): ``render`` recorded into a graph; ``outputs`` are static tensors
        that each ``replay()`` refills from the inputs' current values."""
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = render()
        return graph.replay, outputs


class _SideStream:
    def __init__(self, stream):
        self.stream, self.context = stream, torch.cuda.stream(stream)

    def __enter__(self):
        self.context.__enter__()

    def __exit__(self, *exc):
        self.context.__exit__(*exc)
        torch.cuda.current_stream().wait_stream(self.stream)
        return False


def check_graph_mode(mode: str) -> str:
    if mode not in GRAPH_MODES:
        raise ValueError(f"cuda_graph must be one of {', '.join(GRAPH_MODES)}, got {mode!r}")
    return mode


def replay_problem(pipeline, rays: RayBundle, ctx: RenderContext, backend: str) -> Optional[str]:
    """Why chunks of this render cannot be replayed from a graph, or None."""
    if rays.origins.device.type != "cuda":
        return f"CUDA graphs need a CUDA device; these rays are on {rays.origins.device.type}"
    if torch.is_grad_enabled():
        return "a render with gradients runs in one piece"
    if not uses_kernels(backend):
        return "the reference backend's ops read values back to the host"
    if hasattr(pipeline, "update_grid"):
        return "the occupancy sampler sizes each chunk's samples on the host"
    if ctx.perturb:
        return "a perturbed render draws from its generator"
    if ctx.background is not None and ctx.background.dim() > 1:
        return "a per-ray background"
    return None


class ChunkReplay:
    """One chunk's render recorded once on static ray buffers shaped like ``template``
    ([chunk, ...] each) and replayed for other chunks of the same size."""

    def __init__(self, pipeline, ctx: RenderContext, template: RayBundle, capture):
        self.rays = RayBundle(*(value.clone() for value in template))
        self.replay, self.outputs = capture(lambda: pipeline(self.rays, ctx))

    def __call__(self, rays: RayBundle) -> Outputs:
        """The outputs of ``rays`` (as many as the template), as new tensors."""
        for static, value in zip(self.rays, rays):
            static.copy_(value)
        self.replay()
        return {key: value.clone() for key, value in self.outputs.items()}


def render_chunks(pipeline, rays: RayBundle, ctx: RenderContext, chunk: int, backend: str,
                  cuda_graph: str = "auto", capture=None) -> list:
    """Each chunk's outputs, in order: the full chunks after the first replayed from a graph
    where ``cuda_graph`` and the render allow (see the module docstring). ``capture``: how to
    record (None: CudaGraphCapture, where replay_problem finds nothing in the way)."""
    check_graph_mode(cuda_graph)
    n_rays = rays.origins.shape[0]
    starts = range(0, n_rays, chunk)
    problem = None
    if cuda_graph != "off" and capture is None:
        problem = replay_problem(pipeline, rays, ctx, backend)
        if problem is not None and cuda_graph == "on":
            raise ValueError(f"cuda_graph='on': {problem}")
        capture = CudaGraphCapture()
    if cuda_graph == "off" or problem is not None or n_rays // chunk < 2:
        return [pipeline(rays.chunk(i, i + chunk), ctx) for i in starts]
    first = rays.chunk(0, chunk)
    with capture.warm_up():
        parts = [pipeline(first, ctx)]  # a real result
    try:
        replay = ChunkReplay(pipeline, ctx, first, capture)
    except RuntimeError as error:  # an op that cannot be captured: eager, as "off" would
        if cuda_graph == "on":
            raise ValueError(f"cuda_graph='on': capturing a chunk failed: {error}") from error
        warnings.warn(f"rendering without a CUDA graph: capturing a chunk failed ({error})")
        return parts + [pipeline(rays.chunk(i, i + chunk), ctx) for i in starts[1:]]
    for i in starts[1:]:
        part = rays.chunk(i, i + chunk)
        parts.append(replay(part) if i + chunk <= n_rays else pipeline(part, ctx))
    return parts
