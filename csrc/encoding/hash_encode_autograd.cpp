// hash_encode is differentiable twice: autograd for hash_encode_fwd and hash_encode_bwd is
// registered in Python (fastfield/ops/encoding.py). The double backward's own derivative (a
// third derivative) is not implemented: its Autograd kernel is torch's not-implemented
// fallback, so that asking for one raises instead of torch's default for custom ops (a warning,
// and the gradients silently missing); see rays_autograd.cpp.
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

TORCH_LIBRARY_IMPL(fastfield, Autograd, m) {
  m.impl("hash_encode_bwd_bwd", torch::autograd::autogradNotImplementedFallback());
}
