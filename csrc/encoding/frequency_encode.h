// Frequency (positional) encoding, NeRF's gamma with the input included (nerf-pytorch's Embedder
// with include_input and log sampling; NeuS uses the same): the math of frequency_encode_fwd,
// _bwd and _bwd_bwd, run on CPU and CUDA by the drivers of frequency_encode_host.h.
//
// x [n, d], L octaves -> out [n, d (1 + 2L)], row by row:
//   out[i, j]              = x_ij                          (the input, d columns)
//   out[i, d (1 + 2k) + j] = sin(2^k x_ij)                 k = 0 .. L - 1
//   out[i, d (2 + 2k) + j] = cos(2^k x_ij)
// 2^k x is an exact product (a power of two), as in the PyTorch expression.
//
// Derivatives, with G = dL/dout split into g_id [n, d], g_sin_k and g_cos_k [n, d]:
//   dL/dx_j = g_id_j + sum_k 2^k (cos(2^k x_j) g_sin_kj - sin(2^k x_j) g_cos_kj)
// The backward is linear in G; for a loss on dL/dx with incoming gradient gg [n, d]:
//   dL/dg_id_j    = gg_j
//   dL/dg_sin_kj  =  2^k cos(2^k x_j) gg_j
//   dL/dg_cos_kj  = -2^k sin(2^k x_j) gg_j
//   dL/dx_j       = -gg_j sum_k 4^k (sin(2^k x_j) g_sin_kj + cos(2^k x_j) g_cos_kj)
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../common/host_device.h"

namespace fastfield {

// At most 30 octaves: every 2^k is then an exact float32 and int32, and 2^29 x already turns
// the last bit of a float32 coordinate of magnitude above 2^-5 into more than a full period.
constexpr int kMaxFrequencies = 30;

// The shapes of one call: x [n_points, dim] -> out [n_points, width()].
struct FrequencyLayout {
  int64_t n_points;
  int32_t dim;
  int32_t n_frequencies;

  FF_HOST_DEVICE FF_INLINE int64_t width() const {
    return static_cast<int64_t>(dim) * (1 + 2 * n_frequencies);
  }
  // Columns of sin(2^k x_j) and cos(2^k x_j) in a row of out.
  FF_HOST_DEVICE FF_INLINE int64_t sin_column(int k, int j) const {
    return static_cast<int64_t>(dim) * (1 + 2 * k) + j;
  }
  FF_HOST_DEVICE FF_INLINE int64_t cos_column(int k, int j) const {
    return sin_column(k, j) + dim;
  }
};

// 2^k, exact for k < 31.
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE scalar_t octave_scale(int k) {
  return static_cast<scalar_t>(int64_t(1) << k);
}

// What column `column` of a row holds: x_j (octave < 0), or sin / cos of 2^octave x_j.
struct FrequencyColumn {
  int octave;
  int j;
  bool is_cos;
};

FF_HOST_DEVICE FF_INLINE FrequencyColumn column_of(int64_t column, int dim) {
  if (column < dim) return {-1, static_cast<int>(column), false};
  const int within = static_cast<int>(column - dim);  // widths are checked below 2^31
  const int octave = within / (2 * dim), rest = within - octave * 2 * dim;
  return {octave, rest < dim ? rest : rest - dim, rest >= dim};
}

// a / b for a >= 0, b > 0, in 32 bits where a fits (64-bit division is a long routine on GPUs).
FF_HOST_DEVICE FF_INLINE int64_t divide_index(int64_t a, int64_t b) {
  if (a <= int64_t(0xffffffff) && b <= int64_t(0xffffffff)) {
    return static_cast<uint32_t>(a) / static_cast<uint32_t>(b);
  }
  return a / b;
}

template <typename scalar_t>
struct SinCos {
  scalar_t s, c;
};

// sin and cos through the standard library (the CUDA math library on the device).
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE SinCos<scalar_t> std_sin_cos(scalar_t a) {
  using std::cos;
  using std::sin;
  return {sin(a), cos(a)};
}

// ---------------------------------------------------------------------------------- formulas
// Each takes an octave's (sin, cos) of 2^k x_j from `sin_cos_of(k)`: the CUDA items compute
// it, the CPU reads it from a table it filled in a vectorised pass.

// dL/dx_j from the row of G (grad_row, width() values) of x_j's point.
template <typename scalar_t, typename SinCosOf>
FF_HOST_DEVICE FF_INLINE scalar_t frequency_input_grad(const FrequencyLayout& layout,
                                                       const scalar_t* __restrict__ grad_row,
                                                       int j, const SinCosOf& sin_cos_of) {
  scalar_t sum = grad_row[j];
  for (int k = 0; k < layout.n_frequencies; ++k) {
    const SinCos<scalar_t> sc = sin_cos_of(k);
    sum += octave_scale<scalar_t>(k) *
           (sc.c * grad_row[layout.sin_column(k, j)] - sc.s * grad_row[layout.cos_column(k, j)]);
  }
  return sum;
}

// dL/dx_j of the double backward: -gg_j sum_k 4^k (sin g_sin_kj + cos g_cos_kj).
template <typename scalar_t, typename SinCosOf>
FF_HOST_DEVICE FF_INLINE scalar_t frequency_second_input_grad(
    const FrequencyLayout& layout, const scalar_t* __restrict__ grad_row, int j, scalar_t gg,
    const SinCosOf& sin_cos_of) {
  scalar_t sum = scalar_t(0);
  for (int k = 0; k < layout.n_frequencies; ++k) {
    const SinCos<scalar_t> sc = sin_cos_of(k);
    const scalar_t scale = octave_scale<scalar_t>(k);
    sum += scale * scale *
           (sc.s * grad_row[layout.sin_column(k, j)] + sc.c * grad_row[layout.cos_column(k, j)]);
  }
  return -gg * sum;
}

// dL/dG at a sin column (2^k cos gg) or a cos column (-2^k sin gg) of octave k.
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE scalar_t frequency_grad_out_grad(int k, bool is_cos,
                                                          const SinCos<scalar_t>& sc,
                                                          scalar_t gg) {
  const scalar_t scale = octave_scale<scalar_t>(k);
  return is_cos ? -(scale * sc.s * gg) : scale * sc.c * gg;
}

// ---------------------------------------------------------------------------------- items
// The CUDA kernels' items (one thread each): per output element for the [n, width] outputs,
// so that consecutive threads write consecutive memory, and per (point, coordinate) for the
// [n, d] gradients, which sum over the octaves. The CPU runs them too under the tile emulation
// (tests); its production passes are in frequency_encode_cpu.cpp.

template <typename scalar_t>
struct FrequencyForward {
  FrequencyLayout layout;
  const scalar_t* __restrict__ x;  // [n, d]
  scalar_t* __restrict__ out;      // [n, width]
};

template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void frequency_forward_item(const FrequencyForward<scalar_t>& a,
                                                     int64_t element) {
  const int64_t width = a.layout.width();
  const int64_t point = divide_index(element, width);
  const FrequencyColumn col = column_of(element - point * width, a.layout.dim);
  const scalar_t x = a.x[point * a.layout.dim + col.j];
  if (col.octave < 0) {
    a.out[element] = x;
    return;
  }
  using std::cos;
  using std::sin;
  const scalar_t scaled = x * octave_scale<scalar_t>(col.octave);
  a.out[element] = col.is_cos ? cos(scaled) : sin(scaled);
}

template <typename scalar_t>
struct FrequencyBackward {
  FrequencyLayout layout;
  const scalar_t* __restrict__ x;         // [n, d]
  const scalar_t* __restrict__ grad_out;  // G [n, width]
  scalar_t* __restrict__ x_grad;          // [n, d]
};

template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void frequency_backward_item(const FrequencyBackward<scalar_t>& a,
                                                      int64_t element) {
  const int64_t point = divide_index(element, a.layout.dim);
  const int j = static_cast<int>(element - point * a.layout.dim);
  const scalar_t x = a.x[element];
  a.x_grad[element] = frequency_input_grad(
      a.layout, a.grad_out + point * a.layout.width(), j,
      [=](int k) { return std_sin_cos(x * octave_scale<scalar_t>(k)); });
}

template <typename scalar_t>
struct FrequencySecondOrder {
  FrequencyLayout layout;
  const scalar_t* __restrict__ x;         // [n, d]
  const scalar_t* __restrict__ grad_out;  // G [n, width]
  const scalar_t* __restrict__ gg_x;      // [n, d]
  scalar_t* __restrict__ grad_out_grad;   // dL/dG [n, width] or nullptr
  scalar_t* __restrict__ x_grad;          // dL/dx [n, d] or nullptr
};

// One element of dL/dG.
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void frequency_grad_out_grad_item(
    const FrequencySecondOrder<scalar_t>& a, int64_t element) {
  const int64_t width = a.layout.width();
  const int64_t point = divide_index(element, width);
  const FrequencyColumn col = column_of(element - point * width, a.layout.dim);
  const int64_t at = point * a.layout.dim + col.j;
  const scalar_t gg = a.gg_x[at];
  if (col.octave < 0) {
    a.grad_out_grad[element] = gg;
    return;
  }
  const SinCos<scalar_t> sc = std_sin_cos(a.x[at] * octave_scale<scalar_t>(col.octave));
  a.grad_out_grad[element] = frequency_grad_out_grad(col.octave, col.is_cos, sc, gg);
}

// One element of dL/dx.
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void frequency_second_input_grad_item(
    const FrequencySecondOrder<scalar_t>& a, int64_t element) {
  const int64_t point = divide_index(element, a.layout.dim);
  const int j = static_cast<int>(element - point * a.layout.dim);
  const scalar_t x = a.x[element];
  a.x_grad[element] = frequency_second_input_grad(
      a.layout, a.grad_out + point * a.layout.width(), j, a.gg_x[element],
      [=](int k) { return std_sin_cos(x * octave_scale<scalar_t>(k)); });
}

}  // namespace fastfield
