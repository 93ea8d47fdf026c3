"""``--compile``: the fields' forward passes through torch.compile (TorchInductor), which fuses
the glue around their matrix products -- bias, activation and their gradients, the encodings'
elementwise work, concatenations -- into generated kernels (issue 16's profile: that glue is
about a quarter of a NeRF step's GPU time).

What is compiled, per model:
- NeRF: the coarse and the fine field (``nn.Module.compile``: the module compiles in place, so
  its parameters, ``state_dict`` keys and checkpoints are those of the eager run).
- NeuS: the colour field and the NeRF++ background field. The SDF field stays eager: NeuS
  differentiates the SDF's gradient a second time (the eikonal loss, and the colour field's
  normals), and torch.compile's AOTAutograd has no double backward (its compiled backward is
  not differentiable; tests/test_compile.py checks that this is still so).

fastfield's custom ops compose with it: each has a fake (meta) function and registered
autograd, so a compiled field calls them as single nodes of its graph (hash_encode in the hash
fields, frequency_encode in the positional encodings). Each new input shape compiles again once
(the first repeat makes the batch dimension dynamic), so the first steps and the first
validation render are slow.
"""
from typing import List, Tuple

import torch
from torch import nn

from ..core.checks import first_line

COMPILE_EAGER_SDF = ("compile: the SDF field runs eagerly (NeuS differentiates its gradient "
                     "again for the eikonal loss and the normals; torch.compile's AOTAutograd "
                     "has no double backward); the colour and background fields are compiled")


def compile_problem() -> str:
    """Why torch.compile cannot run in this Python/torch, or ''."""
    try:
        import torch._dynamo  # noqa: F401  (imported on first use by torch.compile)
        torch._dynamo.eval_frame.check_if_dynamo_supported()
    except Exception as error:  # RuntimeError naming the Python/platform, or an import error
        return first_line(str(error)) or type(error).__name__
    return ""


def compiled_parts(model: nn.Module) -> Tuple[List[Tuple[str, nn.Module]], List[str]]:
    """([(name, field)] that --compile compiles, [notices]) for a NeRF or NeuS field set."""
    if model.kind == "nerf":
        return [(name, getattr(model, name)) for name in ("coarse", "fine")
                if getattr(model, name) is not None], []
    if model.kind == "neus":
        parts = [("color_network", model.color_network)]
        if model.background is not None:
            parts.append(("background", model.background))
        return parts, [COMPILE_EAGER_SDF]
    raise ValueError(f"--compile: no fields to compile in a {type(model).__name__}")


def compile_fields(model: nn.Module) -> List[str]:
    """Compile ``model``'s fields in place (see the module docstring); returns the notices to
    show. ValueError where torch.compile cannot run here."""
    problem = compile_problem()
    if problem:
        raise ValueError(f"--compile: torch.compile cannot run here: {problem}")
    parts, notices = compiled_parts(model)
    for _, field in parts:
        field.compile()
    return notices


def compile_failure(error: BaseException) -> ValueError:
    """The one-line error for a compilation that failed inside a step (a missing C++ compiler
    for Inductor's CPU kernels, an unsupported construct in a custom field)."""
    inner = getattr(error, "inner_exception", None)  # what the backend (Inductor) raised
    cause = f"{type(inner).__name__}: {first_line(str(inner))}" if inner else first_line(str(error))
    return ValueError(f"--compile: torch.compile failed ({type(error).__name__}: {cause}); "
                      f"train without --compile")


def is_compile_failure(error: BaseException) -> bool:
    """Whether ``error`` came out of torch.compile's machinery rather than the step itself."""
    try:
        from torch._dynamo.exc import BackendCompilerFailed, TorchDynamoException
    except ImportError:  # pragma: no cover - every supported torch has them
        return False
    return isinstance(error, (BackendCompilerFailed, TorchDynamoException))
