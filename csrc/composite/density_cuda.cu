// CUDA driver of composite_density: one thread per ray runs the shared per-ray scans of
// density.h, computing exp(-sigma delta) on the spot.
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "../common/cuda_launch.h"
#include "density_host.h"

namespace fastfield {
namespace {

template <typename scalar_t>
using DeviceDecay = DecayFromDensity<scalar_t, StdExp>;

template <typename scalar_t>
__global__ void density_forward_kernel(const DensityInputs<scalar_t> in,
                                       const DensityOutputs<scalar_t> out) {
  const int64_t ray = cuda::thread_index();
  if (ray >= in.n_rays) return;
  density_forward_one_ray(in, DeviceDecay<scalar_t>{in.sigma, in.delta, StdExp{}}, out, ray);
}

template <typename scalar_t>
__global__ void density_backward_kernel(const DensityInputs<scalar_t> in,
                                        const DensityGrads<scalar_t> grads) {
  const int64_t ray = cuda::thread_index();
  if (ray >= in.n_rays) return;
  // The gradient output doubles as the scratch for T: no per-thread arrays of unknown length.
  density_backward_one_ray(in, DeviceDecay<scalar_t>{in.sigma, in.delta, StdExp{}}, grads, ray,
                           grads.grad_sigma, 0);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> composite_density_fwd_cuda(
    const at::Tensor& sigma, const at::Tensor& rgb, const at::Tensor& deltas,
    const std::optional<at::Tensor>& t, const std::optional<at::Tensor>& ray_offsets,
    const std::optional<at::Tensor>& background) {
  const DensityCall call =
      prepare_density("composite_density", sigma, rgb, deltas, t, ray_offsets, background);
  auto [out_rgb, depth, acc, weights] = allocate_density_outputs(call);
  AT_DISPATCH_FLOATING_TYPES(sigma.scalar_type(), "composite_density_fwd_cuda", [&] {
    cuda::launch_per_item(sigma, call.n_rays, density_forward_kernel<scalar_t>,
                          density_inputs<scalar_t>(call),
                          density_outputs<scalar_t>(out_rgb, depth, acc, weights));
  });
  return {out_rgb, depth, acc, weights};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> composite_density_bwd_cuda(
    const std::optional<at::Tensor>& grad_rgb, const std::optional<at::Tensor>& grad_depth,
    const std::optional<at::Tensor>& grad_acc, const std::optional<at::Tensor>& grad_weights,
    const at::Tensor& sigma, const at::Tensor& rgb, const at::Tensor& deltas,
    const std::optional<at::Tensor>& t, const std::optional<at::Tensor>& ray_offsets,
    const std::optional<at::Tensor>& background) {
  const char* op = "composite_density_bwd";
  const DensityCall call = prepare_density(op, sigma, rgb, deltas, t, ray_offsets, background);
  DensityGradTensors g =
      prepare_density_grads(op, call, grad_rgb, grad_depth, grad_acc, grad_weights);
  AT_DISPATCH_FLOATING_TYPES(sigma.scalar_type(), "composite_density_bwd_cuda", [&] {
    cuda::launch_per_item(sigma, call.n_rays, density_backward_kernel<scalar_t>,
                          density_inputs<scalar_t>(call), density_grads<scalar_t>(g));
  });
  return {g.grad_sigma, g.grad_rgb_samples, g.grad_t};
}

}  // namespace
}  // namespace fastfield

TORCH_LIBRARY_IMPL(fastfield, CUDA, m) {
  m.impl("composite_density_fwd", &fastfield::composite_density_fwd_cuda);
  m.impl("composite_density_bwd", &fastfield::composite_density_bwd_cuda);
}
