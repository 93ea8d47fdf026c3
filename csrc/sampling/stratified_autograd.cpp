// stratified_samples is not differentiable: sample positions are constants of the rendering
// integral, as in nerf-pytorch and NeuS. Its Autograd kernel is torch's not-implemented
// fallback, so that a backward needing d t / d (near, far, u) raises instead of torch's default
// for custom ops (a warning, and the inputs' gradients silently missing); see rays_autograd.cpp.
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

TORCH_LIBRARY_IMPL(fastfield, Autograd, m) {
  m.impl("stratified_samples", torch::autograd::autogradNotImplementedFallback());
}
