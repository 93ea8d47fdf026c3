// frequency_encode is differentiable twice: autograd for frequency_encode_fwd and
// frequency_encode_bwd is registered in Python (fastfield/ops/encoding.py). A third derivative
// raises: the double backward's Autograd kernel is torch's not-implemented fallback (see
// hash_encode_autograd.cpp).
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

TORCH_LIBRARY_IMPL(fastfield, Autograd, m) {
  m.impl("frequency_encode_bwd_bwd", torch::autograd::autogradNotImplementedFallback());
}
