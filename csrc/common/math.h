// Scalar helpers shared by every kernel family (host and device).
#pragma once

#include <cmath>
#include <cstdint>

#include "host_device.h"

namespace fastfield {

// exp through the standard library: std::exp on the host, the CUDA math library on the device.
struct StdExp {
  template <typename scalar_t>
  FF_HOST_DEVICE FF_INLINE scalar_t operator()(scalar_t x) const {
    using std::exp;
    return exp(x);
  }
};

// Clamp that lets NaN through, as torch.clip does (std::fmin/fmax would drop it).
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE scalar_t clip_keep_nan(scalar_t x, scalar_t lo, scalar_t hi) {
  return x < lo ? lo : (x > hi ? hi : x);
}

// min that lets NaN through from either side, as torch.minimum does (std::fmin would drop it).
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE scalar_t minimum_keep_nan(scalar_t a, scalar_t b) {
  return (a < b || a != a) ? a : b;
}

// x goes before y in torch.sort's ascending order, which puts NaN last. Branch-free, so loops
// over it vectorise.
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE bool sorts_before(scalar_t x, scalar_t y) {
  return (x < y) | ((y != y) & (x == x));
}

template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE scalar_t relu(scalar_t x) {
  return x > scalar_t(0) ? x : scalar_t(0);
}

template <typename scalar_t, typename Exp>
FF_HOST_DEVICE FF_INLINE scalar_t sigmoid(scalar_t x, const Exp& exp_fn) {
  return scalar_t(1) / (scalar_t(1) + exp_fn(-x));
}

// Samples of ray `ray` in a CSR layout: [begin, end) clamped into [0, n_samples], so that no
// offsets (even unchecked, decreasing or out-of-range ones on CUDA) can index outside the data.
// offsets == nullptr means the padded layout: ray r owns [r * per_ray, (r + 1) * per_ray).
struct SampleRange {
  int64_t begin;
  int64_t end;
};

FF_HOST_DEVICE FF_INLINE SampleRange ray_samples(const int64_t* offsets, int64_t per_ray,
                                                 int64_t n_samples, int64_t ray) {
  if (offsets == nullptr) return {ray * per_ray, (ray + 1) * per_ray};
  int64_t begin = offsets[ray], end = offsets[ray + 1];
  begin = begin < 0 ? 0 : (begin > n_samples ? n_samples : begin);
  end = end < begin ? begin : (end > n_samples ? n_samples : end);
  return {begin, end};
}

// The samples next to ray `ray` that no ray owns (possible only with unchecked invalid offsets):
// after it, [its end, the next ray's begin) or, for the last ray, [its end, n_samples); before
// it, for ray 0 only, [0, its begin). Empty for valid offsets and for the padded layout. Every
// sample k of [0, n_samples) is in some ray's ray_samples or in one of these ranges: take the
// last ray r whose begin <= k (none: k is before ray 0); k is in r's samples, or after them and
// before the next ray's begin (> k), or past the last ray. (Clamped as ray_samples clamps them,
// offsets leave such samples only before the first ray and after the last.) Kernels that fill
// these with zeros need no zero-initialised outputs.
struct UnownedSamples {
  SampleRange before;
  SampleRange after;
};

FF_HOST_DEVICE FF_INLINE UnownedSamples unowned_samples(const int64_t* offsets, int64_t n_rays,
                                                        int64_t n_samples, int64_t ray) {
  if (offsets == nullptr) return {{0, 0}, {0, 0}};
  const SampleRange own = ray_samples(offsets, 0, n_samples, ray);
  const int64_t next =
      ray + 1 < n_rays ? ray_samples(offsets, 0, n_samples, ray + 1).begin : n_samples;
  return {{0, ray == 0 ? own.begin : 0}, {own.end, next > own.end ? next : own.end}};
}

}  // namespace fastfield
