// sample_pdf on the CPU: the same inverse CDF as pdf.h's walk, bit for bit, computed for a
// block of rays in passes that keep the vector units busy instead of one branchy walk per ray:
//
//   1. the CDF tables cdf[0 .. n_bins] of kBlockRays rays at once (pdf.h's pdf_normaliser and
//      next_cdf; interleaving the rays hides the latency of the serial double sums);
//   2. per ray, j_s = #{k : cdf_k <= u_s} for each group of kLanes quantiles: a scalar walk
//      from the previous group's last bin to the bin of the group's last quantile, in which
//      every lane counts the entries under its quantile (a broadcast compare);
//   3. the group's samples from j_s: lo = max(j - 1, 0), hi = min(j, n_bins), the cdf and bin
//      values picked from a window of 2 kLanes table entries by a two-register permute, then
//      pdf.h's bin_denominator and interpolate_in_bin lane by lane.
//
// Counting is the walk's search only when the CDF never decreases and the quantiles ascend
// without NaN; any other ray (negative or NaN weights, unchecked unsorted u) takes the walk.
//
// Compiled for AVX-512 only (x86-64-v4) and used where the CPU has it: the 64-byte permutes and
// compares are single instructions there, while GCC's lowering of the same vector code to AVX2
// or SSE is slower than the walk (benchmarks/RESULTS.md). GCC on x86-64 only (vector extensions with a
// variable __builtin_shuffle); elsewhere sample_pdf walks.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && __GNUC__ >= 11
#define FF_TABLE_INVERSION 1
// GCC notes that pdf.h's formulas, instantiated for 64-byte vectors, return them differently
// with and without AVX-512; they are inlined into the AVX-512 functions below and never cross
// a compilation unit. The note is placed at pdf.h's lines, so this comes before pdf.h.
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#include <algorithm>
#include <cstdint>
#include <vector>

#include "pdf.h"

#ifdef FF_TABLE_INVERSION

namespace fastfield {
namespace cpu {

// One 64-byte vector of scalar_t and its same-width index vector.
template <typename scalar_t>
struct Simd;
template <>
struct Simd<float> {
  typedef float value __attribute__((vector_size(64)));
  typedef int32_t lane_index;
  typedef lane_index index __attribute__((vector_size(64)));
};
template <>
struct Simd<double> {
  typedef double value __attribute__((vector_size(64)));
  typedef int64_t lane_index;
  typedef lane_index index __attribute__((vector_size(64)));
};

}  // namespace cpu

template <>
struct ScalarOf<cpu::Simd<float>::value> {
  using type = float;
};
template <>
struct ScalarOf<cpu::Simd<double>::value> {
  using type = double;
};

namespace cpu {

constexpr int64_t kBlockRays = 8;

// Rays of more bins walk: their tables (2 kBlockRays entries per bin and thread) would no
// longer stay in cache, and a walk needs no scratch memory at all.
constexpr int64_t kMaxTableBins = 1 << 12;

// AVX-512 code, with every call inlined so that the shared formulas compile for it too. No
// contraction of a * b + c into an FMA: the walk rounds every operation.
#define FF_AVX512_EXACT \
  __attribute__((target("arch=x86-64-v4"), flatten, optimize("fp-contract=off")))

// Whether this CPU runs the table-based inversion (AVX-512: x86-64-v4).
inline bool table_inversion_supported() { return __builtin_cpu_supports("x86-64-v4"); }

// Quantiles that the counting search can take: ascending and free of NaN.
template <typename scalar_t>
FF_AVX512_EXACT bool ascending_without_nan(const scalar_t* __restrict__ u, int64_t n) {
  bool ok = true;
  for (int64_t s = 0; s < n; ++s) ok &= u[s] == u[s];
  for (int64_t s = 1; s < n; ++s) ok &= u[s - 1] <= u[s];
  return ok;
}

// Per-thread tables of one block of rays: each ray's CDF and bin edges, padded by 2 kLanes
// entries so that a permute window may start at any entry.
template <typename scalar_t>
struct InversionTables {
  static constexpr int64_t kLanes = 64 / sizeof(scalar_t);
  int64_t stride = 0;
  std::vector<scalar_t> cdf, bins;  // [kBlockRays, stride]
  explicit InversionTables(int64_t n_bins)
      : stride(n_bins + 1 + 2 * kLanes),
        cdf(static_cast<size_t>(kBlockRays * stride)),
        bins(static_cast<size_t>(kBlockRays * stride)) {}
};

// 1. The CDF tables and bin edges of rays [first, first + n) (n <= kBlockRays); monotone[r]
// says whether ray first + r's CDF never decreases (NaN counts as decreasing). The CDF loop runs
// over all kBlockRays rays, a short block repeating its last ray, so that the rays' running
// sums stay in registers and their serial double adds overlap.
template <typename scalar_t>
FF_AVX512_EXACT void fill_cdf_tables(const PdfArgs<scalar_t>& a, int64_t first, int64_t n,
                                     InversionTables<scalar_t>& tables, bool* monotone) {
  const int64_t n_bins = a.n_bins, stride = tables.stride;
  const scalar_t* weights[kBlockRays];
  scalar_t* cdf[kBlockRays];
  for (int64_t r = 0; r < kBlockRays; ++r) {
    const int64_t ray = first + std::min(r, n - 1);
    weights[r] = a.weights + ray * n_bins;
    cdf[r] = &tables.cdf[r * stride];
    std::copy_n(a.bins + ray * (n_bins + 1), n_bins + 1, &tables.bins[r * stride]);
  }
  scalar_t norm[kBlockRays];
  double running[kBlockRays] = {};
  bool ascends[kBlockRays];
  for (int64_t r = 0; r < kBlockRays; ++r) {
    StoredWeights<scalar_t> source{weights[r], 0};
    norm[r] = pdf_normaliser<scalar_t>(source, n_bins);
    cdf[r][0] = 0;
    ascends[r] = true;
  }
  for (int64_t k = 0; k < n_bins; ++k) {
    for (int64_t r = 0; r < kBlockRays; ++r) {
      cdf[r][k + 1] = next_cdf(running[r], weights[r][k], norm[r]);
      ascends[r] &= cdf[r][k] <= cdf[r][k + 1];
    }
  }
  for (int64_t r = 0; r < n; ++r) monotone[r] = ascends[r];
}

// 2 and 3 for one ray whose CDF table is monotone and whose quantiles ascend without NaN.
template <typename scalar_t>
FF_AVX512_EXACT void invert_from_table(
    const scalar_t* __restrict__ cdf, const scalar_t* __restrict__ bins, int64_t n_bins,
    const scalar_t* __restrict__ u, int64_t n_samples, scalar_t* __restrict__ out) {
  using value = typename Simd<scalar_t>::value;
  using index = typename Simd<scalar_t>::index;
  using lane_index = typename Simd<scalar_t>::lane_index;
  constexpr int64_t kLanes = InversionTables<scalar_t>::kLanes;
  const lane_index top = static_cast<lane_index>(n_bins);
  int64_t first = 0;  // a lower bound for every j of the group
  for (int64_t s0 = 0; s0 < n_samples; s0 += kLanes) {
    // The group's quantiles; a short last group repeats its last quantile.
    const int64_t in_group = std::min(kLanes, n_samples - s0);
    value q;
    for (int64_t i = 0; i < kLanes; ++i) q[i] = u[s0 + std::min(i, in_group - 1)];
    const scalar_t q_last = q[kLanes - 1];

    // Entries below `first` are under every quantile of the group; count the others up to the
    // group's last bin, the first entry above its last quantile.
    int64_t last = first;
    index j = index{} + static_cast<lane_index>(first);
    for (; last <= n_bins && cdf[last] <= q_last; ++last) j -= (value{} + cdf[last]) <= q;
    const index lo = j > 0 ? j - 1 : index{};
    const index hi = j < top ? j : index{} + top;
    value cdf_lo, cdf_hi, bin_lo, bin_hi;
    const int64_t base = first > 0 ? first - 1 : 0;  // every lo and hi lies in [base, last]
    if (last - base < 2 * kLanes) {
      value cdf0, cdf1, bins0, bins1;  // the window [base, base + 2 kLanes) of both tables
      __builtin_memcpy(&cdf0, cdf + base, sizeof(value));
      __builtin_memcpy(&cdf1, cdf + base + kLanes, sizeof(value));
      __builtin_memcpy(&bins0, bins + base, sizeof(value));
      __builtin_memcpy(&bins1, bins + base + kLanes, sizeof(value));
      const index lo_in = lo - static_cast<lane_index>(base);
      const index hi_in = hi - static_cast<lane_index>(base);
      cdf_lo = __builtin_shuffle(cdf0, cdf1, lo_in);
      cdf_hi = __builtin_shuffle(cdf0, cdf1, hi_in);
      bin_lo = __builtin_shuffle(bins0, bins1, lo_in);
      bin_hi = __builtin_shuffle(bins0, bins1, hi_in);
    } else {
      for (int64_t i = 0; i < kLanes; ++i) {
        cdf_lo[i] = cdf[lo[i]];
        cdf_hi[i] = cdf[hi[i]];
        bin_lo[i] = bins[lo[i]];
        bin_hi[i] = bins[hi[i]];
      }
    }
    const value samples =
        interpolate_in_bin(q, cdf_lo, bin_denominator(cdf_hi, cdf_lo), bin_lo, bin_hi - bin_lo);
    first = last;  // the group's largest j, a lower bound for the next group
    if (in_group == kLanes) {
      __builtin_memcpy(out + s0, &samples, sizeof(value));
    } else {
      for (int64_t i = 0; i < in_group; ++i) out[s0 + i] = samples[i];
    }
  }
}

// sample_pdf for rays [begin, end), block by block; u_ascending says whether a shared quantile
// row (u_stride 0) ascends without NaN.
template <typename scalar_t>
void sample_pdf_rays(const PdfArgs<scalar_t>& a, int64_t begin, int64_t end, bool u_ascending) {
  InversionTables<scalar_t> tables(a.n_bins);
  bool monotone[kBlockRays];
  for (int64_t first = begin; first < end; first += kBlockRays) {
    const int64_t n = std::min(kBlockRays, end - first);
    fill_cdf_tables(a, first, n, tables, monotone);
    for (int64_t r = 0; r < n; ++r) {
      const int64_t ray = first + r;
      const scalar_t* u = a.u + ray * a.u_stride;
      const bool ascending = a.u_stride == 0 ? u_ascending : ascending_without_nan(u, a.n_samples);
      if (monotone[r] && ascending) {
        invert_from_table(&tables.cdf[r * tables.stride], &tables.bins[r * tables.stride],
                          a.n_bins, u, a.n_samples, a.out + ray * a.n_samples);
      } else {
        sample_pdf_one_ray(a, ray);
      }
    }
  }
}

}  // namespace cpu
}  // namespace fastfield

#endif  // FF_TABLE_INVERSION
