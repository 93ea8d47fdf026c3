// Host-side half of the density drivers, shared by density_cpu.cpp and density_cuda.cu:
// argument checks, contiguous copies, output allocation and the raw-pointer views that the
// per-ray functions in density.h consume.
#pragma once

#include <ATen/core/Tensor.h>
#include <optional>

#include <tuple>

#include "../common/tensor_args.h"
#include "density.h"

namespace fastfield {

// Checked, contiguous inputs of one composite_density call.
struct DensityCall {
  at::Tensor sigma, rgb, deltas, t, ray_offsets, background;  // t, ray_offsets, background may be undefined
  int64_t n_rays = 0;
  int64_t per_ray = 0;  // samples per ray in the padded layout, 0 when packed
  int64_t n_samples = 0;
};

DensityCall prepare_density(const char* op, const at::Tensor& sigma, const at::Tensor& rgb,
                            const at::Tensor& deltas, const std::optional<at::Tensor>& t,
                            const std::optional<at::Tensor>& ray_offsets,
                            const std::optional<at::Tensor>& background);

// (rgb [n_rays, 3], depth [n_rays] or [0] when t is absent, acc [n_rays], weights like sigma)
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> allocate_density_outputs(
    const DensityCall& call);

// Incoming gradients checked against `call` and made contiguous (undefined stays undefined);
// outgoing (grad_sigma, grad_rgb, grad_t [0] when t is absent) allocated.
struct DensityGradTensors {
  at::Tensor grad_rgb, grad_depth, grad_acc, grad_weights;
  at::Tensor grad_sigma, grad_rgb_samples, grad_t;
};

DensityGradTensors prepare_density_grads(const char* op, const DensityCall& call,
                                         const std::optional<at::Tensor>& grad_rgb,
                                         const std::optional<at::Tensor>& grad_depth,
                                         const std::optional<at::Tensor>& grad_acc,
                                         const std::optional<at::Tensor>& grad_weights);

template <typename scalar_t>
DensityInputs<scalar_t> density_inputs(const DensityCall& call) {
  return {call.n_rays,
          call.per_ray,
          call.n_samples,
          data_or_null<int64_t>(call.ray_offsets),
          call.sigma.data_ptr<scalar_t>(),
          call.deltas.data_ptr<scalar_t>(),
          call.rgb.data_ptr<scalar_t>(),
          call.t.defined() ? call.t.data_ptr<scalar_t>() : nullptr,
          call.background.defined() ? call.background.data_ptr<scalar_t>() : nullptr,
          call.background.defined() && call.background.dim() == 2 ? 3 : 0};
}

template <typename scalar_t>
DensityOutputs<scalar_t> density_outputs(at::Tensor& rgb, at::Tensor& depth, at::Tensor& acc,
                                         at::Tensor& weights) {
  return {rgb.data_ptr<scalar_t>(), depth.numel() > 0 ? depth.data_ptr<scalar_t>() : nullptr,
          acc.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>()};
}

template <typename scalar_t>
DensityGrads<scalar_t> density_grads(DensityGradTensors& g) {
  return {data_or_null<scalar_t>(g.grad_rgb),     data_or_null<scalar_t>(g.grad_depth),
          data_or_null<scalar_t>(g.grad_acc),     data_or_null<scalar_t>(g.grad_weights),
          g.grad_sigma.data_ptr<scalar_t>(),      g.grad_rgb_samples.data_ptr<scalar_t>(),
          g.grad_t.numel() > 0 ? g.grad_t.data_ptr<scalar_t>() : nullptr};
}

}  // namespace fastfield
