// CPU driver of composite_sdf. Per ray: a vectorised bulk pass (FF_CPU_MULTIVERSION) evaluates
// neus_alpha (sdf.h) for the ray's samples into in-cache tables (alpha, and in the backward its
// three partials), then the shared per-ray scan of sdf.h runs over the tables.
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "../common/cpu_parallel.h"
#include "../common/fast_exp_cpu.h"
#include "sdf_host.h"

namespace fastfield {
namespace {

// Scratch entries one ray needs: its tables plus one entry per composite sample (T in the
// backward).
template <bool kPartials>
int64_t scratch_size(const SdfRaySpan& span) {
  return (kPartials ? 4 : 1) * (span.sdf.end - span.sdf.begin) + (span.out.end - span.out.begin);
}

// The ray's colours are read by the scan after the bulk pass: fetch them meanwhile (a ray's
// samples start a new stream that the hardware prefetcher would first have to detect).
template <typename scalar_t>
inline void prefetch_colors(const SdfInputs<scalar_t>& in, const SdfRaySpan& span) {
  const char* first = reinterpret_cast<const char*>(in.rgb + 3 * span.sdf.begin);
  const char* last = reinterpret_cast<const char*>(in.rgb + 3 * span.sdf.end);
  for (const char* p = first; p < last; p += 64) __builtin_prefetch(p);
}

// alpha[j] of samples [0, n) of one ray (one inv_s).
template <typename scalar_t>
FF_CPU_MULTIVERSION void fill_alpha(const scalar_t* __restrict__ sdf,
                                    const scalar_t* __restrict__ cos,
                                    const scalar_t* __restrict__ dist, scalar_t inv_s,
                                    scalar_t anneal, scalar_t* __restrict__ alpha, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    alpha[j] = neus_alpha(sdf[j], cos[j], dist[j], inv_s, anneal, cpu::FastExp{}).alpha;
  }
}

// alpha[j] and its partials d_sdf[j], d_cos[j], d_inv_s[j] of samples [0, n).
template <typename scalar_t>
FF_CPU_MULTIVERSION void fill_alpha_and_partials(
    const scalar_t* __restrict__ sdf, const scalar_t* __restrict__ cos,
    const scalar_t* __restrict__ dist, scalar_t inv_s, scalar_t anneal,
    scalar_t* __restrict__ alpha, scalar_t* __restrict__ d_sdf, scalar_t* __restrict__ d_cos,
    scalar_t* __restrict__ d_inv_s, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const NeusAlpha<scalar_t> a =
        neus_alpha(sdf[j], cos[j], dist[j], inv_s, anneal, cpu::FastExp{});
    alpha[j] = a.alpha;
    d_sdf[j] = a.d_sdf;
    d_cos[j] = a.d_cos;
    d_inv_s[j] = a.d_inv_s;
  }
}

template <bool kBackground, typename scalar_t>
void forward_ray(const SdfInputs<scalar_t>& in, const SdfOutputs<scalar_t>& out, int64_t ray,
                 scalar_t* scratch) {
  const SdfRaySpan span = sdf_ray_span(in, ray);
  const int64_t k = span.sdf.begin, n = span.sdf.end - k;
  prefetch_colors(in, span);
  fill_alpha(in.sdf + k, in.cos + k, in.dists + k, ray_inv_s(in, ray), in.cos_anneal_ratio,
             scratch, n);
  const NeusTable<scalar_t> table{scratch, nullptr, nullptr, nullptr, k};
  sdf_forward_one_ray<kBackground>(in, span, table, out, ray);
}

template <bool kBackground, typename scalar_t>
void backward_ray(const SdfInputs<scalar_t>& in, const SdfGrads<scalar_t>& g, int64_t ray,
                  scalar_t* scratch) {
  const SdfRaySpan span = sdf_ray_span(in, ray);
  const int64_t k = span.sdf.begin, n = span.sdf.end - k;
  const NeusTable<scalar_t> table{scratch, scratch + n, scratch + 2 * n, scratch + 3 * n, k};
  prefetch_colors(in, span);
  fill_alpha_and_partials(in.sdf + k, in.cos + k, in.dists + k, ray_inv_s(in, ray),
                          in.cos_anneal_ratio, scratch, scratch + n, scratch + 2 * n,
                          scratch + 3 * n, n);
  sdf_backward_one_ray<kBackground>(in, span, table, g, ray, scratch + 4 * n, span.out.begin);
}

// Runs fn(ray, scratch) for every ray, scratch holding scratch_size<kPartials> entries; the
// buffer is per thread and reused from ray to ray, so the tables stay in cache.
template <bool kPartials, typename scalar_t, typename Fn>
void for_each_ray_with_scratch(const SdfInputs<scalar_t>& in, const Fn& fn) {
  cpu::for_each_ray_block<scalar_t>(
      in.n_rays, in.offsets, in.n_in, in.n_samples,
      [&](int64_t first, int64_t last, SampleRange, std::vector<scalar_t>& buffer) {
        for (int64_t ray = first; ray < last; ++ray) {
          const size_t need = static_cast<size_t>(scratch_size<kPartials>(sdf_ray_span(in, ray)));
          if (buffer.size() < need) buffer.resize(need);
          fn(ray, buffer.data());
        }
      });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> composite_sdf_fwd_cpu(
    const at::Tensor& sdf, const at::Tensor& cos, const at::Tensor& dists,
    const at::Tensor& inv_s, const at::Tensor& rgb, double cos_anneal_ratio,
    const std::optional<at::Tensor>& inside, const std::optional<at::Tensor>& bg_alpha,
    const std::optional<at::Tensor>& bg_rgb, const std::optional<at::Tensor>& ray_offsets) {
  const SdfCall call = prepare_sdf("composite_sdf", sdf, cos, dists, inv_s, rgb,
                                   cos_anneal_ratio, inside, bg_alpha, bg_rgb, ray_offsets);
  auto [out_rgb, acc, weights, alpha] = allocate_sdf_outputs(call);
  AT_DISPATCH_FLOATING_TYPES(sdf.scalar_type(), "composite_sdf_fwd_cpu", [&] {
    const auto in = sdf_inputs<scalar_t>(call);
    const auto out = sdf_outputs<scalar_t>(out_rgb, acc, weights, alpha);
    if (in.bg_alpha != nullptr) {
      for_each_ray_with_scratch<false>(
          in, [&](int64_t ray, scalar_t* scratch) { forward_ray<true>(in, out, ray, scratch); });
    } else {
      for_each_ray_with_scratch<false>(
          in, [&](int64_t ray, scalar_t* scratch) { forward_ray<false>(in, out, ray, scratch); });
    }
  });
  return {out_rgb, acc, weights, alpha};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
composite_sdf_bwd_cpu(const std::optional<at::Tensor>& grad_rgb,
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
  AT_DISPATCH_FLOATING_TYPES(sdf.scalar_type(), "composite_sdf_bwd_cpu", [&] {
    const auto in = sdf_inputs<scalar_t>(call);
    const auto grads = sdf_grads<scalar_t>(g);
    if (in.bg_alpha != nullptr) {
      for_each_ray_with_scratch<true>(
          in, [&](int64_t ray, scalar_t* scratch) { backward_ray<true>(in, grads, ray, scratch); });
    } else {
      for_each_ray_with_scratch<true>(
          in, [&](int64_t ray, scalar_t* scratch) { backward_ray<false>(in, grads, ray, scratch); });
    }
  });
  return {g.grad_sdf, g.grad_cos, g.grad_inv_s, g.grad_rgb_samples, g.grad_bg_alpha,
          g.grad_bg_rgb};
}

}  // namespace
}  // namespace fastfield

TORCH_LIBRARY_IMPL(fastfield, CPU, m) {
  m.impl("composite_sdf_fwd", &fastfield::composite_sdf_fwd_cpu);
  m.impl("composite_sdf_bwd", &fastfield::composite_sdf_bwd_cpu);
}
