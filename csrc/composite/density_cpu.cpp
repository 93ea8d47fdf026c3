// CPU driver of composite_density: a vectorised bulk pass computes exp(-sigma delta) for a block
// of rays, then the shared per-ray scans of density.h run over the block.
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "../common/cpu_parallel.h"
#include "../common/fast_exp_cpu.h"
#include "density_host.h"

namespace fastfield {
namespace {

template <typename scalar_t>
FF_CPU_MULTIVERSION void fill_decay(const scalar_t* __restrict__ sigma,
                                    const scalar_t* __restrict__ delta,
                                    scalar_t* __restrict__ decay, int64_t n) {
  for (int64_t i = 0; i < n; ++i) decay[i] = density_decay(sigma[i], delta[i], cpu::FastExp{});
}

// Runs body(ray, decay, scratch, first) for every ray: decay is a DecayTable over the ray's
// block and scratch[i - first] a free in-cache entry for each sample of the block.
template <typename scalar_t, typename Body>
void for_each_ray_with_decay(const DensityInputs<scalar_t>& in, const Body& body) {
  cpu::for_each_ray_block<scalar_t>(
      in.n_rays, in.offsets, in.per_ray, in.n_samples,
      [&](int64_t first, int64_t last, SampleRange span, std::vector<scalar_t>& buffer) {
        const int64_t n = span.end - span.begin;
        buffer.resize(static_cast<size_t>(2 * n));
        fill_decay(in.sigma + span.begin, in.delta + span.begin, buffer.data(), n);
        const DecayTable<scalar_t> decay{buffer.data(), span.begin};
        for (int64_t ray = first; ray < last; ++ray) {
          body(ray, decay, buffer.data() + n, span.begin);
        }
      });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> composite_density_fwd_cpu(
    const at::Tensor& sigma, const at::Tensor& rgb, const at::Tensor& deltas,
    const std::optional<at::Tensor>& t, const std::optional<at::Tensor>& ray_offsets,
    const std::optional<at::Tensor>& background) {
  const DensityCall call =
      prepare_density("composite_density", sigma, rgb, deltas, t, ray_offsets, background);
  auto [out_rgb, depth, acc, weights] = allocate_density_outputs(call);
  AT_DISPATCH_FLOATING_TYPES(sigma.scalar_type(), "composite_density_fwd_cpu", [&] {
    const auto in = density_inputs<scalar_t>(call);
    const auto out = density_outputs<scalar_t>(out_rgb, depth, acc, weights);
    for_each_ray_with_decay(in, [&](int64_t ray, const DecayTable<scalar_t>& decay, scalar_t*,
                                    int64_t) { density_forward_one_ray(in, decay, out, ray); });
  });
  return {out_rgb, depth, acc, weights};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> composite_density_bwd_cpu(
    const std::optional<at::Tensor>& grad_rgb, const std::optional<at::Tensor>& grad_depth,
    const std::optional<at::Tensor>& grad_acc, const std::optional<at::Tensor>& grad_weights,
    const at::Tensor& sigma, const at::Tensor& rgb, const at::Tensor& deltas,
    const std::optional<at::Tensor>& t, const std::optional<at::Tensor>& ray_offsets,
    const std::optional<at::Tensor>& background) {
  const char* op = "composite_density_bwd";
  const DensityCall call = prepare_density(op, sigma, rgb, deltas, t, ray_offsets, background);
  DensityGradTensors g =
      prepare_density_grads(op, call, grad_rgb, grad_depth, grad_acc, grad_weights);
  AT_DISPATCH_FLOATING_TYPES(sigma.scalar_type(), "composite_density_bwd_cpu", [&] {
    const auto in = density_inputs<scalar_t>(call);
    const auto grads = density_grads<scalar_t>(g);
    for_each_ray_with_decay(in, [&](int64_t ray, const DecayTable<scalar_t>& decay,
                                    scalar_t* scratch, int64_t first) {
      density_backward_one_ray(in, decay, grads, ray, scratch, first);
    });
  });
  return {g.grad_sigma, g.grad_rgb_samples, g.grad_t};
}

}  // namespace
}  // namespace fastfield

TORCH_LIBRARY_IMPL(fastfield, CPU, m) {
  m.impl("composite_density_fwd", &fastfield::composite_density_fwd_cpu);
  m.impl("composite_density_bwd", &fastfield::composite_density_bwd_cpu);
}
