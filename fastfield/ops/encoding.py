"""The encodings of points, differentiable twice, on CPU and CUDA: instant-ngp's multi-resolution
hash encoding and NeRF's frequency (positional) encoding."""
import torch
from torch import Tensor

from ..core.hash_grid import hash_grid_spec
from ._common import check_kernel, float_inputs, int_at_least, require_tensor

__all__ = ["hash_encode", "frequency_encode"]

# The most octaves frequency_encode takes (kMaxFrequencies, csrc/encoding/frequency_encode.h).
MAX_FREQUENCIES = 30


def hash_encode(x: Tensor, params: Tensor, n_levels: int = 16, n_features: int = 2,
                log2_table_size: int = 19, base_resolution: float = 16,
                per_level_scale: float = 1.3819) -> Tensor:
    """Encode 3-D points with instant-ngp's multi-resolution hash grid (tiny-cuda-nn's grid).

    Level l = 0 .. n_levels - 1 of a table of T = 2**log2_table_size rows:
    scale s_l = base_resolution * per_level_scale**l - 1, resolution r_l = ceil(s_l) + 1.
    Per axis, x' = clamp(x, 0, 1), pos = x' * s_l + 0.5, corner c = floor(pos), t = pos - c.
    The 8 grid points c + b, b in {0, 1}^3, get trilinear weights prod_d (t_d if b_d else
    1 - t_d) and rows
    i + j r_l + k r_l**2 when r_l**3 <= T (a dense level), else
    (i * 1) xor (j * 2654435761) xor (k * 805459861) in uint32 arithmetic (a hashed level),
    both modulo T. Level l's features are sum_corners w params[l, row] (n_features values).

    Points outside [0, 1]^3 are clamped onto it, per axis: they read the boundary's features,
    and their gradient with respect to the clamped coordinate is zero; at exactly 0 and 1 it
    passes (as torch.clamp's did before torch 2.14, whichever torch is installed). A NaN
    coordinate gives NaN features and gradients.

    Differentiable with respect to ``x`` and ``params``, twice: the backward is an op with its
    own analytic backward, so a loss on ``autograd.grad(..., create_graph=True)`` (NeuS's
    eikonal term on the SDF gradient) has exact gradients with respect to params and x. The
    encoding is trilinear within a cell: its second derivatives in x are the mixed terms (the
    pure ones are zero), and it is not differentiable across cell faces (one side is taken).
    A third derivative raises. On the CPU the gradient of params is summed in a fixed order
    (bitwise reproducible for any thread count); on CUDA with atomics (the last bits vary).

    Args:
        x: [n, 3] float32/float64 points, meant to lie in [0, 1]^3.
        params: [n_levels, 2**log2_table_size, n_features], the dtype and device of x (the
            table, e.g. ``fastfield.HashGrid``'s parameter).
        n_levels: number of levels, 1 to 64.
        n_features: features per level and row.
        log2_table_size: T = 2**log2_table_size rows per level, 0 to 31.
        base_resolution: >= 1 (the coarsest level's resolution is ceil(base_resolution - 1) + 1).
        per_level_scale: growth of the scale per level, >= 1.

    Returns:
        [n, n_levels * n_features], level-major (level 0's features first), dtype of x.
    """
    op = "hash_encode"
    require_tensor(op, "x", x)
    require_tensor(op, "params", params)
    spec = hash_grid_spec(op, n_levels, n_features, log2_table_size, base_resolution,
                          per_level_scale)
    if x.dim() != 2 or x.shape[1] != 3:
        raise ValueError(f"fastfield.{op}: x must be [n, 3], got {list(x.shape)}")
    # Spelled out rather than spec.params_shape: torch 2.4's dynamo cannot trace a NamedTuple's
    # property under torch.compile(fullgraph=True).
    expected = (spec.n_levels, 2 ** spec.log2_table_size, spec.n_features)
    if tuple(params.shape) != expected:
        raise ValueError(f"fastfield.{op}: params must be [n_levels, 2**log2_table_size, "
                         f"n_features] = {list(expected)}, got {list(params.shape)}")
    x, params = float_inputs(op, x, params)
    check_kernel(op + "_fwd", x)
    return torch.ops.fastfield.hash_encode_fwd(x, params, spec.base_resolution,
                                               spec.per_level_scale)


@torch.library.register_fake("fastfield::hash_encode_fwd")
def _hash_encode_fwd_fake(x, params, base_resolution, per_level_scale):
    return x.new_empty(x.shape[0], params.shape[0] * params.shape[2])


def _placeholder_or_like(wanted: bool, like: Tensor) -> Tensor:
    return like.new_empty(like.shape) if wanted else like.new_empty(0)


@torch.library.register_fake("fastfield::hash_encode_bwd")
def _hash_encode_bwd_fake(grad_out, x, params, base_resolution, per_level_scale, x_grad,
                          params_grad):
    return _placeholder_or_like(x_grad, x), _placeholder_or_like(params_grad, params)


@torch.library.register_fake("fastfield::hash_encode_bwd_bwd")
def _hash_encode_bwd_bwd_fake(gg_x, gg_params, grad_out, x, params, base_resolution,
                              per_level_scale, grad_out_grad, x_grad, params_grad):
    return (_placeholder_or_like(grad_out_grad, grad_out), _placeholder_or_like(x_grad, x),
            _placeholder_or_like(params_grad, params))


# ----------------------------------------------------------------------------- autograd
# hash_encode_fwd's backward calls hash_encode_bwd, whose own backward calls
# hash_encode_bwd_bwd: under create_graph the first backward is recorded as that op, and a loss
# on its results differentiates through the analytic second derivatives.

def _fwd_setup(ctx, inputs, output):
    x, params, base_resolution, per_level_scale = inputs
    ctx.save_for_backward(x, params)
    ctx.grid = (base_resolution, per_level_scale)


def _fwd_backward(ctx, grad_out):
    x, params = ctx.saved_tensors
    x_grad, params_grad = ctx.needs_input_grad[:2]
    grad_x, grad_params = torch.ops.fastfield.hash_encode_bwd(grad_out, x, params, *ctx.grid,
                                                              x_grad, params_grad)
    return grad_x if x_grad else None, grad_params if params_grad else None, None, None


torch.library.register_autograd("fastfield::hash_encode_fwd", _fwd_backward,
                                setup_context=_fwd_setup)


def _bwd_setup(ctx, inputs, output):
    grad_out, x, params, base_resolution, per_level_scale, x_grad, params_grad = inputs
    ctx.save_for_backward(grad_out, x, params)
    ctx.grid = (base_resolution, per_level_scale)
    ctx.computed = (x_grad, params_grad)  # outputs not computed are placeholders
    ctx.set_materialize_grads(False)      # an unused output sends None, not a zero table


def _bwd_backward(ctx, gg_x, gg_params):
    grad_out, x, params = ctx.saved_tensors
    gg_x = gg_x if ctx.computed[0] else None
    gg_params = gg_params if ctx.computed[1] else None
    incoming = gg_x is not None or gg_params is not None
    wanted = (ctx.needs_input_grad[0] and incoming, ctx.needs_input_grad[1] and incoming,
              ctx.needs_input_grad[2] and gg_x is not None)  # params enter via gg_x only
    if not any(wanted):
        return (None,) * 7
    grads = torch.ops.fastfield.hash_encode_bwd_bwd(gg_x, gg_params, grad_out, x, params,
                                                    *ctx.grid, *wanted)
    return tuple(g if w else None for g, w in zip(grads, wanted)) + (None,) * 4


torch.library.register_autograd("fastfield::hash_encode_bwd", _bwd_backward,
                                setup_context=_bwd_setup)


# ----------------------------------------------------------------------------- frequency_encode

def frequency_encode(x: Tensor, n_frequencies: int) -> Tensor:
    """NeRF's positional encoding with the input included (nerf-pytorch's ``Embedder`` with
    include_input and log sampling; NeuS uses the same), fused into one pass:

        [x, sin(2^0 x), cos(2^0 x), sin(2^1 x), cos(2^1 x), ..., sin(2^(L-1) x), cos(2^(L-1) x)]

    along the last dimension, each block d values wide, L = n_frequencies. 2^k x is an exact
    product, as in the PyTorch expression (``fastfield.reference.frequency_encode``), so the
    two agree to the rounding of sin and cos (float32 on the CPU: computed in float64 and
    rounded once; float64: the C library's).

    Differentiable twice with respect to x: the backward is an op with its own analytic
    backward, so NeuS's eikonal loss on ``autograd.grad(..., create_graph=True)`` has exact
    gradients; a third derivative raises. With n_frequencies = 0 the result is a copy of x
    (an op's output cannot alias its input).

    Args:
        x: [..., d] float32/float64 coordinates, d >= 1 (under torch.autocast, half and
            bfloat16 inputs run in float32).
        n_frequencies: L, 0 to 30 (2^29 x already puts the last bit of a float32 coordinate
            above 2^-5 beyond a full period).

    Returns:
        [..., d * (1 + 2 * n_frequencies)], dtype of x.
    """
    op = "frequency_encode"
    require_tensor(op, "x", x)
    n_frequencies = int_at_least(op, "n_frequencies", n_frequencies, 0)
    if n_frequencies > MAX_FREQUENCIES:
        raise ValueError(f"fastfield.{op}: n_frequencies must be at most {MAX_FREQUENCIES}, "
                         f"got {n_frequencies}")
    if x.dim() < 1 or x.shape[-1] < 1:
        raise ValueError(f"fastfield.{op}: x must be [..., d] with d >= 1, got {list(x.shape)}")
    (x,) = float_inputs(op, x)
    check_kernel(op + "_fwd", x)
    if x.dim() == 2:
        return torch.ops.fastfield.frequency_encode_fwd(x, n_frequencies)
    d = x.shape[-1]
    out = torch.ops.fastfield.frequency_encode_fwd(x.reshape(-1, d), n_frequencies)
    return out.reshape(*x.shape[:-1], d * (1 + 2 * n_frequencies))


@torch.library.register_fake("fastfield::frequency_encode_fwd")
def _frequency_encode_fwd_fake(x, n_frequencies):
    return x.new_empty(x.shape[0], x.shape[1] * (1 + 2 * n_frequencies))


@torch.library.register_fake("fastfield::frequency_encode_bwd")
def _frequency_encode_bwd_fake(grad_out, x, n_frequencies):
    return x.new_empty(x.shape)


@torch.library.register_fake("fastfield::frequency_encode_bwd_bwd")
def _frequency_encode_bwd_bwd_fake(gg_x, grad_out, x, n_frequencies, grad_out_grad, x_grad):
    return _placeholder_or_like(grad_out_grad, grad_out), _placeholder_or_like(x_grad, x)


# frequency_encode_fwd's backward calls frequency_encode_bwd, whose own backward calls
# frequency_encode_bwd_bwd (as for hash_encode above).

def _frequency_fwd_setup(ctx, inputs, output):
    x, n_frequencies = inputs
    ctx.save_for_backward(x)
    ctx.n_frequencies = n_frequencies


def _frequency_fwd_backward(ctx, grad_out):
    (x,) = ctx.saved_tensors
    if not ctx.needs_input_grad[0]:
        return None, None
    return torch.ops.fastfield.frequency_encode_bwd(grad_out, x, ctx.n_frequencies), None


torch.library.register_autograd("fastfield::frequency_encode_fwd", _frequency_fwd_backward,
                                setup_context=_frequency_fwd_setup)


def _frequency_bwd_setup(ctx, inputs, output):
    grad_out, x, n_frequencies = inputs
    ctx.save_for_backward(grad_out, x)
    ctx.n_frequencies = n_frequencies
    ctx.set_materialize_grads(False)


def _frequency_bwd_backward(ctx, gg_x):
    grad_out, x = ctx.saved_tensors
    wanted = ctx.needs_input_grad[:2]
    if gg_x is None or not any(wanted):
        return None, None, None
    grads = torch.ops.fastfield.frequency_encode_bwd_bwd(gg_x, grad_out, x, ctx.n_frequencies,
                                                         *wanted)
    return tuple(g if w else None for g, w in zip(grads, wanted)) + (None,)


torch.library.register_autograd("fastfield::frequency_encode_bwd", _frequency_bwd_backward,
                                setup_context=_frequency_bwd_setup)
