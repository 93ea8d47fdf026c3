// Density (NeRF) compositing: the math of composite_density_fwd / _bwd for one ray, run on CPU
// and CUDA by the drivers of density_host.h.
//
//   alpha_i = 1 - exp(-sigma_i delta_i),  T_i = prod_{j<i} exp(-sigma_j delta_j),  w_i = alpha_i T_i
//   rgb = sum w_i c_i + (1 - acc) background,  acc = sum w_i,  depth = sum w_i t_i
//
// Gradients (see compositing.h for dL/dalpha): dL/dsigma_i = dL/dalpha_i exp(-sigma_i delta_i)
// delta_i, dL/dc_i = g_rgb w_i, dL/dt_i = g_depth w_i; v_i = g_rgb . (c_i - background) +
// g_depth t_i + g_acc + g_weights_i.
#pragma once

#include <cstdint>

#include "../common/host_device.h"
#include "../common/math.h"
#include "compositing.h"

namespace fastfield {

// exp(-sigma delta): the factor sample i leaves on the transmittance (alpha = 1 - this).
template <typename scalar_t, typename Exp>
FF_HOST_DEVICE FF_INLINE scalar_t density_decay(scalar_t sigma, scalar_t delta, const Exp& exp_fn) {
  return exp_fn(-sigma * delta);
}

// Where the decay of sample i comes from: computed on the spot (CUDA) ...
template <typename scalar_t, typename Exp>
struct DecayFromDensity {
  const scalar_t* __restrict__ sigma;
  const scalar_t* __restrict__ delta;
  Exp exp_fn;
  FF_HOST_DEVICE FF_INLINE scalar_t operator()(int64_t i) const {
    return density_decay(sigma[i], delta[i], exp_fn);
  }
};

// ... or read from a table filled by a vectorised bulk pass (CPU); table[0] is sample `first`.
template <typename scalar_t>
struct DecayTable {
  const scalar_t* __restrict__ table;
  int64_t first;
  FF_HOST_DEVICE FF_INLINE scalar_t operator()(int64_t i) const { return table[i - first]; }
};

// Packed layout: sample arrays are [n_samples] (rgb [n_samples, 3]) and ray r owns
// offsets[r]:offsets[r+1]. Padded: offsets == nullptr and ray r owns [r * per_ray, (r+1) * per_ray).
template <typename scalar_t>
struct DensityInputs {
  int64_t n_rays;
  int64_t per_ray;
  int64_t n_samples;
  const int64_t* offsets;             // [n_rays + 1] or nullptr
  const scalar_t* sigma;              // [n_samples]
  const scalar_t* delta;              // [n_samples]
  const scalar_t* rgb;                // [n_samples, 3]
  const scalar_t* t;                  // [n_samples] or nullptr
  const scalar_t* background;         // [3] or [n_rays, 3] or nullptr
  int64_t background_stride;          // 0 for one colour, 3 for one per ray
};

template <typename scalar_t>
struct DensityOutputs {
  scalar_t* rgb;      // [n_rays, 3]
  scalar_t* depth;    // [n_rays] or nullptr
  scalar_t* acc;      // [n_rays]
  scalar_t* weights;  // [n_samples]
};

template <typename scalar_t>
struct DensityGrads {
  const scalar_t* grad_rgb;      // [n_rays, 3] or nullptr (incoming)
  const scalar_t* grad_depth;    // [n_rays] or nullptr
  const scalar_t* grad_acc;      // [n_rays] or nullptr
  const scalar_t* grad_weights;  // [n_samples] or nullptr
  scalar_t* grad_sigma;          // [n_samples] (outgoing)
  scalar_t* grad_rgb_samples;    // [n_samples, 3]
  scalar_t* grad_t;              // [n_samples] or nullptr
};

template <typename scalar_t, typename Decay>
struct DensitySamples {
  Decay decay;
  const scalar_t* __restrict__ rgb;
  const scalar_t* __restrict__ t_values;
  FF_HOST_DEVICE FF_INLINE scalar_t factor(int64_t i) const { return decay(i); }
  FF_HOST_DEVICE FF_INLINE scalar_t alpha(int64_t i) const { return scalar_t(1) - decay(i); }
  FF_HOST_DEVICE FF_INLINE Opacity<scalar_t> opacity(int64_t i) const {
    const scalar_t f = decay(i);
    return {scalar_t(1) - f, f};
  }
  FF_HOST_DEVICE FF_INLINE scalar_t color(int64_t i, int c) const { return rgb[3 * i + c]; }
  FF_HOST_DEVICE FF_INLINE scalar_t t(int64_t i) const { return t_values[i]; }
};

// The per-ray outputs from the composited sums, with the background behind (1 - acc).
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void store_density_ray(const DensityInputs<scalar_t>& in,
                                                const DensityOutputs<scalar_t>& out, int64_t ray,
                                                CompositeResult<scalar_t> r) {
  if (in.background != nullptr) {
    const scalar_t* bg = in.background + ray * in.background_stride;
    for (int c = 0; c < 3; ++c) r.rgb[c] += (scalar_t(1) - r.acc) * bg[c];
  }
  for (int c = 0; c < 3; ++c) out.rgb[3 * ray + c] = r.rgb[c];
  out.acc[ray] = r.acc;
  if (out.depth != nullptr) out.depth[ray] = r.depth;
}

template <typename scalar_t, typename Decay>
FF_HOST_DEVICE FF_INLINE void density_forward_one_ray(const DensityInputs<scalar_t>& in,
                                                      const Decay& decay,
                                                      const DensityOutputs<scalar_t>& out,
                                                      int64_t ray) {
  const SampleRange range = ray_samples(in.offsets, in.per_ray, in.n_samples, ray);
  const DensitySamples<scalar_t, Decay> samples{decay, in.rgb, in.t};
  const CompositeResult<scalar_t> r =
      in.t != nullptr
          ? composite_forward_ray<scalar_t, true>(samples, range.begin, range.end, out.weights)
          : composite_forward_ray<scalar_t, false>(samples, range.begin, range.end, out.weights);
  store_density_ray(in, out, ray, r);
}

// The same ray by a tile (compositing.h, tile.h); lane 0 writes the per-ray outputs.
template <typename scalar_t, class Tile, typename Decay>
FF_HOST_DEVICE FF_INLINE void density_forward_tile(const Tile& tile,
                                                   const DensityInputs<scalar_t>& in,
                                                   const Decay& decay,
                                                   const DensityOutputs<scalar_t>& out,
                                                   int64_t ray) {
  zero_unowned(tile, in, ray, [&](int64_t i) { out.weights[i] = scalar_t(0); });
  const SampleRange range = ray_samples(in.offsets, in.per_ray, in.n_samples, ray);
  const DensitySamples<scalar_t, Decay> samples{decay, in.rgb, in.t};
  const CompositeResult<scalar_t> r =
      in.t != nullptr ? composite_forward_tile<scalar_t, true>(tile, samples, range.begin,
                                                               range.end, out.weights)
                      : composite_forward_tile<scalar_t, false>(tile, samples, range.begin,
                                                                range.end, out.weights);
  tile.leader([&] { store_density_ray(in, out, ray, r); });
}

// The incoming gradients of one ray's outputs, and the terms of v_i that are the same for every
// sample: g_acc - g_rgb . background.
template <typename scalar_t>
struct DensityRayGrads {
  scalar_t rgb[3];
  scalar_t depth;
  scalar_t common;
};

template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE DensityRayGrads<scalar_t> density_ray_grads(
    const DensityInputs<scalar_t>& in, const DensityGrads<scalar_t>& g, int64_t ray) {
  DensityRayGrads<scalar_t> r{{0, 0, 0}, 0, 0};
  if (g.grad_rgb != nullptr) {
    for (int c = 0; c < 3; ++c) r.rgb[c] = g.grad_rgb[3 * ray + c];
  }
  r.depth = g.grad_depth != nullptr ? g.grad_depth[ray] : scalar_t(0);
  r.common = g.grad_acc != nullptr ? g.grad_acc[ray] : scalar_t(0);
  if (in.background != nullptr) {
    const scalar_t* bg = in.background + ray * in.background_stride;
    r.common -= r.rgb[0] * bg[0] + r.rgb[1] * bg[1] + r.rgb[2] * bg[2];
  }
  return r;
}

// v_i = dL/dw_i of sample i.
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE scalar_t density_value(const DensityInputs<scalar_t>& in,
                                                const DensityGrads<scalar_t>& g,
                                                const DensityRayGrads<scalar_t>& r, int64_t i) {
  scalar_t v = r.common + r.rgb[0] * in.rgb[3 * i] + r.rgb[1] * in.rgb[3 * i + 1] +
               r.rgb[2] * in.rgb[3 * i + 2];
  if (in.t != nullptr) v += r.depth * in.t[i];
  if (g.grad_weights != nullptr) v += g.grad_weights[i];
  return v;
}

// The gradients of sample i's inputs from dL/da_i and w_i.
template <typename scalar_t, typename Decay>
FF_HOST_DEVICE FF_INLINE void store_density_grads(const DensityInputs<scalar_t>& in,
                                                  const DensityGrads<scalar_t>& g,
                                                  const DensityRayGrads<scalar_t>& r,
                                                  const Decay& decay, int64_t i,
                                                  scalar_t grad_alpha, scalar_t w) {
  g.grad_sigma[i] = grad_alpha * decay(i) * in.delta[i];
  for (int c = 0; c < 3; ++c) g.grad_rgb_samples[3 * i + c] = r.rgb[c] * w;
  if (g.grad_t != nullptr) g.grad_t[i] = r.depth * w;
}

// scratch[i - scratch_first] holds T_i between the sweeps; pass g.grad_sigma and 0 when there
// is no other buffer (see composite_backward_ray).
template <typename scalar_t, typename Decay>
FF_HOST_DEVICE FF_INLINE void density_backward_one_ray(const DensityInputs<scalar_t>& in,
                                                       const Decay& decay,
                                                       const DensityGrads<scalar_t>& g,
                                                       int64_t ray, scalar_t* scratch,
                                                       int64_t scratch_first) {
  const SampleRange range = ray_samples(in.offsets, in.per_ray, in.n_samples, ray);
  const DensityRayGrads<scalar_t> r = density_ray_grads(in, g, ray);
  const DensitySamples<scalar_t, Decay> samples{decay, in.rgb, in.t};
  composite_backward_ray<scalar_t>(
      samples, range.begin, range.end, scratch, scratch_first,
      [&](int64_t i) { return density_value(in, g, r, i); },
      [&](int64_t i, scalar_t grad_alpha, scalar_t w) {
        store_density_grads(in, g, r, decay, i, grad_alpha, w);
      });
}

// The same ray by a tile; scratch[i - scratch_first] holds T at each chunk's first sample i
// (see composite_backward_tile).
template <typename scalar_t, class Tile, typename Decay>
FF_HOST_DEVICE FF_INLINE void density_backward_tile(const Tile& tile,
                                                    const DensityInputs<scalar_t>& in,
                                                    const Decay& decay,
                                                    const DensityGrads<scalar_t>& g, int64_t ray,
                                                    scalar_t* scratch, int64_t scratch_first) {
  zero_unowned(tile, in, ray, [&](int64_t i) {
    g.grad_sigma[i] = scalar_t(0);
    for (int c = 0; c < 3; ++c) g.grad_rgb_samples[3 * i + c] = scalar_t(0);
    if (g.grad_t != nullptr) g.grad_t[i] = scalar_t(0);
  });
  const SampleRange range = ray_samples(in.offsets, in.per_ray, in.n_samples, ray);
  const DensityRayGrads<scalar_t> r = density_ray_grads(in, g, ray);
  const DensitySamples<scalar_t, Decay> samples{decay, in.rgb, in.t};
  composite_backward_tile<scalar_t>(
      tile, samples, range.begin, range.end, scratch, scratch_first,
      [&](int64_t i) { return density_value(in, g, r, i); },
      [&](int, int64_t i, scalar_t grad_alpha, scalar_t w) {
        store_density_grads(in, g, r, decay, i, grad_alpha, w);
      });
}

}  // namespace fastfield
