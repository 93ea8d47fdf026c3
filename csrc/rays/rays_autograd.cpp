// The ray ops are not differentiable (rays are data, not optimised poses). Their Autograd
// kernel is torch's not-implemented fallback: a forward with inputs that require grad runs as
// usual, and a backward that needs the gradient of an output raises, instead of torch's default
// for custom ops (a warning, and the inputs' gradients silently missing). Being C++, it adds no
// Python call per op, which a Python autograd formula would.
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

TORCH_LIBRARY_IMPL(fastfield, Autograd, m) {
  for (const char* op : {"generate_rays", "ndc_rays", "near_far_sphere", "near_far_aabb"}) {
    m.impl(op, torch::autograd::autogradNotImplementedFallback());
  }
}
