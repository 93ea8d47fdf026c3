// The marching ops are not differentiable: sample positions are constants of the rendering
// integral (as in instant-ngp and nerfacc), and the occupancy bitfield is a set of bits. Their
// Autograd kernel is torch's not-implemented fallback, so that a backward needing d t / d
// (origins, directions, near, far) raises instead of torch's default for custom ops (a warning,
// and the inputs' gradients silently missing); see ../rays/rays_autograd.cpp.
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

TORCH_LIBRARY_IMPL(fastfield, Autograd, m) {
  for (const char* op : {"march_rays_count", "march_rays_fill"}) {
    m.impl(op, torch::autograd::autogradNotImplementedFallback());
  }
}
