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
// A `Samples` type supplies alpha(i), factor(i), opacity(i) (both at once), color(i, channel)
// and, with depth, t(i).
//
// Two implementations of each sweep: a sequential walk of one ray (composite_forward_ray,
// composite_backward_ray: the CPU kernels) and a tile of lanes that walks the ray in chunks of
// kWidth samples (composite_forward_tile, composite_backward_tile: the CUDA kernels, and the
// CPU emulation of tile_cpu.h). In a chunk, lane l takes sample first + l:
//   forward:  T within the chunk by an inclusive product scan of f, times the T carried from the
//             chunk before (multiplicatively: f = 0 still zeroes everything behind it); rgb,
//             acc, depth as per-lane sums over the lane's samples, added up at the end.
//   backward: a first sweep front to back stores T at each chunk's first sample (one value per
//             chunk); the second goes back to front: R_i is the composition of the affine maps
//             m_k(x) = f_k x + v_k a_k of the samples behind i, applied to the R carried from
//             the chunk behind -- a reverse scan of the same recurrence as the walk's, still
//             without a division by f and without total-minus-prefix.
// The products of f run in double (Product) for float32 too. The walk multiplies T, whose low
// bits are as good as random, by one f at a time, and rounds without bias; a scan multiplies
// factors just below 1 with each other, and in float32 those products lose their second-order
// term a_i a_j systematically where it is under half an ulp (a ~ 1e-4: NeRF's empty space) --
// about 0.4 ulp per product, which the carry compounds over the chunks of a ray: 1.3e-5 of the
// depth of a 10000-sample ray, against 1.8e-6 for the walk. In double, T and R are more accurate
// than the float32 walk's, at the cost of two shuffles per scan step instead of one.
#pragma once

#include <cstdint>

#include "../common/host_device.h"
#include "../common/math.h"
#include "../common/tile.h"

namespace fastfield {

// a_i and f_i of one sample, from one evaluation (alpha and factor are not 1 - each other in
// floating point: density's f = exp(-sigma delta) keeps its precision where a rounds to 1).
template <typename scalar_t>
struct Opacity {
  scalar_t alpha;
  scalar_t factor;
};

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

// ------------------------------------------------------------------------------ tiles

// The type the tiles multiply transmittance factors in (see the top of the file).
using Product = double;

// x -> scale x + shift; the composition (earlier after later) of the backward's reverse scan.
template <typename scalar_t>
struct Affine {
  Product scale;
  scalar_t shift;
};

struct ComposeAffine {
  template <typename scalar_t>
  FF_HOST_DEVICE FF_INLINE Affine<scalar_t> operator()(const Affine<scalar_t>& earlier,
                                                       const Affine<scalar_t>& later) const {
    return {earlier.scale * later.scale,
            static_cast<scalar_t>(earlier.scale * later.shift) + earlier.shift};
  }
};

// fn(i) for the packed samples next to ray `ray` that no ray owns (unowned_samples, math.h;
// only unchecked invalid offsets leave any): the tiles fill them, so that their outputs need no
// zero-initialisation (Inputs: the family's input struct, with offsets, n_rays, n_samples).
template <class Tile, typename Inputs, typename Fn>
FF_HOST_DEVICE FF_INLINE void zero_unowned(const Tile& tile, const Inputs& in, int64_t ray,
                                           const Fn& fn) {
  const UnownedSamples gaps = unowned_samples(in.offsets, in.n_rays, in.n_samples, ray);
  tile::for_each_index(tile, gaps.before.begin, gaps.before.end, fn);
  tile::for_each_index(tile, gaps.after.begin, gaps.after.end, fn);
}

// composite_forward_ray by a tile (see the top of the file). Every lane returns the same result.
// Samples past `end` in the last chunk take a = 0, f = 1 and are neither read nor written.
template <typename scalar_t, bool kWithDepth, class Tile, typename Samples>
FF_HOST_DEVICE FF_INLINE CompositeResult<scalar_t> composite_forward_tile(
    const Tile& tile, const Samples& samples, int64_t begin, int64_t end,
    scalar_t* __restrict__ weights, scalar_t* __restrict__ alphas = nullptr) {
  constexpr int W = Tile::kWidth;
  using Lanes = typename Tile::template Lanes<scalar_t>;
  const scalar_t zero = 0, one = 1;
  Lanes sum_r, sum_g, sum_b, sum_acc, sum_depth;
  tile.each([&](int l) { sum_r[l] = sum_g[l] = sum_b[l] = sum_acc[l] = sum_depth[l] = zero; });
  Product carried = 1;  // T at the chunk's first sample
  for (int64_t first = begin; first < end; first += W) {
    const auto opacity = tile.map([&](int l) {
      const int64_t i = first + l;
      return i < end ? samples.opacity(i) : Opacity<scalar_t>{zero, one};
    });
    const auto through = tile.inclusive_scan(
        tile.map([&](int l) { return static_cast<Product>(opacity[l].factor); }),
        tile::Multiply{});
    const auto before = tile.shift_up(through, 1, Product(1));
    tile.each([&](int l) {
      const int64_t i = first + l;
      if (i >= end) return;
      const scalar_t a = opacity[l].alpha;
      const scalar_t w = a * static_cast<scalar_t>(carried * before[l]);
      if (weights != nullptr) weights[i] = w;
      if (alphas != nullptr) alphas[i] = a;
      sum_r[l] += w * samples.color(i, 0);
      sum_g[l] += w * samples.color(i, 1);
      sum_b[l] += w * samples.color(i, 2);
      sum_acc[l] += w;
      if constexpr (kWithDepth) sum_depth[l] += w * samples.t(i);
    });
    carried *= tile.broadcast(through, W - 1);
  }
  CompositeResult<scalar_t> out;
  out.rgb[0] = tile.reduce(sum_r, tile::Add{});
  out.rgb[1] = tile.reduce(sum_g, tile::Add{});
  out.rgb[2] = tile.reduce(sum_b, tile::Add{});
  out.acc = tile.reduce(sum_acc, tile::Add{});
  out.depth = kWithDepth ? tile.reduce(sum_depth, tile::Add{}) : zero;
  return out;
}

// composite_backward_ray by a tile (see the top of the file). scratch[i - scratch_first] holds
// T_i (rounded to scalar_t) for each chunk's first sample i between the sweeps; it is read back
// (by lane 0) before emit writes anything of that chunk, so scratch may be an output that emit
// fills. value(i) returns v_i; emit(lane, i, dL/da_i, w_i) runs in the lane of sample i (back
// to front by chunk).
template <typename scalar_t, class Tile, typename Samples, typename Value, typename Emit>
FF_HOST_DEVICE FF_INLINE void composite_backward_tile(const Tile& tile, const Samples& samples,
                                                      int64_t begin, int64_t end,
                                                      scalar_t* scratch, int64_t scratch_first,
                                                      const Value& value, const Emit& emit) {
  constexpr int W = Tile::kWidth;
  using Lanes = typename Tile::template Lanes<scalar_t>;
  const scalar_t zero = 0, one = 1;
  scratch -= scratch_first;
  Product carried = 1;
  for (int64_t first = begin; first < end; first += W) {
    const auto factor = tile.map([&](int l) {
      const int64_t i = first + l;
      return i < end ? static_cast<Product>(samples.factor(i)) : Product(1);
    });
    tile.leader([&] { scratch[first] = static_cast<scalar_t>(carried); });
    carried *= tile.broadcast(tile.inclusive_scan(factor, tile::Multiply{}), W - 1);
  }
  if (end <= begin) return;
  scalar_t behind = zero;  // R of the chunk's last sample, from the chunks behind it
  for (int64_t first = begin + (end - 1 - begin) / W * W; first >= begin; first -= W) {
    const Product t_first = tile.leader_value([&] { return static_cast<Product>(scratch[first]); });
    const auto opacity = tile.map([&](int l) {
      const int64_t i = first + l;
      return i < end ? samples.opacity(i) : Opacity<scalar_t>{zero, one};
    });
    const Lanes v = tile.map([&](int l) {
      const int64_t i = first + l;
      return i < end ? value(i) : zero;
    });
    const auto before = tile.shift_up(
        tile.inclusive_scan(
            tile.map([&](int l) { return static_cast<Product>(opacity[l].factor); }),
            tile::Multiply{}),
        1, Product(1));
    // m_i for each lane (the identity past `end`); suffix[l] = m_l o ... o m_{W-1}.
    const auto suffix = tile.reverse_inclusive_scan(tile.map([&](int l) {
      return Affine<scalar_t>{static_cast<Product>(opacity[l].factor), v[l] * opacity[l].alpha};
    }), ComposeAffine{});
    const auto after = tile.shift_down(suffix, 1, Affine<scalar_t>{Product(1), zero});
    tile.each([&](int l) {
      const int64_t i = first + l;
      if (i >= end) return;
      const scalar_t t_i = static_cast<scalar_t>(t_first * before[l]);
      const scalar_t r_i = static_cast<scalar_t>(after[l].scale * behind) + after[l].shift;
      emit(l, i, t_i * (v[l] - r_i), opacity[l].alpha * t_i);
    });
    const Affine<scalar_t> chunk = tile.broadcast(suffix, 0);
    behind = static_cast<scalar_t>(chunk.scale * behind) + chunk.shift;
  }
}

}  // namespace fastfield
