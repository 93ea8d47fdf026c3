// The CPU launcher (see launch.h) and the ray-block loop of the CPU drivers' bulk passes.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

#include "fast_exp_cpu.h"  // FF_CPU_MULTIVERSION
#include "launch.h"
#include "math.h"

namespace fastfield {
namespace cpu {

// Subnormal floats (under 1.2e-38 in float32, 2.2e-308 in float64) read and computed as zero
// for the lifetime of the guard, on x86 (MXCSR's FTZ and DAZ bits); the thread's previous mode
// comes back afterwards, so the caller's own arithmetic is unaffected. x86 cores take a
// microcode assist for each operation on a subnormal, and the compositing scans produce them on
// every ray that passes an opaque surface (NeuS transmittance falls by 1 - a + 1e-7 per sample,
// below 1e-38 within six), so the assists were a measurable share of composite_sdf's time
// (benchmarks/RESULTS.md, "Subnormal floats"). Results differ from the gradual-underflow ones
// only in values below those thresholds.
class FlushSubnormals {
 public:
#if defined(__x86_64__)
  FlushSubnormals() : saved_(_mm_getcsr()) {
    _mm_setcsr(saved_ | kFlushToZero | kDenormalsAreZero);
  }
  ~FlushSubnormals() { _mm_setcsr(saved_); }
#endif
  FlushSubnormals(const FlushSubnormals&) = delete;
  FlushSubnormals& operator=(const FlushSubnormals&) = delete;

 private:
#if defined(__x86_64__)
  static constexpr unsigned kFlushToZero = 0x8000, kDenormalsAreZero = 0x0040;
  unsigned saved_;
#endif
};

// at::parallel_for with every task run under FlushSubnormals: the CPU kernels' only way to
// spread work over threads.
template <typename Fn>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const Fn& fn) {
  at::parallel_for(begin, end, grain, [&](int64_t task_begin, int64_t task_end) {
    const FlushSubnormals flush;
    fn(task_begin, task_end);
  });
}

// fn(i) for i in [begin, end). Kept out of line: the loop then gets the registers to itself,
// instead of sharing them with the driver around at::parallel_for's inlined serial path (which
// spilled loop state of sample_pdf's walk to the stack).
template <typename Fn>
__attribute__((noinline)) void apply(int64_t begin, int64_t end, const Fn& fn) {
  for (int64_t i = begin; i < end; ++i) fn(i);
}

// fn(i) for i in [begin, end), compiled for AVX-512 and AVX2 + FMA as well as the baseline ISA,
// with fn and what it calls inlined (FF_CPU_MULTIVERSION), so that fn's own loops vectorise.
template <typename Fn>
FF_CPU_MULTIVERSION void apply_vectorised(int64_t begin, int64_t end, const Fn& fn) {
  for (int64_t i = begin; i < end; ++i) fn(i);
}

}  // namespace cpu

struct CpuLauncher {
  template <typename Fn>
  static void for_each(const at::Tensor& /*device_of*/, int64_t n, int64_t grain, const Fn& fn) {
    cpu::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) { cpu::apply(begin, end, fn); });
  }

  // The FMA contraction of the AVX2 / AVX-512 clones changes results in the last bits against
  // for_each: use it only where that is the established behaviour.
  template <typename Fn>
  static void for_each_vectorised(const at::Tensor& /*device_of*/, int64_t n, int64_t grain,
                                  const Fn& fn) {
    cpu::parallel_for(0, n, grain,
                     [&](int64_t begin, int64_t end) { cpu::apply_vectorised(begin, end, fn); });
  }
};

namespace cpu {

// Ray-parallel loop of the CPU bulk passes: threads take contiguous ranges of rays, and each
// thread walks its range in blocks small enough that a block's per-sample tables stay in cache.
constexpr int64_t kRaysPerBlock = 32;

// Calls fn(first_ray, last_ray, span, scratch) for consecutive blocks of rays, where span covers
// the samples of every ray in [first_ray, last_ray) (clamped as in ray_samples) and scratch is
// a per-thread buffer the block may resize and reuse.
template <typename scalar_t, typename Fn>
void for_each_ray_block(int64_t n_rays, const int64_t* offsets, int64_t per_ray,
                        int64_t n_samples, const Fn& fn) {
  parallel_for(0, n_rays, kRaysPerBlock, [&](int64_t begin, int64_t end) {
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
