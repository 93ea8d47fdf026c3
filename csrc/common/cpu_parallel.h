// Ray-parallel loop of the CPU drivers: threads take contiguous ranges of rays, and each thread
// walks its range in blocks small enough that a block's per-sample tables (the bulk passes that
// vectorise the transcendentals) stay in cache.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "math.h"

namespace fastfield {
namespace cpu {

constexpr int64_t kRaysPerBlock = 32;

// Calls fn(first_ray, last_ray, span, scratch) for consecutive blocks of rays, where span covers
// the samples of every ray in [first_ray, last_ray) (clamped as in ray_samples) and scratch is
// a per-thread buffer the block may resize and reuse.
template <typename scalar_t, typename Fn>
void for_each_ray_block(int64_t n_rays, const int64_t* offsets, int64_t per_ray,
                        int64_t n_samples, const Fn& fn) {
  at::parallel_for(0, n_rays, kRaysPerBlock, [&](int64_t begin, int64_t end) {
    std::vector<scalar_t> scratch;
    for (int64_t first = begin; first < end; first += kRaysPerBlock) {
      const int64_t last = std::min(end, first + kRaysPerBlock);
      SampleRange span = ray_samples(offsets, per_ray, n_samples, first);
      for (int64_t r = first + 1; r < last; ++r) {
        const SampleRange range = ray_samples(offsets, per_ray, n_samples, r);
        span.begin = std::min(span.begin, range.begin);
        span.end = std::max(span.end, range.end);
      }
      fn(first, last, span, scratch);
    }
  });
}

}  // namespace cpu
}  // namespace fastfield
