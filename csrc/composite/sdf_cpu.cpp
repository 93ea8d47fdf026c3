// CPU kernels of composite_sdf: the drivers of sdf_host.h on the CPU launcher, with the rays run
// by SdfRays<CpuLauncher> below. Per ray, a vectorised bulk pass (FF_CPU_MULTIVERSION) evaluates
// neus_alpha (sdf.h) for the ray's samples into in-cache tables (alpha, and in the backward its
// three partials). The forward then runs sdf.h's per-ray scan over the tables. The backward
// keeps only the recurrences in the serial scan (compositing.h's composite_backward_ray) and
// evaluates sdf.h's per-sample formulas around it in vectorised passes: the composited alpha and
// v_i before, the per-sample gradients (sample_grads, store_sample_grads) after -- the formulas
// that sdf_backward_tile applies inline in the general SdfRays (CUDA). With the tile emulation
// switched on (tests), the CUDA kernels' tile code runs instead (tile_cpu.h).
#include <torch/library.h>

#include <vector>

#include "../common/cpu_launch.h"
#include "../common/fast_exp_cpu.h"
#include "../common/tile_cpu.h"
#include "sdf_host.h"

namespace fastfield {
namespace {

// Scratch entries one ray needs: the forward's alpha table, or the backward's four SDF-sample
// tables and three composite-sample tables.
template <bool kBackward>
int64_t scratch_size(const SdfRaySpan& span) {
  const int64_t n = span.sdf.end - span.sdf.begin, m = span.out.end - span.out.begin;
  return kBackward ? 4 * n + 3 * m : n;
}

// The scan reads the ray's colours (and background model) after the bulk pass: fetch them
// meanwhile. Each ray starts new streams that the hardware prefetcher would first have to detect.
inline void prefetch(const void* begin, const void* end) {
  for (const char* p = static_cast<const char*>(begin); p < end; p += 64) __builtin_prefetch(p);
}

template <typename scalar_t>
void prefetch_scan_inputs(const SdfInputs<scalar_t>& in, const SdfRaySpan& span) {
  prefetch(in.rgb + 3 * span.sdf.begin, in.rgb + 3 * span.sdf.end);
  if (in.bg_alpha == nullptr) return;
  prefetch(in.inside + span.sdf.begin, in.inside + span.sdf.end);
  prefetch(in.bg_alpha + span.out.begin, in.bg_alpha + span.out.end);
  prefetch(in.bg_rgb + 3 * span.out.begin, in.bg_rgb + 3 * span.out.end);
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
  prefetch_scan_inputs(in, span);
  fill_alpha(in.sdf + k, in.cos + k, in.dists + k, ray_inv_s(in, ray), in.cos_anneal_ratio,
             scratch, n);
  const NeusTable<scalar_t> table{scratch, nullptr, nullptr, nullptr, k};
  sdf_forward_one_ray<kBackground>(in, span, table, out, ray);
}

// The scan's inputs for the composite samples [i0, i0 + m) of one ray, whose first n are inside
// samples: the composited alpha and v_i = dL/dw_i.
template <typename scalar_t, typename Samples>
FF_CPU_MULTIVERSION void fill_scan_inputs(const Samples& samples,
                                          const RayOutputGrads<scalar_t>& ray_grads,
                                          const scalar_t* grad_weights, int64_t i0, int64_t n,
                                          int64_t m, scalar_t* __restrict__ alpha,
                                          scalar_t* __restrict__ value) {
  for (int64_t j = 0; j < n; ++j) {
    const int64_t i = i0 + j;
    alpha[j] = samples.alpha_inside(i);
    value[j] = weight_gradient(ray_grads, samples.color_inside(i, 0), samples.color_inside(i, 1),
                               samples.color_inside(i, 2),
                               grad_weights != nullptr ? grad_weights[i] : scalar_t(0));
  }
  for (int64_t j = n; j < m; ++j) {  // outside samples (background model only)
    const int64_t i = i0 + j;
    alpha[j] = samples.alpha_outside(i);
    value[j] = weight_gradient(ray_grads, samples.color_outside(i, 0),
                               samples.color_outside(i, 1), samples.color_outside(i, 2),
                               grad_weights != nullptr ? grad_weights[i] : scalar_t(0));
  }
}

// sample_grads and store_sample_grads (sdf.h) for the composite samples [0, m) of one ray, from
// the scan's dL/da (grad_a) and w; the first n are inside samples (with the partials in `table`
// and, with a background model, the mask `inside`). grad_alpha (the alpha output's incoming
// gradient) starts at the ray's first composite sample. Returns the ray's dL/dinv_s.
template <bool kBackground, typename scalar_t>
FF_CPU_MULTIVERSION scalar_t emit_gradients(
    const RayOutputGrads<scalar_t> ray_grads, const NeusTable<scalar_t> table,
    const scalar_t* inside, const scalar_t* grad_alpha, const scalar_t* grad_a,
    const scalar_t* w, int64_t n, int64_t m, scalar_t* __restrict__ grad_sdf,
    scalar_t* __restrict__ grad_cos, scalar_t* __restrict__ grad_rgb,
    scalar_t* __restrict__ grad_bg_alpha, scalar_t* __restrict__ grad_bg_rgb) {
  scalar_t grad_inv_s = 0;
  // OpenMP's simd reduction lets the sum vectorise (a plain loop must keep its order).
#pragma omp simd reduction(+ : grad_inv_s)
  for (int64_t j = 0; j < n; ++j) {
    const SampleGrads<scalar_t> r = sample_grads(
        grad_a[j], grad_alpha != nullptr ? grad_alpha[j] : scalar_t(0), w[j],
        kBackground ? inside[j] : scalar_t(1), table.sample(table.first + j));
    grad_inv_s += store_sample_grads<kBackground, false>(r, ray_grads, j, grad_sdf, grad_cos,
                                                         grad_rgb, grad_bg_alpha, grad_bg_rgb);
  }
  for (int64_t j = n; j < m; ++j) {  // outside samples (background model only)
    const SampleGrads<scalar_t> r =
        sample_grads(grad_a[j], grad_alpha != nullptr ? grad_alpha[j] : scalar_t(0), w[j],
                     scalar_t(0), NeusAlpha<scalar_t>{0, 0, 0, 0});
    store_sample_grads<kBackground, true>(r, ray_grads, j, grad_sdf, grad_cos, grad_rgb,
                                          grad_bg_alpha, grad_bg_rgb);
  }
  return grad_inv_s;
}

// Composite samples read from tables (the alpha that fill_scan_inputs composited).
template <typename scalar_t>
struct TableSamples {
  const scalar_t* __restrict__ alpha_table;
  int64_t first;
  scalar_t alpha(int64_t i) const { return alpha_table[i - first]; }
  scalar_t factor(int64_t i) const { return neus_factor(alpha(i)); }
};

// Scratch: the four SDF-sample tables, then per composite sample the composited alpha, v_i
// (overwritten by dL/da_i) and T_i (overwritten by w_i).
template <bool kBackground, typename scalar_t>
void backward_ray(const SdfInputs<scalar_t>& in, const SdfGrads<scalar_t>& g, int64_t ray,
                  scalar_t* scratch) {
  const SdfRaySpan span = sdf_ray_span(in, ray);
  const int64_t k = span.sdf.begin, n = span.sdf.end - k;
  const int64_t i0 = span.out.begin, m = span.out.end - i0;
  const NeusTable<scalar_t> table{scratch, scratch + n, scratch + 2 * n, scratch + 3 * n, k};
  scalar_t* alpha = scratch + 4 * n;        // composited alpha
  scalar_t* value = alpha + m;              // v_i, then dL/da_i from the scan
  scalar_t* transmittance = value + m;      // T_i, then w_i
  prefetch_scan_inputs(in, span);
  fill_alpha_and_partials(in.sdf + k, in.cos + k, in.dists + k, ray_inv_s(in, ray),
                          in.cos_anneal_ratio, scratch, scratch + n, scratch + 2 * n,
                          scratch + 3 * n, n);
  const RayOutputGrads<scalar_t> ray_grads = ray_output_grads(g, ray);
  fill_scan_inputs(sdf_samples<kBackground>(in, span, table), ray_grads, g.grad_weights, i0, n,
                   m, alpha, value);
  composite_backward_ray<scalar_t>(
      TableSamples<scalar_t>{alpha, i0}, i0, i0 + m, transmittance, i0,
      [&](int64_t i) { return value[i - i0]; },
      [&](int64_t i, scalar_t grad_a, scalar_t w) {
        value[i - i0] = grad_a;
        transmittance[i - i0] = w;
      });
  const RayGradArrays<scalar_t> out = ray_grad_arrays<kBackground>(g, span);
  g.grad_inv_s[ray] = emit_gradients<kBackground>(
      ray_grads, table, kBackground ? in.inside + k : nullptr,
      g.grad_alpha != nullptr ? g.grad_alpha + i0 : nullptr, value, transmittance, n, m, out.sdf,
      out.cos, out.rgb, out.bg_alpha, out.bg_rgb);
}

// Runs fn(ray, scratch) for every ray, scratch holding scratch_size<kBackward> entries; the
// buffer is per thread and reused from ray to ray, so the tables stay in cache.
template <bool kBackward, typename scalar_t, typename Fn>
void for_each_ray_with_scratch(const SdfInputs<scalar_t>& in, const Fn& fn) {
  cpu::for_each_ray_block<scalar_t>(
      in.n_rays, in.offsets, in.n_in, in.n_samples,
      [&](int64_t first, int64_t last, SampleRange, std::vector<scalar_t>& buffer) {
        for (int64_t ray = first; ray < last; ++ray) {
          const size_t need = static_cast<size_t>(scratch_size<kBackward>(sdf_ray_span(in, ray)));
          if (buffer.size() < need) buffer.resize(need);
          fn(ray, buffer.data());
        }
      });
}

}  // namespace

template <>
struct SdfRays<CpuLauncher> {
  static bool fills_unowned() { return cpu::tile_emulation_width() != 0; }

  template <bool kBackground, typename scalar_t>
  static void forward(const at::Tensor& device_of, const SdfInputs<scalar_t>& in,
                      const SdfOutputs<scalar_t>& out) {
    if (cpu::tile_emulation_width() != 0) {
      return cpu::run_emulated(
          [&] { SdfRays<CpuTileLauncher>::forward<kBackground>(device_of, in, out); });
    }
    for_each_ray_with_scratch<false>(in, [&](int64_t ray, scalar_t* scratch) {
      forward_ray<kBackground>(in, out, ray, scratch);
    });
  }

  template <bool kBackground, typename scalar_t>
  static void backward(const at::Tensor& device_of, const SdfInputs<scalar_t>& in,
                       const SdfGrads<scalar_t>& grads) {
    if (cpu::tile_emulation_width() != 0) {
      return cpu::run_emulated(
          [&] { SdfRays<CpuTileLauncher>::backward<kBackground>(device_of, in, grads); });
    }
    for_each_ray_with_scratch<true>(in, [&](int64_t ray, scalar_t* scratch) {
      backward_ray<kBackground>(in, grads, ray, scratch);
    });
  }
};

}  // namespace fastfield

TORCH_LIBRARY_IMPL(fastfield, CPU, m) {
  using fastfield::CpuLauncher;
  m.impl("composite_sdf_fwd", &fastfield::composite_sdf_fwd_driver<CpuLauncher>);
  m.impl("composite_sdf_bwd", &fastfield::composite_sdf_bwd_driver<CpuLauncher>);
}
