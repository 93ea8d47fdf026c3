#include "sdf_host.h"

#include <c10/util/Exception.h>

#include "../common/checks.h"

namespace fastfield {
namespace {

void check_background(const char* op, SdfCall& call) {
  const bool given[3] = {call.inside.defined(), call.bg_alpha.defined(), call.bg_rgb.defined()};
  const char* names[3] = {"inside", "bg_alpha", "bg_rgb"};
  if (!given[0] && !given[1] && !given[2]) return;
  for (int a = 0; a < 3; ++a) {
    TORCH_CHECK_VALUE(given[a], op, ": the background model needs inside, bg_alpha and bg_rgb ",
                      "together, but ", names[a], " is None");
  }
  TORCH_CHECK_VALUE(!call.ray_offsets.defined(), op, ": the packed layout (ray_offsets) takes no ",
                    "background model; pass inside, bg_alpha and bg_rgb with padded ",
                    "[n_rays, n_in] inputs");
  const at::Tensor& s = call.sdf;
  check_like(op, call.inside, "inside", s, "sdf");
  check_like(op, call.bg_alpha, "bg_alpha", s, "sdf");
  check_like(op, call.bg_rgb, "bg_rgb", s, "sdf");
  check_sizes(op, call.inside, "inside", {call.n_rays, call.n_in}, "[n_rays, n_in]");
  check_sizes(op, call.bg_alpha, "bg_alpha", {call.n_rays, -1}, "[n_rays, n_in + n_out]");
  call.n_total = call.bg_alpha.size(1);
  TORCH_CHECK_VALUE(call.n_total >= call.n_in, op, ": bg_alpha must be [n_rays, n_in + n_out] ",
                    "with n_out >= 0, but it has ", call.n_total, " samples per ray and sdf ",
                    call.n_in);
  check_sizes(op, call.bg_rgb, "bg_rgb", {call.n_rays, call.n_total, 3},
              "[n_rays, n_in + n_out, 3]");
}

}  // namespace

SdfCall prepare_sdf(const char* op, const at::Tensor& sdf, const at::Tensor& cos,
                    const at::Tensor& dists, const at::Tensor& inv_s, const at::Tensor& rgb,
                    double cos_anneal_ratio, const std::optional<at::Tensor>& inside,
                    const std::optional<at::Tensor>& bg_alpha,
                    const std::optional<at::Tensor>& bg_rgb,
                    const std::optional<at::Tensor>& ray_offsets) {
  check_float(op, sdf, "sdf");
  check_like(op, cos, "cos", sdf, "sdf");
  check_like(op, dists, "dists", sdf, "sdf");
  check_like(op, inv_s, "inv_s", sdf, "sdf");
  check_like(op, rgb, "rgb", sdf, "sdf");
  SdfCall call;
  call.sdf = sdf.contiguous();
  call.cos = cos.contiguous();
  call.dists = dists.contiguous();
  call.inv_s = inv_s.contiguous();
  call.rgb = rgb.contiguous();
  call.inside = contiguous_or_undefined(inside);
  call.bg_alpha = contiguous_or_undefined(bg_alpha);
  call.bg_rgb = contiguous_or_undefined(bg_rgb);
  call.ray_offsets = contiguous_or_undefined(ray_offsets);
  call.cos_anneal_ratio = cos_anneal_ratio;
  if (call.ray_offsets.defined()) {
    check_sizes(op, sdf, "sdf", {-1}, "[n_samples] (packed, with ray_offsets)");
    call.n_samples = sdf.size(0);
    check_ray_offsets(op, call.ray_offsets, call.n_samples, sdf);
    call.n_rays = call.ray_offsets.size(0) - 1;
    check_sizes(op, cos, "cos", {call.n_samples}, "[n_samples]");
    check_sizes(op, dists, "dists", {call.n_samples}, "[n_samples]");
    check_sizes(op, rgb, "rgb", {call.n_samples, 3}, "[n_samples, 3]");
  } else {
    check_sizes(op, sdf, "sdf", {-1, -1}, "[n_rays, n_in] (padded)");
    call.n_rays = sdf.size(0);
    call.n_in = sdf.size(1);
    call.n_samples = call.n_rays * call.n_in;
    check_sizes(op, cos, "cos", {call.n_rays, call.n_in}, "[n_rays, n_in]");
    check_sizes(op, dists, "dists", {call.n_rays, call.n_in}, "[n_rays, n_in]");
    check_sizes(op, rgb, "rgb", {call.n_rays, call.n_in, 3}, "[n_rays, n_in, 3]");
  }
  const bool scalar_inv_s = inv_s.dim() == 0 || (inv_s.dim() == 1 && inv_s.size(0) == 1);
  TORCH_CHECK_VALUE(scalar_inv_s || (inv_s.dim() == 1 && inv_s.size(0) == call.n_rays), op,
                    ": inv_s must be a scalar (0-d or [1]) or [n_rays] = [", call.n_rays,
                    "], got ", inv_s.sizes());
  check_background(op, call);
  return call;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> allocate_sdf_outputs(
    const SdfCall& call, bool kernels_fill_unowned) {
  const at::Tensor& s = call.sdf;
  auto per_sample = [&]() {
    if (call.bg_alpha.defined()) return s.new_empty({call.n_rays, call.n_total});
    return zero_initialised(call.ray_offsets, kernels_fill_unowned) ? s.new_zeros(s.sizes())
                                                                     : s.new_empty(s.sizes());
  };
  return {s.new_empty({call.n_rays, 3}), s.new_empty({call.n_rays}), per_sample(), per_sample()};
}

SdfGradTensors prepare_sdf_grads(const char* op, const SdfCall& call,
                                 const std::optional<at::Tensor>& grad_rgb,
                                 const std::optional<at::Tensor>& grad_acc,
                                 const std::optional<at::Tensor>& grad_weights,
                                 const std::optional<at::Tensor>& grad_alpha,
                                 bool kernels_fill_unowned) {
  const at::Tensor& s = call.sdf;
  SdfGradTensors g;
  g.grad_rgb =
      checked_optional(op, grad_rgb, "grad_rgb", s, "sdf", {call.n_rays, 3}, "[n_rays, 3]");
  g.grad_acc = checked_optional(op, grad_acc, "grad_acc", s, "sdf", {call.n_rays}, "[n_rays]");
  g.grad_weights = contiguous_or_undefined(grad_weights);
  g.grad_alpha = contiguous_or_undefined(grad_alpha);
  const at::IntArrayRef per_sample =
      call.bg_alpha.defined() ? call.bg_alpha.sizes() : s.sizes();
  auto check_per_sample = [&](const at::Tensor& t, const char* name) {
    if (!t.defined()) return;
    check_like(op, t, name, s, "sdf");
    TORCH_CHECK_VALUE(t.sizes() == per_sample, op, ": ", name,
                      " must have the shape of the weights ", per_sample, ", got ", t.sizes());
  };
  check_per_sample(g.grad_weights, "grad_weights");
  check_per_sample(g.grad_alpha, "grad_alpha");
  const bool zero = zero_initialised(call.ray_offsets, kernels_fill_unowned);
  auto make = [&](at::IntArrayRef sizes) { return zero ? s.new_zeros(sizes) : s.new_empty(sizes); };
  g.grad_sdf = make(s.sizes());
  g.grad_cos = make(s.sizes());
  g.grad_inv_s = s.new_empty({call.n_rays});
  g.grad_rgb_samples = make(call.rgb.sizes());
  g.grad_bg_alpha = call.bg_alpha.defined() ? s.new_empty(call.bg_alpha.sizes()) : s.new_empty({0});
  g.grad_bg_rgb = call.bg_rgb.defined() ? s.new_empty(call.bg_rgb.sizes()) : s.new_empty({0});
  return g;
}

}  // namespace fastfield
