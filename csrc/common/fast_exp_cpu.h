// exp for the CPU drivers' bulk passes, written so that GCC and Clang auto-vectorise the loops
// that call it (glibc's vector expf needs -ffast-math, which would break the inf/NaN behaviour
// the tests pin down). Host-only: the CUDA drivers use StdExp from math.h.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace fastfield {
namespace cpu {

inline float bits_to_float(int32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// expf within 2 ulp for results in the normal range: Cody-Waite reduction x = k ln2 + g with
// |g| <= ln2 / 2, Cephes' degree-6 polynomial for exp(g), then a scale by 2^k in two halves so
// that k = 128 (x up to 88.72) stays finite. Results below FLT_MIN are flushed to 0, x > 88.72
// gives inf, NaN stays NaN. Branch-free, so loops over it vectorise.
inline float fast_expf(float x) {
  const float max_x = 88.72283935546875f, min_x = -87.33654022216797f;
  float xc = x > max_x ? max_x : x;
  xc = xc < min_x ? min_x : xc;
  xc = xc == xc ? xc : 0.0f;  // keep the integer part defined; NaN is restored below
  const float round_magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  float k = (xc * 1.44269504088896341f + round_magic) - round_magic;
  float g = xc - k * 0.693359375f;
  g = g + k * 2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * g + 1.3981999507e-3f;
  y = y * g + 8.3334519073e-3f;
  y = y * g + 4.1665795894e-2f;
  y = y * g + 1.6666665459e-1f;
  y = y * g + 5.0000001201e-1f;
  y = y * (g * g) + g + 1.0f;
  int32_t ki = static_cast<int32_t>(k);
  int32_t half = ki >> 1;
  float result = y * bits_to_float((half + 127) << 23) * bits_to_float((ki - half + 127) << 23);
  result = x < min_x ? 0.0f : result;
  result = x > max_x ? INFINITY : result;
  return x == x ? result : x;
}

inline double fast_exp(double x) { return std::exp(x); }
inline float fast_exp(float x) { return fast_expf(x); }

// Functor form, for the FF_HOST_DEVICE formulas that take their exp as a parameter.
struct FastExp {
  template <typename scalar_t>
  inline scalar_t operator()(scalar_t x) const {
    return fast_exp(x);
  }
};

}  // namespace cpu
}  // namespace fastfield

// Compile a bulk-pass function for AVX-512 (x86-64-v4) and AVX2 + FMA (x86-64-v3) as well as
// the baseline ISA and pick one at load time (GCC ifunc): the polynomial above then runs 16 or 8
// lanes wide where the CPU allows (AVX-512's clone of sdf.h's bulk pass is the fastest where it
// exists; benchmarks/RESULTS.md has the measurement). `flatten` inlines every call in the function, so that a shared
// per-sample formula too large for the inliner's default budget (sdf.h's neus_alpha) does not
// keep the loop from vectorising. The clones contract a * b + c into FMAs: their results differ
// from the baseline clone's in the last bits.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    __GNUC__ >= 11
#define FF_CPU_MULTIVERSION \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), flatten))
#elif defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define FF_CPU_MULTIVERSION __attribute__((target_clones("avx2", "default"), flatten))
#elif defined(__GNUC__)
#define FF_CPU_MULTIVERSION __attribute__((flatten))
#else
#define FF_CPU_MULTIVERSION
#endif
