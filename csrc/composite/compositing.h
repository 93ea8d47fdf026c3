// Front-to-back compositing of one ray, shared by density (NeRF) and SDF (NeuS) rendering and by
// their CPU and CUDA drivers.
//
//   w_i = a_i T_i,   T_0 = 1,   T_{i+1} = T_i f_i
//   rgb = sum_i w_i c_i,   acc = sum_i w_i,   depth = sum_i w_i t_i
//
// a_i is the opacity of sample i and f_i the factor it leaves on the transmittance:
// density f = exp(-sigma delta) (= 1 - a, without cancellation), NeuS f = 1 - a + 1e-7.
//
// Backward, with v_i = dL/dw_i (= g_rgb . c_i + g_depth t_i + g_acc + g_weights_i):
// w_k for k > i carries the factor f_i, so
//
//   dL/da_i = T_i (v_i - R_i),   R_i = sum_{k > i} v_k a_k prod_{i < j < k} f_j,
//
// with R accumulated back to front (R_{i-1} = v_i a_i + f_i R_i). Nothing divides by f_i, so it
// stays exact at a = 1 (nerf-pytorch's last delta of 1e10), and no "total minus prefix"
// subtraction loses the small terms behind an opaque sample.
//
// A `Samples` type supplies alpha(i), factor(i), color(i, channel) and, with depth, t(i).
#pragma once

#include <cstdint>

#include "../common/host_device.h"

namespace fastfield {

template <typename scalar_t>
struct CompositeResult {
  scalar_t rgb[3];
  scalar_t acc;
  scalar_t depth;
};

// Forward over samples [begin, end); writes w_i into weights[i] and a_i into alphas[i] (either
// may be nullptr; alphas lets a caller output the opacities without evaluating them twice).
template <typename scalar_t, bool kWithDepth, typename Samples>
FF_HOST_DEVICE FF_INLINE CompositeResult<scalar_t> composite_forward_ray(
    const Samples& samples, int64_t begin, int64_t end, scalar_t* __restrict__ weights,
    scalar_t* __restrict__ alphas = nullptr) {
  CompositeResult<scalar_t> out{{0, 0, 0}, 0, 0};
  scalar_t transmittance = 1;
  for (int64_t i = begin; i < end; ++i) {
    const scalar_t a = samples.alpha(i);
    const scalar_t w = a * transmittance;
    if (weights != nullptr) weights[i] = w;
    if (alphas != nullptr) alphas[i] = a;
    out.rgb[0] += w * samples.color(i, 0);
    out.rgb[1] += w * samples.color(i, 1);
    out.rgb[2] += w * samples.color(i, 2);
    out.acc += w;
    if constexpr (kWithDepth) out.depth += w * samples.t(i);
    transmittance *= samples.factor(i);
  }
  return out;
}

// Backward over samples [begin, end). scratch[i - scratch_first] holds T_i between the two
// sweeps (the CUDA driver lends the gradient output that `emit` fills, the CPU driver a buffer
// that stays in cache). For each sample, back to front, calls emit(i, dL/da_i, w_i) after the
// scratch entry has been read, so emit may overwrite it. value(i) returns v_i. Returns acc
// (sum of w_i), recomputed in the forward sweep.
template <typename scalar_t, typename Samples, typename Value, typename Emit>
FF_HOST_DEVICE FF_INLINE scalar_t composite_backward_ray(const Samples& samples, int64_t begin,
                                                         int64_t end, scalar_t* scratch,
                                                         int64_t scratch_first,
                                                         const Value& value, const Emit& emit) {
  scratch -= scratch_first;
  scalar_t transmittance = 1;
  scalar_t acc = 0;
  for (int64_t i = begin; i < end; ++i) {
    scratch[i] = transmittance;
    acc += samples.alpha(i) * transmittance;
    transmittance *= samples.factor(i);
  }
  scalar_t behind = 0;  // R_i
  for (int64_t i = end - 1; i >= begin; --i) {
    const scalar_t t_i = scratch[i];
    const scalar_t a = samples.alpha(i);
    const scalar_t v = value(i);
    emit(i, t_i * (v - behind), a * t_i);
    const scalar_t own = v * a;  // off the recurrence: R then costs one (fused) multiply-add
    behind = samples.factor(i) * behind + own;
  }
  return acc;
}

}  // namespace fastfield
