"""--compile (fastfield.train.compiled): torch.compile on the fields, against the eager fields.

Compiled runs must train exactly as eager ones do (Inductor's fused kernels round differently,
so within float32 tolerance), keep checkpoints interchangeable, compose with fastfield's custom
ops (hash_encode inside ngp-small's field, whose sample count changes every step) and with
NeuS's second derivatives (the SDF field stays eager: the test below shows why), and fail with
one line where torch.compile cannot run.
"""
import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fastfield.fields import NeRFField, build_model, sdf_and_gradient
from fastfield.train import Trainer
from fastfield.train.compiled import COMPILE_EAGER_SDF, is_compile_failure
from training_helpers import tiny_config, tiny_overrides

ROOT = Path(__file__).resolve().parents[1]


def make(config, out_dir, **kwargs) -> Trainer:
    return Trainer(config, out_dir, device="cpu", backend="kernels", progress=False, **kwargs)


def losses(trainer: Trainer, steps: int):
    return torch.stack([trainer.train_step()["loss"] for _ in range(steps)])


def is_compiled(module) -> bool:
    return getattr(module, "_compiled_call_impl", None) is not None


def test_a_compiled_nerf_field_matches_the_eager_one_and_keeps_its_state_dict():
    torch.manual_seed(0)
    eager = NeRFField(tiny_config("nerf-small", 1).nerf.coarse)
    compiled = copy.deepcopy(eager)
    keys = list(compiled.state_dict())
    compiled.compile()
    assert list(compiled.state_dict()) == keys  # checkpoints of either load in the other
    points, directions = torch.rand(300, 3), torch.nn.functional.normalize(torch.randn(300, 3))
    outputs = [field(points, directions) for field in (eager, compiled)]
    for expected, actual in zip(*outputs):
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-6)
    for (sigma, rgb), field in zip(outputs, (eager, compiled)):
        (sigma.square().sum() + rgb.sum()).backward()
    for expected, actual in zip(eager.parameters(), compiled.parameters()):
        torch.testing.assert_close(actual.grad, expected.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["nerf-small", "ngp-small", "neus-small"])
def test_compiled_runs_train_as_eager_runs_do(tmp_path, name):
    config = tiny_config(name, 4)
    eager = make(config, tmp_path / "eager")
    compiled = make(config, tmp_path / "compiled", compile=True)
    assert compiled.summary()["compile"] and not eager.summary()["compile"]
    model = compiled.model
    if name == "neus-small":
        assert compiled.notices == [COMPILE_EAGER_SDF]
        assert not is_compiled(model.sdf_network)
        assert is_compiled(model.color_network) and is_compiled(model.background)
    else:
        assert all(is_compiled(field) for field in (model.coarse, model.fine) if field)
    torch.testing.assert_close(losses(compiled, 4), losses(eager, 4), rtol=1e-4, atol=1e-6)
    for expected, actual in zip(eager.model.parameters(), compiled.model.parameters()):
        torch.testing.assert_close(actual, expected, rtol=1e-3, atol=1e-5)


def test_a_compiled_run_resumes_eagerly_and_the_other_way(tmp_path):
    config = tiny_config("nerf-small", 2)
    out = tmp_path / "run"
    make(config, out, compile=True).train()
    config.iters = 4
    make(config, out, resume=True).train()   # a compiled run's checkpoint, eager
    config.iters = 6
    resumed = make(config, out, resume=True, compile=True)
    resumed.train()                          # and an eager checkpoint, compiled
    assert resumed.step == 6 and torch.isfinite(torch.tensor(resumed.summary()["loss"]))


def test_aot_autograd_still_has_no_double_backward():
    """Why NeuS's SDF field stays eager. If this starts to pass on a new torch, compile the SDF
    field too (fastfield.train.compiled.compiled_parts)."""
    sdf_field = build_model(tiny_config("neus-small", 1)).sdf_network
    sdf_field.compile()
    points = torch.rand(64, 3, requires_grad=True)
    _, _, gradient = sdf_and_gradient(sdf_field, points, True)
    with pytest.raises(RuntimeError, match="does not currently support double backward"):
        (gradient.norm(dim=-1) - 1).square().mean().backward()


def test_where_torch_compile_cannot_run_it_is_a_one_line_error(tmp_path, monkeypatch):
    import torch._dynamo

    def unsupported():
        raise RuntimeError("Python 3.99+ not yet supported for torch.compile\nmore detail")
    monkeypatch.setattr(torch._dynamo.eval_frame, "check_if_dynamo_supported", unsupported)
    with pytest.raises(ValueError, match=r"^--compile: torch.compile cannot run here: Python "
                                         r"3.99\+ not yet supported for torch.compile$"):
        make(tiny_config("nerf-small", 2), tmp_path, compile=True)


def test_a_compilation_that_fails_in_a_step_is_a_one_line_error(tmp_path, monkeypatch):
    def no_compiler(graph_module, example_inputs):
        raise RuntimeError("no C++ compiler found\n(a long traceback)")
    compile_module = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, "compile",
                        lambda self, **kwargs: compile_module(self, backend=no_compiler))
    torch._dynamo.reset()  # nothing cached from the other tests' compilations
    trainer = make(tiny_config("nerf-small", 2), tmp_path, compile=True)
    with pytest.raises(ValueError, match=r"^--compile: torch.compile failed \(\w+: .*no C\+\+ "
                                         r"compiler found.*\); train without --compile$") as info:
        trainer.train_step()
    assert is_compile_failure(info.value.__cause__) and "\n" not in str(info.value)
    # Errors of the step itself keep their own type and message.
    assert not is_compile_failure(ValueError("a shape error"))


def test_the_cli_compiles_on_request_and_says_what_stays_eager(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "fastfield", "train", "--preset", "neus-small", "--out",
         str(tmp_path / "run"), "--device", "cpu", "--no-progress", "--compile",
         *[f"--set={item}" for item in tiny_overrides("neus-small", 2)]],
        capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    assert COMPILE_EAGER_SDF in result.stdout + result.stderr
    assert "trained neus for 2 steps" in result.stdout
