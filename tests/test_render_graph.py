"""render_image's CUDA-graph chunks (fastfield.render.graphed) on the CPU.

Capture and replay themselves need a GPU (not run here). What the CPU checks is the logic
around them, with a stand-in capture that re-runs the recorded render on each replay: the
first full chunk renders eagerly, later full chunks go through the static ray buffers and
come back as their own tensors, the partial last chunk renders eagerly, and the image equals
the plain chunked render exactly; plus when replay is refused, with its reason.
"""
import contextlib
import math
from types import SimpleNamespace

import pytest
import torch

import fastfield.ops
import fastfield.render.graphed as graphed
from fastfield import render_image
from fastfield.config import preset
from fastfield.data import orbit_path
from fastfield.fields import NeRF, NeuS
from fastfield.render import pipeline_for
from fastfield.render.samples import RayBundle, RenderContext

HEIGHT, WIDTH = 10, 13  # 130 rays: chunks of 32 leave a partial chunk of 2


class Rerun:
    """A capture whose replay re-runs the recorded render and refills its static outputs."""

    def __init__(self):
        self.replays = 0

    def warm_up(self):
        return contextlib.nullcontext()

    def __call__(self, render):
        outputs = render()

        def replay():
            self.replays += 1
            for key, value in render().items():
                outputs[key].copy_(value)
        return replay, outputs


def camera(convention="opengl", radius=4.0):
    focal = 0.5 * WIDTH / math.tan(0.35)
    return orbit_path((0.0, 0.0, 0.0), radius, 30.0, 1, (focal, focal, WIDTH / 2, HEIGHT / 2),
                      HEIGHT, WIDTH, convention=convention)


def tiny_model(kind):
    torch.manual_seed(0)
    if kind == "nerf":
        config = preset("nerf-small").nerf
        config.n_coarse, config.n_fine = 8, 8
        return NeRF(config), dict(near=2.0, far=6.0), camera()
    config = preset("neus-small").neus
    config.n_samples, config.n_importance, config.up_sample_steps = 8, 8, 2
    return NeuS(config), {}, camera("opencv", 2.5)


@pytest.mark.parametrize("kind", ["nerf", "neus"])
def test_replayed_chunks_give_the_image_of_the_plain_chunked_render(kind, monkeypatch):
    model, bounds, view = tiny_model(kind)
    plain = render_image(model, view, 0, chunk=32, cuda_graph="off", **bounds)
    capture = Rerun()
    monkeypatch.setattr(graphed, "replay_problem", lambda *args: None)
    monkeypatch.setattr(graphed, "CudaGraphCapture", lambda: capture)
    replayed = render_image(model, view, 0, chunk=32, cuda_graph="on", **bounds)
    assert capture.replays == HEIGHT * WIDTH // 32 - 1  # full chunks after the first
    assert replayed.keys() == plain.keys()
    for key in plain:
        assert torch.equal(replayed[key], plain[key]), key


def test_each_replayed_chunk_returns_its_own_tensors():
    model, bounds, view = tiny_model("nerf")
    pipeline = pipeline_for(model)
    g = torch.Generator().manual_seed(0)
    origins = torch.randn(96, 3, generator=g)
    directions = torch.nn.functional.normalize(-origins, dim=-1)
    rays = RayBundle(origins * 4, directions, directions, torch.full((96,), 2.0),
                     torch.full((96,), 6.0))
    ctx = RenderContext(fastfield.ops, False, None, None, 1.0)
    with torch.no_grad():
        parts = graphed.render_chunks(pipeline, rays, ctx, 32, "kernels", "on", Rerun())
        expected = [pipeline(rays.chunk(i, i + 32), ctx) for i in (0, 32, 64)]
    assert len(parts) == 3
    for part, want in zip(parts, expected):
        assert torch.equal(part["rgb"], want["rgb"])
    assert parts[1]["rgb"].data_ptr() != parts[2]["rgb"].data_ptr()


def test_where_replay_cannot_work_auto_renders_eagerly_and_on_says_why():
    model, bounds, view = tiny_model("nerf")
    plain = render_image(model, view, 0, chunk=32, cuda_graph="off", **bounds)
    auto = render_image(model, view, 0, chunk=32, **bounds)  # the default: auto
    assert torch.equal(auto["rgb"], plain["rgb"])
    with pytest.raises(ValueError, match=r"^cuda_graph='on': CUDA graphs need a CUDA device; "
                                         r"these rays are on cpu$"):
        render_image(model, view, 0, chunk=32, cuda_graph="on", **bounds)
    with pytest.raises(ValueError, match="cuda_graph must be one of auto, on, off"):
        render_image(model, view, 0, chunk=32, cuda_graph="yes", **bounds)
    # The reasons on a CUDA device (only the rays' device type is read).
    cuda_rays = SimpleNamespace(origins=SimpleNamespace(device=torch.device("cuda")))
    ctx = RenderContext(None, False, None, None, 1.0)
    dense, occupancy = object(), SimpleNamespace(update_grid=None)
    with torch.no_grad():
        assert graphed.replay_problem(dense, cuda_rays, ctx, "kernels") is None
        assert "reference backend" in graphed.replay_problem(dense, cuda_rays, ctx, "reference")
        assert "occupancy sampler" in graphed.replay_problem(occupancy, cuda_rays, ctx, "kernels")
        assert "perturbed" in graphed.replay_problem(dense, cuda_rays, ctx._replace(perturb=True),
                                                     "kernels")
        assert "per-ray background" in graphed.replay_problem(
            dense, cuda_rays, ctx._replace(background=torch.ones(5, 3)), "kernels")
    assert "with gradients" in graphed.replay_problem(dense, cuda_rays, ctx, "kernels")


def test_a_chunk_that_cannot_be_captured_renders_eagerly_under_auto(monkeypatch):
    model, bounds, view = tiny_model("nerf")
    plain = render_image(model, view, 0, chunk=32, cuda_graph="off", **bounds)

    class Refuses(Rerun):
        def __call__(self, render):
            raise RuntimeError("operation not permitted when stream is capturing")
    monkeypatch.setattr(graphed, "replay_problem", lambda *args: None)
    monkeypatch.setattr(graphed, "CudaGraphCapture", Refuses)
    with pytest.warns(UserWarning, match="capturing a chunk failed"):
        auto = render_image(model, view, 0, chunk=32, **bounds)
    assert torch.equal(auto["rgb"], plain["rgb"])
    with pytest.raises(ValueError, match="^cuda_graph='on': capturing a chunk failed"):
        render_image(model, view, 0, chunk=32, cuda_graph="on", **bounds)
