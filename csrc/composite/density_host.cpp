#include "density_host.h"

#include <c10/util/Exception.h>

#include "../common/checks.h"

namespace fastfield {
DensityCall prepare_density(const char* op, const at::Tensor& sigma, const at::Tensor& rgb,
                            const at::Tensor& deltas, const std::optional<at::Tensor>& t,
                            const std::optional<at::Tensor>& ray_offsets,
                            const std::optional<at::Tensor>& background) {
  check_float(op, sigma, "sigma");
  check_like(op, rgb, "rgb", sigma, "sigma");
  check_like(op, deltas, "deltas", sigma, "sigma");
  DensityCall call;
  call.sigma = sigma.contiguous();
  call.rgb = rgb.contiguous();
  call.deltas = deltas.contiguous();
  call.t = contiguous_or_undefined(t);
  call.ray_offsets = contiguous_or_undefined(ray_offsets);
  call.background = contiguous_or_undefined(background);
  if (call.ray_offsets.defined()) {
    check_sizes(op, sigma, "sigma", {-1}, "[n_samples] (packed, with ray_offsets)");
    call.n_samples = sigma.size(0);
    check_ray_offsets(op, call.ray_offsets, call.n_samples, sigma);
    call.n_rays = call.ray_offsets.size(0) - 1;
    check_sizes(op, rgb, "rgb", {call.n_samples, 3}, "[n_samples, 3]");
    check_sizes(op, deltas, "deltas", {call.n_samples}, "[n_samples]");
    if (call.t.defined()) check_sizes(op, call.t, "t", {call.n_samples}, "[n_samples]");
  } else {
    check_sizes(op, sigma, "sigma", {-1, -1}, "[n_rays, n_samples] (padded)");
    call.n_rays = sigma.size(0);
    call.per_ray = sigma.size(1);
    call.n_samples = call.n_rays * call.per_ray;
    check_sizes(op, rgb, "rgb", {call.n_rays, call.per_ray, 3}, "[n_rays, n_samples, 3]");
    check_sizes(op, deltas, "deltas", {call.n_rays, call.per_ray}, "[n_rays, n_samples]");
    if (call.t.defined())
      check_sizes(op, call.t, "t", {call.n_rays, call.per_ray}, "[n_rays, n_samples]");
  }
  if (call.t.defined()) check_like(op, call.t, "t", sigma, "sigma");
  if (call.background.defined()) {
    check_like(op, call.background, "background", sigma, "sigma");
    if (call.background.dim() == 2) {
      check_sizes(op, call.background, "background", {call.n_rays, 3}, "[n_rays, 3]");
    } else {
      check_sizes(op, call.background, "background", {3}, "[3] or [n_rays, 3]");
    }
  }
  return call;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> allocate_density_outputs(
    const DensityCall& call, bool kernels_fill_unowned) {
  const at::Tensor& s = call.sigma;
  at::Tensor weights = zero_initialised(call.ray_offsets, kernels_fill_unowned)
                           ? s.new_zeros(s.sizes())
                           : s.new_empty(s.sizes());
  return {s.new_empty({call.n_rays, 3}), s.new_empty({call.t.defined() ? call.n_rays : 0}),
          s.new_empty({call.n_rays}), weights};
}

DensityGradTensors prepare_density_grads(const char* op, const DensityCall& call,
                                         const std::optional<at::Tensor>& grad_rgb,
                                         const std::optional<at::Tensor>& grad_depth,
                                         const std::optional<at::Tensor>& grad_acc,
                                         const std::optional<at::Tensor>& grad_weights,
                                         bool kernels_fill_unowned) {
  const at::Tensor& s = call.sigma;
  DensityGradTensors g;
  g.grad_rgb =
      checked_optional(op, grad_rgb, "grad_rgb", s, "sigma", {call.n_rays, 3}, "[n_rays, 3]");
  g.grad_depth =
      checked_optional(op, grad_depth, "grad_depth", s, "sigma", {call.n_rays}, "[n_rays]");
  TORCH_CHECK_VALUE(!g.grad_depth.defined() || call.t.defined(), op,
                    ": grad_depth given but t is None (no depth output)");
  g.grad_acc = checked_optional(op, grad_acc, "grad_acc", s, "sigma", {call.n_rays}, "[n_rays]");
  g.grad_weights = contiguous_or_undefined(grad_weights);
  if (g.grad_weights.defined()) {
    check_like(op, g.grad_weights, "grad_weights", s, "sigma");
    TORCH_CHECK_VALUE(g.grad_weights.sizes() == s.sizes(), op,
                      ": grad_weights must have the shape of sigma ", s.sizes(), ", got ",
                      g.grad_weights.sizes());
  }
  const bool zero = zero_initialised(call.ray_offsets, kernels_fill_unowned);
  auto make = [&](at::IntArrayRef sizes) { return zero ? s.new_zeros(sizes) : s.new_empty(sizes); };
  g.grad_sigma = make(s.sizes());
  g.grad_rgb_samples = make(call.rgb.sizes());
  g.grad_t = call.t.defined() ? make(s.sizes()) : s.new_empty({0});
  return g;
}

}  // namespace fastfield
