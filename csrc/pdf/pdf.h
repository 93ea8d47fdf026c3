// Inverse-CDF sampling (sample_pdf, neus_upsample) and the sorted merge (merge_sorted): the math
// of one ray, run on CPU and CUDA by the drivers of pdf_host.h.
//
// sample_pdf (nerf-pytorch), for the n_bins weights w of a ray, its bin edges b[0..n_bins] and
// ascending quantiles u:
//
//   pdf_i = (w_i + 1e-5) / sum_k (w_k + 1e-5),   cdf_0 = 0,   cdf_{i+1} = min(cdf_i + pdf_i, 1)
//   j = #{k : cdf_k <= u}                                       (searchsorted, right side)
//   lo = max(j - 1, 0),  hi = min(j, n_bins),  denom = cdf_hi - cdf_lo, 1 where < 1e-5
//   sample = b_lo + (u - cdf_lo) / denom * (b_hi - b_lo)
//
// u ascending makes j non-decreasing, so one merge walk over bins and quantiles inverts the CDF
// in O(n_bins + n_samples) per ray: a first pass sums the weights, the second advances a running
// CDF while it emits the samples. No CDF is stored and no scratch memory is needed. A quantile
// below the bin the walk stands in (unsorted u, which only the CPU value check rejects) restarts
// the walk from bin 0, so every quantile still gets its exact inverse CDF.
//
// Rounding follows the reference: pdf in the input dtype; the CDF accumulated in double and
// rounded to the input dtype after each bin, as torch.cumsum does on CPU; the normaliser
// accumulated in double and rounded once (torch.sum's float32 cascade can differ from it by an
// ulp, see fastfield/ops/pdf.py for what that means at the 1e-5 threshold). The CDF is capped at
// 1, its exact total: a sum that rounds above 1 would otherwise keep u = 1 inside the CDF, and
// where the last bins are (almost) empty, their steps under 1e-5 (denominator 1) would put that
// sample at the bottom of one of them. Capped, u = 1 is past the end of the CDF and gives the
// last bin edge, as nerf-pytorch's searchsorted does whenever its CDF ends at or below 1.
//
// The CUDA kernels (and the CPU's tile emulation) compute the same CDF with a tile of lanes per
// ray (tile.h): the normaliser as per-lane double sums added up at the end, the CDF by a double
// prefix scan of the chunk's pdf values plus the carried sum, into a table [n_bins + 1]; then each
// lane inverts its quantiles by binary search in that table (invert_cdf_table: j is the same
// count as the walk's, so any quantile order works). A double sum of float32 pdf values is exact
// in any order as long as no value is below 2^-29 of the total (sum of weights under ~5000), so
// for float32 the tiles' CDF is the walk's bit for bit; float64 may differ in the last bit. The
// NeuS transmittance is a double product scan per chunk, carried multiplicatively.
//
// The walk takes its weights from a weight source: StoredWeights reads them (sample_pdf),
// NeusWeights computes them from the SDF on the fly (neus_upsample, NeuS `up_sample`):
//
//   slope_k = (sdf_{k+1} - sdf_k) / (t_{k+1} - t_k + 1e-5)                section k = [t_k, t_{k+1}]
//   cos_k = clip(min(slope_{k-1}, slope_k), -1e3, 0) * inside_k          slope_{-1} = 0
//   inside_k = |o + t_k d| < 1 or |o + t_{k+1} d| < 1
//   mid_k = (sdf_k + sdf_{k+1}) / 2,   sdf_k^{prev, next} = mid_k -/+ cos_k (t_{k+1} - t_k) / 2
//   p_k = sigmoid(sdf^prev inv_s),  n_k = sigmoid(sdf^next inv_s),  alpha_k = (p - n + 1e-5) / (p + 1e-5)
//   w_k = alpha_k T_k,   T_k = prod_{j<k} (1 - alpha_j + 1e-7)   (accumulated in double, as
//                                                                   torch.cumprod on CPU)
//
// merge_sorted: the stable merge of two ascending rows, a before b on ties, NaN last (the order
// of torch.sort), with the position of every merged value in cat([a, b]).
#pragma once

#include <cstdint>

#include "../common/host_device.h"
#include "../common/math.h"
#include "../common/tile.h"

namespace fastfield {

// ------------------------------------------------------------------------------ weight sources
// A weight source streams the n_bins weights of one ray in order: restart() goes back to bin 0,
// next() returns the weight of the next bin. invert_cdf_ray calls next() at most n_bins times
// between two restarts, so a source needs no bounds checks of its own.

template <typename scalar_t>
struct StoredWeights {
  const scalar_t* __restrict__ weights;  // [n_bins] of one ray
  int64_t bin;
  FF_HOST_DEVICE FF_INLINE void restart() { bin = 0; }
  FF_HOST_DEVICE FF_INLINE scalar_t next() { return weights[bin++]; }
};

// The NeuS section terms of one ray, from the SDF at its n sample positions.
template <typename scalar_t, typename Exp>
struct NeusSections {
  const scalar_t* __restrict__ t;    // [n]
  const scalar_t* __restrict__ sdf;  // [n]
  const scalar_t* __restrict__ origin;     // [3]
  const scalar_t* __restrict__ direction;  // [3]
  scalar_t inv_s;
  Exp exp_fn;

  // Sample i lies inside the unit sphere: |o + t_i d| < 1. For a correctly rounded sqrt,
  // sqrt(r2) < 1 holds exactly when r2 < 1 (the largest float below 1 has its root below the
  // rounding midpoint under 1), so the squared norm decides as the reference's norm does,
  // without a sqrt that would keep the CPU bulk pass from vectorising.
  FF_HOST_DEVICE FF_INLINE bool inside(int64_t i) const {
    const scalar_t x = origin[0] + direction[0] * t[i];
    const scalar_t y = origin[1] + direction[1] * t[i];
    const scalar_t z = origin[2] + direction[2] * t[i];
    return x * x + y * y + z * z < scalar_t(1);
  }

  FF_HOST_DEVICE FF_INLINE scalar_t slope(int64_t k) const {
    return (sdf[k + 1] - sdf[k]) / (t[k + 1] - t[k] + scalar_t(1e-5));
  }

  // alpha of section k given the raw slope of section k - 1 (0 for the first section).
  FF_HOST_DEVICE FF_INLINE scalar_t alpha(int64_t k, scalar_t prev_slope) const {
    const bool in_sphere = inside(k) | inside(k + 1);  // no branch: the CPU bulk pass vectorises
    const scalar_t cos = clip_keep_nan(minimum_keep_nan(prev_slope, slope(k)), scalar_t(-1e3),
                                       scalar_t(0)) *
                         scalar_t(in_sphere ? 1 : 0);
    const scalar_t mid = (sdf[k] + sdf[k + 1]) * scalar_t(0.5);
    const scalar_t half_step = cos * (t[k + 1] - t[k]) * scalar_t(0.5);
    const scalar_t prev_cdf = sigmoid((mid - half_step) * inv_s, exp_fn);
    const scalar_t next_cdf = sigmoid((mid + half_step) * inv_s, exp_fn);
    return (prev_cdf - next_cdf + scalar_t(1e-5)) / (prev_cdf + scalar_t(1e-5));
  }

  FF_HOST_DEVICE FF_INLINE scalar_t operator()(int64_t k) const {
    return alpha(k, k > 0 ? slope(k - 1) : scalar_t(0));
  }
};

// alpha of section k read from a table (CPU bulk pass); table[0] is section 0 of the ray.
template <typename scalar_t>
struct AlphaTable {
  const scalar_t* __restrict__ table;
  FF_HOST_DEVICE FF_INLINE scalar_t operator()(int64_t k) const { return table[k]; }
};

// NeuS weights w_k = alpha_k T_k from an alpha source (NeusSections or AlphaTable).
template <typename scalar_t, typename Alpha>
struct NeusWeights {
  Alpha alpha;
  int64_t section;
  double transmittance;
  FF_HOST_DEVICE FF_INLINE void restart() {
    section = 0;
    transmittance = 1;
  }
  FF_HOST_DEVICE FF_INLINE scalar_t next() {
    const scalar_t a = alpha(section++);
    const scalar_t w = a * static_cast<scalar_t>(transmittance);
    transmittance *= static_cast<double>(scalar_t(1) - a + scalar_t(1e-7));
    return w;
  }
};

// ------------------------------------------------------------------------------ the formulas
// Shared by the walk below and by the CPU driver's table-based inversion (invert_cdf_cpu.h).

// A bin's weight as the PDF counts it: w + 1e-5, so that no bin has zero probability.
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE scalar_t padded_weight(scalar_t w) {
  return w + scalar_t(1e-5);
}

// The normaliser sum_k (w_k + 1e-5): accumulated in double, rounded once.
template <typename scalar_t, typename Source>
FF_HOST_DEVICE FF_INLINE scalar_t pdf_normaliser(Source& weights, int64_t n_bins) {
  double total = 0;
  weights.restart();
  for (int64_t i = 0; i < n_bins; ++i) total += static_cast<double>(padded_weight(weights.next()));
  return static_cast<scalar_t>(total);
}

// pdf_i as the CDF sums it.
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE double pdf_step(scalar_t w, scalar_t norm) {
  return static_cast<double>(padded_weight(w) / norm);
}

// A CDF entry from the double sum behind it: rounded to scalar_t, capped at 1 (NaN stays).
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE scalar_t cdf_entry(double running) {
  return minimum_keep_nan(static_cast<scalar_t>(running), scalar_t(1));
}

// One CDF entry: cdf_{i+1} from the double sum behind cdf_i and the weight w_i of bin i.
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE scalar_t next_cdf(double& running, scalar_t w, scalar_t norm) {
  running += pdf_step(w, norm);
  return cdf_entry<scalar_t>(running);
}

// The sample of quantile q between the CDF entries lo and hi (lo == hi at either end):
// b_lo + (q - cdf_lo) / denom * (b_hi - b_lo), denom = cdf_hi - cdf_lo, or 1 where under 1e-5.
// value_t is scalar_t, or on the CPU a GCC vector of scalar_t lanes (invert_cdf_cpu.h), which
// computes the same operations lane by lane (passed by reference: no vector crosses a call).
template <typename value_t>
struct ScalarOf {
  using type = value_t;
};

template <typename value_t>
FF_HOST_DEVICE FF_INLINE value_t bin_denominator(const value_t& cdf_hi, const value_t& cdf_lo) {
  using scalar_t = typename ScalarOf<value_t>::type;
  const value_t denom = cdf_hi - cdf_lo;
  return denom < scalar_t(1e-5) ? value_t{} + scalar_t(1) : denom;
}

template <typename value_t>
FF_HOST_DEVICE FF_INLINE value_t interpolate_in_bin(const value_t& q, const value_t& cdf_lo,
                                                    const value_t& denom, const value_t& bin_lo,
                                                    const value_t& bin_width) {
  return bin_lo + (q - cdf_lo) / denom * bin_width;
}

// ------------------------------------------------------------------------------ the walk

// Writes the n_samples inverse-CDF samples of one ray. `weights` is a weight source over n_bins
// bins, bins [n_bins + 1] the bin edges, u [n_samples] the quantiles (ascending; anything else
// stays in bounds, see above).
template <typename scalar_t, typename Source>
FF_HOST_DEVICE FF_INLINE void invert_cdf_ray(Source& weights, int64_t n_bins,
                                             const scalar_t* __restrict__ bins,
                                             const scalar_t* __restrict__ u, int64_t n_samples,
                                             scalar_t* __restrict__ out) {
  const scalar_t norm = pdf_normaliser<scalar_t>(weights, n_bins);

  // The walk stands at `reached` = #{k : cdf_k <= q} for the quantiles q it emits there:
  // cdf_below = cdf[reached - 1] (0 while reached == 0), cdf_reached = cdf[reached] while
  // reached <= n_bins, and `running` is the double sum behind cdf_reached. Bin-major: the
  // constants of a bin are set up once, then all of its quantiles are emitted in a tight loop.
  int64_t reached = 0;
  double running = 0;
  scalar_t cdf_below = 0, cdf_reached = 0;
  weights.restart();
  int64_t s = 0;
  while (s < n_samples) {
    const bool past_end = reached > n_bins;
    const int64_t lo = reached > 0 ? reached - 1 : 0;
    const int64_t hi = past_end ? n_bins : reached;
    const scalar_t denom = bin_denominator(past_end ? cdf_below : cdf_reached, cdf_below);
    const scalar_t bin_lo = bins[lo], bin_width = bins[hi] - bins[lo];
    for (; s < n_samples; ++s) {
      const scalar_t q = u[s];
      const bool beyond = !past_end && cdf_reached <= q;
      const bool below = reached > 0 && !(cdf_below <= q);  // unsorted u, or NaN
      if (beyond || below) break;
      out[s] = interpolate_in_bin(q, cdf_below, denom, bin_lo, bin_width);
    }
    if (s == n_samples) break;
    if (!(cdf_below <= u[s]) && reached > 0) {  // start over from bin 0 for this quantile
      reached = 0;
      running = 0;
      cdf_below = cdf_reached = 0;
      weights.restart();
      continue;
    }
    cdf_below = cdf_reached;  // advance one CDF entry
    if (reached < n_bins) cdf_reached = next_cdf(running, weights.next(), norm);
    ++reached;
  }
}

// Quantiles are [n_samples] shared by every ray (u_stride 0) or [n_rays, n_samples].
template <typename scalar_t>
struct PdfArgs {
  int64_t n_rays;
  int64_t n_bins;
  int64_t n_samples;
  int64_t u_stride;
  const scalar_t* bins;     // [n_rays, n_bins + 1]
  const scalar_t* weights;  // [n_rays, n_bins]
  const scalar_t* u;        // [n_samples] or [n_rays, n_samples]
  scalar_t* out;            // [n_rays, n_samples]
};

template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void sample_pdf_one_ray(const PdfArgs<scalar_t>& a, int64_t ray) {
  StoredWeights<scalar_t> weights{a.weights + ray * a.n_bins, 0};
  invert_cdf_ray(weights, a.n_bins, a.bins + ray * (a.n_bins + 1), a.u + ray * a.u_stride,
                 a.n_samples, a.out + ray * a.n_samples);
}

template <typename scalar_t>
struct NeusArgs {
  int64_t n_rays;
  int64_t n;      // samples per ray (n - 1 sections)
  int64_t n_new;
  int64_t u_stride;
  const scalar_t* rays_o;  // [n_rays, 3]
  const scalar_t* rays_d;  // [n_rays, 3]
  const scalar_t* t;       // [n_rays, n]
  const scalar_t* sdf;     // [n_rays, n]
  const scalar_t* u;       // [n_new] or [n_rays, n_new]
  scalar_t inv_s;
  scalar_t* out;           // [n_rays, n_new]
};

template <typename scalar_t, typename Exp>
FF_HOST_DEVICE FF_INLINE NeusSections<scalar_t, Exp> neus_sections(const NeusArgs<scalar_t>& a,
                                                                   int64_t ray, const Exp& exp_fn) {
  return {a.t + ray * a.n, a.sdf + ray * a.n, a.rays_o + 3 * ray, a.rays_d + 3 * ray, a.inv_s,
          exp_fn};
}

// neus_upsample for one ray, its alphas from `alpha` (NeusSections or AlphaTable).
template <typename scalar_t, typename Alpha>
FF_HOST_DEVICE FF_INLINE void neus_upsample_one_ray(const NeusArgs<scalar_t>& a,
                                                    const Alpha& alpha, int64_t ray) {
  NeusWeights<scalar_t, Alpha> weights{alpha, 0, 1};
  invert_cdf_ray(weights, a.n - 1, a.t + ray * a.n, a.u + ray * a.u_stride, a.n_new,
                 a.out + ray * a.n_new);
}

// ------------------------------------------------------------------------------ merge

template <typename scalar_t>
struct MergeArgs {
  int64_t n_rays;
  int64_t na;
  int64_t nb;
  const scalar_t* a;  // [n_rays, na]
  const scalar_t* b;  // [n_rays, nb]
  scalar_t* merged;   // [n_rays, na + nb]
  int64_t* index;     // [n_rays, na + nb] into cat([a, b], -1)
};

// Whatever the input order, index is a permutation of 0 .. na + nb - 1 and merged = cat[index]:
// the loop counts are fixed and every read is in bounds. Starts with a[i_from] and b[j_from]
// next (the earlier outputs written), so that the tile merge can hand a row over to it.
// The row lengths are copied into locals: the int64 index stores could alias m's fields, which
// would otherwise be reloaded after every store.
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void merge_walk(const MergeArgs<scalar_t>& m, int64_t ray,
                                         int64_t i_from, int64_t j_from) {
  const int64_t na = m.na, nb = m.nb;
  const scalar_t* __restrict__ a = m.a + ray * na;
  const scalar_t* __restrict__ b = m.b + ray * nb;
  scalar_t* __restrict__ merged = m.merged + ray * (na + nb);
  int64_t* __restrict__ index = m.index + ray * (na + nb);
  int64_t j = j_from, k = i_from + j_from;
  for (int64_t i = i_from; i < na; ++i) {
    const scalar_t ai = a[i];
    for (; j < nb && sorts_before(b[j], ai); ++j, ++k) {
      merged[k] = b[j];
      index[k] = na + j;
    }
    merged[k] = ai;
    index[k++] = i;
  }
  for (; j < nb; ++j, ++k) {
    merged[k] = b[j];
    index[k] = na + j;
  }
}

template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void merge_sorted_one_ray(const MergeArgs<scalar_t>& m, int64_t ray) {
  merge_walk(m, ray, 0, 0);
}

// ------------------------------------------------------------------------------ tiles
// A tile of lanes per ray (tile.h): the CUDA kernels, and the CPU's tile emulation.

// The sample of quantile q from a ray's CDF table cdf[0 .. n_bins] (ascending): j =
// #{k : cdf_k <= q} by binary search, then the walk's interpolation. Any q (unsorted, NaN)
// gets the walk's sample; a CDF that descends (negative weights) gets some in-bounds j.
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE scalar_t invert_cdf_table(const scalar_t* __restrict__ cdf,
                                                   const scalar_t* __restrict__ bins,
                                                   int64_t n_bins, scalar_t q) {
  int64_t j = 0, count = n_bins + 1;
  while (count > 0) {
    const int64_t half = count / 2;
    if (cdf[j + half] <= q) {
      j += half + 1;
      count -= half + 1;
    } else {
      count = half;
    }
  }
  const int64_t lo = j > 0 ? j - 1 : 0, hi = j < n_bins ? j : n_bins;
  return interpolate_in_bin(q, cdf[lo], bin_denominator(cdf[hi], cdf[lo]), bins[lo],
                            bins[hi] - bins[lo]);
}

// The normaliser of weight(k), k < n_bins: per-lane double sums, added up at the end.
template <typename scalar_t, class Tile, typename Weight>
FF_HOST_DEVICE FF_INLINE scalar_t pdf_normaliser_tile(const Tile& tile, const Weight& weight,
                                                      int64_t n_bins) {
  auto total = tile.map([](int) { return 0.0; });
  for (int64_t first = 0; first < n_bins; first += Tile::kWidth) {
    tile.each([&](int l) {
      const int64_t k = first + l;
      if (k < n_bins) total[l] += static_cast<double>(padded_weight(weight(k)));
    });
  }
  return static_cast<scalar_t>(tile.reduce(total, tile::Add{}));
}

// The CDF table cdf[0 .. n_bins] of weight(k) with normaliser norm. weight(k) may read
// table[k + 1]: each lane reads it before it writes it.
template <typename scalar_t, class Tile, typename Weight>
FF_HOST_DEVICE FF_INLINE void cdf_table_tile(const Tile& tile, const Weight& weight,
                                             int64_t n_bins, scalar_t norm,
                                             scalar_t* __restrict__ table) {
  constexpr int W = Tile::kWidth;
  tile.leader([&] { table[0] = scalar_t(0); });
  double carried = 0;  // the double sum behind cdf[first]
  for (int64_t first = 0; first < n_bins; first += W) {
    const auto running = tile.inclusive_scan(tile.map([&](int l) {
      const int64_t k = first + l;
      return k < n_bins ? pdf_step(weight(k), norm) : 0.0;
    }), tile::Add{});
    tile.each([&](int l) {
      const int64_t k = first + l;
      if (k < n_bins) table[k + 1] = cdf_entry<scalar_t>(carried + running[l]);
    });
    carried += tile.broadcast(running, W - 1);
  }
}

// The samples of quantiles u[0 .. n_samples) from a complete CDF table, one per lane.
template <typename scalar_t, class Tile>
FF_HOST_DEVICE FF_INLINE void invert_cdf_tile(const Tile& tile, const scalar_t* cdf,
                                              const scalar_t* bins, int64_t n_bins,
                                              const scalar_t* u, int64_t n_samples,
                                              scalar_t* out) {
  for (int64_t first = 0; first < n_samples; first += Tile::kWidth) {
    tile.each([&](int l) {
      const int64_t s = first + l;
      if (s < n_samples) out[s] = invert_cdf_table(cdf, bins, n_bins, u[s]);
    });
  }
}

// sample_pdf of one ray; table [n_bins + 1] is this ray's scratch for its CDF.
template <typename scalar_t, class Tile>
FF_HOST_DEVICE FF_INLINE void sample_pdf_tile(const Tile& tile, const PdfArgs<scalar_t>& a,
                                              int64_t ray, scalar_t* table) {
  const scalar_t* __restrict__ w = a.weights + ray * a.n_bins;
  const auto weight = [&](int64_t k) { return w[k]; };
  const scalar_t norm = pdf_normaliser_tile<scalar_t>(tile, weight, a.n_bins);
  cdf_table_tile(tile, weight, a.n_bins, norm, table);
  tile.sync();
  invert_cdf_tile(tile, table, a.bins + ray * (a.n_bins + 1), a.n_bins, a.u + ray * a.u_stride,
                  a.n_samples, a.out + ray * a.n_samples);
}

// The NeuS weights w_k = alpha_k T_k of one ray's n_sections sections into w[k], T by a double
// product scan per chunk carried multiplicatively (NeusWeights' arithmetic); returns their
// normaliser (pdf_normaliser's, from the same per-lane sums as pdf_normaliser_tile).
template <typename scalar_t, class Tile, typename Alpha>
FF_HOST_DEVICE FF_INLINE scalar_t neus_weights_tile(const Tile& tile, const Alpha& alpha,
                                                    int64_t n_sections, scalar_t* __restrict__ w) {
  constexpr int W = Tile::kWidth;
  auto total = tile.map([](int) { return 0.0; });
  double carried = 1;  // T of the chunk's first section
  for (int64_t first = 0; first < n_sections; first += W) {
    const auto a = tile.map([&](int l) {
      const int64_t k = first + l;
      return k < n_sections ? alpha(k) : scalar_t(0);
    });
    const auto through = tile.inclusive_scan(tile.map([&](int l) {
      return first + l < n_sections ? static_cast<double>(scalar_t(1) - a[l] + scalar_t(1e-7))
                                    : 1.0;
    }), tile::Multiply{});
    const auto before = tile.shift_up(through, 1, 1.0);
    tile.each([&](int l) {
      const int64_t k = first + l;
      if (k >= n_sections) return;
      w[k] = a[l] * static_cast<scalar_t>(carried * before[l]);
      total[l] += static_cast<double>(padded_weight(w[k]));
    });
    carried *= tile.broadcast(through, W - 1);
  }
  return static_cast<scalar_t>(tile.reduce(total, tile::Add{}));
}

// neus_upsample of one ray; table [n] is this ray's scratch: the weights in table[1 ..], then
// the CDF over them.
template <typename scalar_t, class Tile, typename Alpha>
FF_HOST_DEVICE FF_INLINE void neus_upsample_tile(const Tile& tile, const NeusArgs<scalar_t>& a,
                                                 const Alpha& alpha, int64_t ray,
                                                 scalar_t* table) {
  const int64_t n_sections = a.n - 1;
  const scalar_t norm = neus_weights_tile(tile, alpha, n_sections, table + 1);
  cdf_table_tile(tile, [&](int64_t k) { return table[k + 1]; }, n_sections, norm, table);
  tile.sync();
  invert_cdf_tile(tile, table, a.t + ray * a.n, n_sections, a.u + ray * a.u_stride, a.n_new,
                  a.out + ray * a.n_new);
}

// merge_sorted of one ray by a tile: kWidth outputs per step, from the next kWidth values of a
// and of b. Each lane ranks its a value among the b window (b strictly before it) and its b
// value among the a window (a before or tied), by binary search over the other window; the
// ranks plus the lane give merge positions, and those under kWidth are this step's outputs. The
// windows must ascend (with the values before them): a step that finds a descent (unchecked
// unsorted input) hands the rest of the row to merge_walk, so the result is the walk's for any
// input, a permutation.
template <typename scalar_t, class Tile>
FF_HOST_DEVICE FF_INLINE void merge_sorted_tile(const Tile& tile, const MergeArgs<scalar_t>& m,
                                                int64_t ray) {
  constexpr int W = Tile::kWidth;
  const int64_t na = m.na, nb = m.nb;
  const scalar_t* __restrict__ a = m.a + ray * na;
  const scalar_t* __restrict__ b = m.b + ray * nb;
  scalar_t* __restrict__ merged = m.merged + ray * (na + nb);
  int64_t* __restrict__ index = m.index + ray * (na + nb);
  int64_t i = 0, j = 0;  // the next a and b values to merge
  while (i < na || j < nb) {
    const int valid_a = static_cast<int>(na - i < W ? na - i : W);
    const int valid_b = static_cast<int>(nb - j < W ? nb - j : W);
    const auto av = tile.map([&](int l) { return l < valid_a ? a[i + l] : scalar_t(0); });
    const auto bv = tile.map([&](int l) { return l < valid_b ? b[j + l] : scalar_t(0); });
    const bool descends = tile.any(tile.map([&](int l) {
      const bool in_a = l < valid_a && i + l >= 1 && sorts_before(av[l], a[i + l - 1]);
      const bool in_b = l < valid_b && j + l >= 1 && sorts_before(bv[l], b[j + l - 1]);
      return in_a || in_b;
    }));
    if (descends) {
      tile.leader([&] { merge_walk(m, ray, i, j); });
      return;
    }
    const auto rank_a = tile::count_before(tile, bv, valid_b, av, [](scalar_t b_value,
                                                                      scalar_t a_value) {
      return sorts_before(b_value, a_value);
    });
    const auto rank_b = tile::count_before(tile, av, valid_a, bv, [](scalar_t a_value,
                                                                      scalar_t b_value) {
      return !sorts_before(b_value, a_value);
    });
    const int64_t k = i + j;
    tile.each([&](int l) {
      const int pos_a = l + rank_a[l], pos_b = l + rank_b[l];
      if (l < valid_a && pos_a < W) {
        merged[k + pos_a] = av[l];
        index[k + pos_a] = i + l;
      }
      if (l < valid_b && pos_b < W) {
        merged[k + pos_b] = bv[l];
        index[k + pos_b] = na + j + l;
      }
    });
    const int from_a = tile.count(tile.map([&](int l) { return l < valid_a && l + rank_a[l] < W; }));
    const int64_t step = valid_a + valid_b < W ? valid_a + valid_b : W;
    i += from_a;
    j += step - from_a;
  }
}

}  // namespace fastfield
