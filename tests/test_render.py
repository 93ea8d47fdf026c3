"""The renderer's parts: samplers are swappable and may return packed samples, which the NeRF and
NeuS pipelines composite without change; pipelines are found by model class; fastfield.render
stays callable. Packed results are checked against the padded pipeline on the same samples."""
import pytest
import torch
from torch import nn

import fastfield
from fastfield.config import preset
from fastfield.fields import BackgroundField, MLPConfig, NeRF, NeRFField, NeuS
from fastfield.render import (NeRFPipeline, NeuSPipeline, RaySamples, StratifiedSampler,
                              pipeline_for, register_pipeline)
from fastfield.render.pipelines import neus_pipeline

BACKENDS = ["kernels", "reference"]


class Packed:
    """A sampler returning another sampler's samples in the packed layout, with the samples of
    ``empty`` rays dropped (those rays own no samples)."""

    def __init__(self, sampler, empty=()):
        self.sampler, self.empty, self.n_samples = sampler, list(empty), sampler.n_samples

    def __call__(self, rays, ctx, previous=None):
        padded = self.sampler(rays, ctx, previous)
        n_rays, n = padded.t.shape
        counts = torch.full((n_rays,), n, dtype=torch.long)
        counts[self.empty] = 0
        keep = counts[:, None] > torch.arange(n)
        offsets = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        return RaySamples(padded.t[keep], padded.deltas[keep], offsets)


def _rays(n_rays=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    origins = torch.randn(n_rays, 3, generator=g) * 0.1 + torch.tensor([0.0, 0.0, 4.0])
    directions = torch.randn(n_rays, 3, generator=g) * 0.2 + torch.tensor([0.0, 0.0, -1.0])
    return origins, directions


def _nerf(n_coarse=16):
    torch.manual_seed(0)
    config = preset("nerf-small").nerf
    config.n_coarse, config.fine = n_coarse, None
    return NeRF(config)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_packed_sampler_renders_through_the_nerf_pipeline(backend):
    model = _nerf()
    origins, directions = _rays()
    padded = NeRFPipeline([model.coarse], [StratifiedSampler(16)])
    packed = NeRFPipeline([model.coarse], [Packed(StratifiedSampler(16), empty=[2, 7])])
    background = torch.tensor([0.2, 0.5, 0.9])
    with torch.no_grad():
        want = fastfield.render(model, origins, directions, 2.0, 6.0, background=background,
                                backend=backend, pipeline=padded)
        got = fastfield.render(model, origins, directions, 2.0, 6.0, background=background,
                               backend=backend, pipeline=packed)
    full = torch.ones(len(origins), dtype=torch.bool)
    full[[2, 7]] = False
    for key in ("rgb", "depth", "acc"):
        torch.testing.assert_close(got[key][full], want[key][full], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got["rgb"][~full], background.expand(2, 3))
    assert (got["acc"][~full] == 0).all() and (got["depth"][~full] == 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_packed_nerf_gradients_match_padded(backend):
    model = _nerf(8)
    origins, directions = _rays(6, seed=1)
    losses = []
    for sampler in (StratifiedSampler(8), Packed(StratifiedSampler(8))):
        model.zero_grad()
        out = fastfield.render(model, origins, directions, 2.0, 6.0, backend=backend,
                               pipeline=NeRFPipeline([model.coarse], [sampler]))
        (out["rgb"].square().sum() + out["depth"].sum()).backward()
        losses.append([p.grad.clone() for p in model.parameters()])
    for want, got in zip(*losses):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)


def _neus_wmask():
    torch.manual_seed(0)
    config = preset("neus-small").neus
    config.n_samples, config.n_importance, config.up_sample_steps, config.n_outside = 8, 8, 2, 0
    config.sdf.width, config.sdf.depth, config.sdf.skips, config.sdf.feature_dim = 32, 2, (), 8
    config.color.width, config.color.depth = 32, 1
    return NeuS(config)


@pytest.mark.parametrize("backend", BACKENDS)
def test_packed_inside_samples_render_through_the_neus_pipeline(backend):
    model = _neus_wmask()
    assert model.background is None
    origins = torch.tensor([[0.0, 0.0, -2.5], [0.3, 0.1, -2.4], [0.2, -0.3, 2.5]])
    directions = torch.nn.functional.normalize(-origins + 0.05, dim=-1)
    padded = neus_pipeline(model)
    packed = neus_pipeline(model)
    packed.inside = Packed(padded.inside)
    results = []
    for pipeline in (padded, packed):
        model.zero_grad()
        out = fastfield.render(model, origins, directions, backend=backend, pipeline=pipeline,
                               cos_anneal_ratio=0.5)
        (out["rgb"].sum() + out["eikonal"] + out["depth"].sum()).backward()
        results.append((out, [p.grad.clone() for p in model.parameters()]))
    (want, want_grads), (got, got_grads) = results
    for key in ("rgb", "acc", "depth", "normal", "eikonal"):
        torch.testing.assert_close(got[key], want[key], rtol=1e-5, atol=1e-6, msg=key)
    for a, b in zip(got_grads, want_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_pipelines_are_found_by_model_class():
    class MyNeRF(NeRF):
        pass

    assert isinstance(pipeline_for(_nerf()), NeRFPipeline)
    assert isinstance(pipeline_for(MyNeRF(_nerf().config)), NeRFPipeline)
    assert isinstance(pipeline_for(_neus_wmask()), NeuSPipeline)
    with pytest.raises(TypeError, match="no pipeline renders a Linear"):
        pipeline_for(nn.Linear(2, 2))

    class OnePass(nn.Module):
        def __init__(self):
            super().__init__()
            self.field = NeRFField(MLPConfig(depth=2, width=16, skips=()))

    register_pipeline(OnePass, lambda m: NeRFPipeline([m.field], [StratifiedSampler(4)],
                                                      module=m))
    origins, directions = _rays(3)
    out = fastfield.render(OnePass(), origins, directions, 2.0, 6.0)
    assert out["rgb"].shape == (3, 3) and "rgb_coarse" not in out


def test_fastfield_render_is_callable_as_the_function():
    model = _nerf(8)
    origins, directions = _rays(4)
    with torch.no_grad():
        a = fastfield.render(model, origins, directions, 2.0, 6.0)
        b = fastfield.render.render(model, origins, directions, 2.0, 6.0)
    assert torch.equal(a["rgb"], b["rgb"])


def test_field_density_path_is_forward_density():
    torch.manual_seed(0)
    for use_viewdirs in (True, False):
        field = NeRFField(MLPConfig(depth=3, width=16, skips=(1,), use_viewdirs=use_viewdirs))
        points, dirs = torch.randn(10, 3), torch.nn.functional.normalize(torch.randn(10, 3))
        assert torch.equal(field.density(points), field(points, dirs)[0])
    with pytest.raises(ValueError, match="in_dim must be 4"):
        BackgroundField(MLPConfig(in_dim=3))
