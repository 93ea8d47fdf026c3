"""Training precisions (fastfield.train.precision) on the CPU: every mode the CPU can honour
trains, tf32 is a clear error there, TF32 would cover the backward, and bf16 autocast keeps the
networks' activations in bfloat16 (no float32 round trips between layers)."""
import math
from contextlib import contextmanager

import pytest
import torch

from fastfield.fields import ColorConfig, ColorField, MLPConfig, NeRFField, SDFConfig, SDFField
from fastfield.fields import sdf_and_gradient
from fastfield.train import Trainer
from fastfield.train import step as step_module
from fastfield.train.log import read_records
from fastfield.train.precision import (default_precision, matmul_context, resolve_precision)
from torch.utils._python_dispatch import TorchDispatchMode
from training_helpers import tiny_config

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("name", ["nerf-small", "neus-small"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_every_cpu_precision_trains_with_finite_decreasing_loss(name, precision, tmp_path):
    config = tiny_config(name, 30, "log_every=10", "lr=2e-3", "warm_up=0",
                         "lr_schedule=exponential")
    trainer = Trainer(config, tmp_path, device="cpu", backend="kernels", precision=precision,
                      progress=False)
    trainer.train()
    losses = [r["loss"] for r in read_records(tmp_path / "metrics.jsonl") if "loss" in r]
    assert len(losses) == 3 and all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < losses[0], losses
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())


def test_tf32_is_an_error_on_the_cpu_and_the_cuda_default(tmp_path):
    with pytest.raises(ValueError, match="precision tf32 needs a CUDA GPU"):
        Trainer(tiny_config("nerf-small", 1), tmp_path, device="cpu", precision="tf32",
                progress=False)
    assert (default_precision(CPU), default_precision(CUDA)) == ("fp32", "tf32")
    assert resolve_precision(None, None, CPU) == ("fp32", "")
    assert resolve_precision(None, None, CUDA) == ("tf32", "")
    assert resolve_precision(None, "bf16", CPU) == ("bf16", "")
    precision, notice = resolve_precision(None, "tf32", CPU)  # a GPU run continued on a CPU
    assert precision == "fp32" and "continues in fp32" in notice
    with pytest.raises(ValueError, match="precision must be one of fp32, tf32, bf16"):
        resolve_precision("fp16", None, CPU)


def test_tf32_flags_are_set_inside_and_restored_after():
    before = torch.backends.cuda.matmul.allow_tf32
    with matmul_context("tf32", CUDA):
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    assert torch.backends.cuda.matmul.allow_tf32 == before
    with matmul_context("fp32", CUDA):
        assert torch.backends.cuda.matmul.allow_tf32 == before


def test_the_matmul_precision_covers_the_backward(tmp_path, monkeypatch):
    """The autograd engine runs the backward after the forward's contexts close: the step's
    matmul precision must still be held then (a TF32 step would otherwise run its backward
    matrix products, two thirds of them, in full float32)."""
    inside = []

    @contextmanager
    def recording(precision, device):
        inside.append(True)
        try:
            yield
        finally:
            inside.append(False)

    monkeypatch.setattr(step_module, "matmul_context", recording)
    trainer = Trainer(tiny_config("neus-small", 1), tmp_path, device="cpu", progress=False)
    seen = []
    for parameter in trainer.model.parameters():
        parameter.register_hook(lambda grad: seen.append(inside[-1]))
    trainer.train_step()
    assert seen and all(seen) and inside[-1] is False


class LargeCasts(TorchDispatchMode):
    """Records dtype casts between bfloat16 and float32 of tensors of >= ``min_numel``
    elements (activation-sized: [N, width])."""

    def __init__(self, min_numel):
        super().__init__()
        self.min_numel, self.casts = min_numel, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.ops.aten._to_copy.default:
            source, target = args[0].dtype, kwargs.get("dtype", args[0].dtype)
            if ({source, target} == {torch.bfloat16, torch.float32}
                    and args[0].numel() >= self.min_numel):
                self.casts.append((source, target, tuple(args[0].shape)))
        return func(*args, **kwargs)


def test_bf16_autocast_keeps_neus_activations_in_bfloat16():
    """NeuS's SDF (skip connection, softplus), its gradient with create_graph, the colour field
    and the backward of an eikonal-style loss: no activation-sized float32 <-> bfloat16 cast.
    (The CPU's autocast leaves softplus alone; CUDA's runs it in float32, which
    fields.mixed.softplus_as_input prevents: that part is checked on a GPU only.)"""
    torch.manual_seed(0)
    width, n = 64, 512
    sdf_field = SDFField(SDFConfig(depth=4, width=width, skips=(2,), feature_dim=width))
    color_field = ColorField(ColorConfig(depth=2, width=width), width)
    points = torch.rand(n, 3) * 2 - 1
    dirs = torch.nn.functional.normalize(torch.randn(n, 3), dim=-1)
    with LargeCasts(n * width) as mode:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            sdf, feature, gradient = sdf_and_gradient(sdf_field, points, create_graph=True)
            rgb = color_field(points, gradient, dirs, feature)
        loss = rgb.float().mean() + ((gradient.norm(dim=-1) - 1) ** 2).mean() + sdf.float().mean()
        loss.backward()
    assert mode.casts == []
    assert feature.dtype == torch.bfloat16 and rgb.dtype == torch.bfloat16
    assert all(p.grad is not None and torch.isfinite(p.grad).all()
               for p in sdf_field.parameters())


def test_bf16_autocast_keeps_nerf_activations_in_bfloat16():
    torch.manual_seed(0)
    width, n = 64, 512
    field = NeRFField(MLPConfig(depth=4, width=width, skips=(2,), pos_frequencies=10,
                                dir_frequencies=4))
    with LargeCasts(n * width) as mode:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            density, rgb = field(torch.rand(n, 3), torch.randn(n, 3))
        (density.float().mean() + rgb.float().mean()).backward()
    assert mode.casts == []
