// CUDA driver of composite_sdf: one thread per ray runs the shared per-ray scans of sdf.h,
// evaluating neus_alpha on the spot (the backward recomputes it in both sweeps instead of
// storing per-sample tables).
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "../common/cuda_launch.h"
#include "sdf_host.h"

namespace fastfield {
namespace {

template <typename scalar_t>
__device__ __forceinline__ NeusFromSdf<scalar_t, StdExp> device_neus(const SdfInputs<scalar_t>& in,
                                                                      int64_t ray) {
  return {in.sdf, in.cos, in.dists, ray_inv_s(in, ray), in.cos_anneal_ratio, StdExp{}};
}

// kBackground == (in.bg_alpha != nullptr), chosen at launch.
template <typename scalar_t, bool kBackground>
__global__ void sdf_forward_kernel(const SdfInputs<scalar_t> in, const SdfOutputs<scalar_t> out) {
  const int64_t ray = cuda::thread_index();
  if (ray >= in.n_rays) return;
  sdf_forward_one_ray<kBackground>(in, sdf_ray_span(in, ray), device_neus(in, ray), out, ray);
}

template <typename scalar_t, bool kBackground>
__global__ void sdf_backward_kernel(const SdfInputs<scalar_t> in, const SdfGrads<scalar_t> grads) {
  const int64_t ray = cuda::thread_index();
  if (ray >= in.n_rays) return;
  // A gradient output indexed like the composite samples doubles as the scratch for T.
  scalar_t* scratch = kBackground ? grads.grad_bg_alpha : grads.grad_sdf;
  sdf_backward_one_ray<kBackground>(in, sdf_ray_span(in, ray), device_neus(in, ray), grads, ray,
                                    scratch, 0);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> composite_sdf_fwd_cuda(
    const at::Tensor& sdf, const at::Tensor& cos, const at::Tensor& dists,
    const at::Tensor& inv_s, const at::Tensor& rgb, double cos_anneal_ratio,
    const std::optional<at::Tensor>& inside, const std::optional<at::Tensor>& bg_alpha,
    const std::optional<at::Tensor>& bg_rgb, const std::optional<at::Tensor>& ray_offsets) {
  const SdfCall call = prepare_sdf("composite_sdf", sdf, cos, dists, inv_s, rgb,
                                   cos_anneal_ratio, inside, bg_alpha, bg_rgb, ray_offsets);
  auto [out_rgb, acc, weights, alpha] = allocate_sdf_outputs(call);
  AT_DISPATCH_FLOATING_TYPES(sdf.scalar_type(), "composite_sdf_fwd_cuda", [&] {
    const auto in = sdf_inputs<scalar_t>(call);
    const auto out = sdf_outputs<scalar_t>(out_rgb, acc, weights, alpha);
    if (in.bg_alpha != nullptr) {
      cuda::launch_per_item(sdf, call.n_rays, sdf_forward_kernel<scalar_t, true>, in, out);
    } else {
      cuda::launch_per_item(sdf, call.n_rays, sdf_forward_kernel<scalar_t, false>, in, out);
    }
  });
  return {out_rgb, acc, weights, alpha};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
composite_sdf_bwd_cuda(const std::optional<at::Tensor>& grad_rgb,
                       const std::optional<at::Tensor>& grad_acc,
                       const std::optional<at::Tensor>& grad_weights,
                       const std::optional<at::Tensor>& grad_alpha, const at::Tensor& sdf,
                       const at::Tensor& cos, const at::Tensor& dists, const at::Tensor& inv_s,
                       const at::Tensor& rgb, double cos_anneal_ratio,
                       const std::optional<at::Tensor>& inside,
                       const std::optional<at::Tensor>& bg_alpha,
                       const std::optional<at::Tensor>& bg_rgb,
                       const std::optional<at::Tensor>& ray_offsets) {
  const char* op = "composite_sdf_bwd";
  const SdfCall call = prepare_sdf(op, sdf, cos, dists, inv_s, rgb, cos_anneal_ratio, inside,
                                   bg_alpha, bg_rgb, ray_offsets);
  SdfGradTensors g = prepare_sdf_grads(op, call, grad_rgb, grad_acc, grad_weights, grad_alpha);
  AT_DISPATCH_FLOATING_TYPES(sdf.scalar_type(), "composite_sdf_bwd_cuda", [&] {
    const auto in = sdf_inputs<scalar_t>(call);
    const auto grads = sdf_grads<scalar_t>(g);
    if (in.bg_alpha != nullptr) {
      cuda::launch_per_item(sdf, call.n_rays, sdf_backward_kernel<scalar_t, true>, in, grads);
    } else {
      cuda::launch_per_item(sdf, call.n_rays, sdf_backward_kernel<scalar_t, false>, in, grads);
    }
  });
  return {g.grad_sdf, g.grad_cos, g.grad_inv_s, g.grad_rgb_samples, g.grad_bg_alpha,
          g.grad_bg_rgb};
}

}  // namespace
}  // namespace fastfield

TORCH_LIBRARY_IMPL(fastfield, CUDA, m) {
  m.impl("composite_sdf_fwd", &fastfield::composite_sdf_fwd_cuda);
  m.impl("composite_sdf_bwd", &fastfield::composite_sdf_bwd_cuda);
}
