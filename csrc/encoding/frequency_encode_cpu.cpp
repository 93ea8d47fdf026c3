// CPU kernels of frequency_encode: the drivers of frequency_encode_host.h on the CPU launcher.
//
// Tasks take blocks of kBlockPoints consecutive points. A block first fills tables of
// sin(2^k x) and cos(2^k x) for its d * kBlockPoints coordinates, octave by octave, in loops
// that vectorise; then it walks its points with the formulas of frequency_encode.h reading the
// tables. float32 sin and cos are computed in float64 by a branch-free polynomial and rounded
// once (glibc's vector sinf/cosf need -ffast-math, which the build does not use); a block with
// a coordinate whose scaled value leaves the polynomial's range (|2^k x| > 2^20, inf, NaN) takes
// std::sin / std::cos in float64 for that block instead, rounded the same way. float64 uses
// std::sin / std::cos. Under the tile emulation (tests) the CPU runs the CUDA kernels' items.
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "../common/cpu_launch.h"
#include "../common/tile_cpu.h"
#include "frequency_encode_host.h"

namespace fastfield {
namespace {

constexpr int64_t kBlockPoints = 128;

// Largest |2^k x| the polynomial path takes: the quadrant count q = round(2 a / pi) stays below
// 2^20, so q * kPio2Hi (33 significant bits) is exact and the reduced argument is accurate far
// beyond float32's precision.
constexpr double kFastLimit = 1048576.0;  // 2^20
constexpr double kTwoOverPi = 0.63661977236758134308;
constexpr double kPio2Hi = 1.57079632673412561417e+00;  // pi / 2, first 33 bits (fdlibm)
constexpr double kPio2Lo = 6.07710050650619224932e-11;  // pi / 2 - kPio2Hi
constexpr double kRoundMagic = 6755399441055744.0;      // 1.5 * 2^52: adding it rounds to integer

// sin and cos of a (|a| <= kFastLimit) in float64, rounded to float32: a = q pi/2 + r with
// |r| <= pi/4, Taylor polynomials of degree 11 (sin) and 12 (cos), whose truncation errors
// (7e-12 and 4e-13) are far below half a float32 ulp; the quadrant q mod 4 swaps and negates.
inline void sin_cos_f32(float a, float& s_out, float& c_out) {
  const double x = a;
  const double shifted = x * kTwoOverPi + kRoundMagic;
  int64_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);  // the low bits hold q mod 2^51 (two's complement)
  const double q = shifted - kRoundMagic;
  const double r = (x - q * kPio2Hi) - q * kPio2Lo;
  const double r2 = r * r;
  const double s = r + r * r2 * (-1.0 / 6 + r2 * (1.0 / 120 + r2 * (-1.0 / 5040 +
                       r2 * (1.0 / 362880 + r2 * (-1.0 / 39916800)))));
  const double c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24 + r2 * (-1.0 / 720 + r2 * (1.0 / 40320 +
                       r2 * (-1.0 / 3628800 + r2 * (1.0 / 479001600))))));
  const int64_t quadrant = bits & 3;
  const double sin_q = (quadrant & 1) ? c : s, cos_q = (quadrant & 1) ? s : c;
  s_out = static_cast<float>((quadrant & 2) ? -sin_q : sin_q);
  c_out = static_cast<float>(((quadrant + 1) & 2) ? -cos_q : cos_q);
}

// sin/cos of scale * x[e] for e < m into s[e], c[e]; compiled for the wide vector ISAs.
FF_CPU_MULTIVERSION void fast_octave(const float* __restrict__ x, int64_t m, float scale,
                                     float* __restrict__ s, float* __restrict__ c) {
  for (int64_t e = 0; e < m; ++e) sin_cos_f32(x[e] * scale, s[e], c[e]);
}

// Whether |x[e]| * max_scale <= kFastLimit for every e < m (false for inf and NaN).
FF_CPU_MULTIVERSION bool within_fast_range(const float* __restrict__ x, int64_t m,
                                           float max_scale) {
  int inside = 1;
  for (int64_t e = 0; e < m; ++e) inside &= std::fabs(x[e] * max_scale) <= float(kFastLimit);
  return inside != 0;
}

void std_octave(const float* x, int64_t m, float scale, float* s, float* c) {
  for (int64_t e = 0; e < m; ++e) {
    const double a = static_cast<double>(x[e] * scale);
    s[e] = static_cast<float>(std::sin(a));
    c[e] = static_cast<float>(std::cos(a));
  }
}

void std_octave(const double* x, int64_t m, double scale, double* s, double* c) {
  for (int64_t e = 0; e < m; ++e) {
    const double a = x[e] * scale;
    s[e] = std::sin(a);
    c[e] = std::cos(a);
  }
}

// sin and cos of 2^k x for the m coordinates x of a block, octave-major: [L][m] each.
template <typename scalar_t>
struct OctaveTables {
  std::vector<scalar_t> sin, cos;
  int64_t m = 0;

  void fill(const scalar_t* x, int64_t count, int n_frequencies) {
    m = count;
    sin.resize(static_cast<size_t>(n_frequencies * m));
    cos.resize(sin.size());
    bool fast = false;
    if constexpr (std::is_same_v<scalar_t, float>) {
      fast = n_frequencies > 0 &&
             within_fast_range(x, m, octave_scale<float>(n_frequencies - 1));
    }
    for (int k = 0; k < n_frequencies; ++k) {
      scalar_t* s = sin.data() + k * m;
      scalar_t* c = cos.data() + k * m;
      if constexpr (std::is_same_v<scalar_t, float>) {
        if (fast) {
          fast_octave(x, m, octave_scale<float>(k), s, c);
          continue;
        }
      }
      std_octave(x, m, octave_scale<scalar_t>(k), s, c);
    }
  }
  // (sin, cos) of 2^k x_e, e counted from the block's first coordinate.
  SinCos<scalar_t> at(int k, int64_t e) const { return {sin[k * m + e], cos[k * m + e]}; }
};

// A point's sin and cos of 2^k x_j, from its block's tables.
template <typename scalar_t>
struct PointOctaves {
  const OctaveTables<scalar_t>& tables;
  int64_t first;  // the point's first coordinate, counted from the block's
  SinCos<scalar_t> operator()(int k, int j) const { return tables.at(k, first + j); }
};

// fn(point, octaves) for every point; tasks take blocks of points and fill their tables first.
template <typename scalar_t, typename Fn>
void for_each_point(const FrequencyLayout& layout, const scalar_t* x, const Fn& fn) {
  const int64_t n_blocks = (layout.n_points + kBlockPoints - 1) / kBlockPoints;
  cpu::parallel_for(0, n_blocks, 1, [&](int64_t begin, int64_t end) {
    OctaveTables<scalar_t> tables;
    for (int64_t block = begin; block < end; ++block) {
      const int64_t first = block * kBlockPoints;
      const int64_t last = std::min(first + kBlockPoints, layout.n_points);
      tables.fill(x + first * layout.dim, (last - first) * layout.dim, layout.n_frequencies);
      for (int64_t point = first; point < last; ++point) {
        fn(point, PointOctaves<scalar_t>{tables, (point - first) * layout.dim});
      }
    }
  });
}

// One [width] row: row[j] = input[j], and entry(k, is_cos, (sin, cos), j) in octave k's sin and
// cos columns. kDim > 0 fixes dim at compile time (3, every field's case: the inner loops then
// unroll; the row writes took twice the sin/cos tables' time with a runtime dim).
template <int kDim, typename scalar_t, typename Entry>
void write_row_of(const FrequencyLayout& layout, scalar_t* row, const scalar_t* input,
                  const PointOctaves<scalar_t>& octaves, const Entry& entry) {
  const int dim = kDim > 0 ? kDim : layout.dim;
  for (int j = 0; j < dim; ++j) row[j] = input[j];
  // Octave k's sin block then its cos block, dim values each (sin_column, cos_column).
  scalar_t* out = row + dim;
  const scalar_t* sin = octaves.tables.sin.data() + octaves.first;
  const scalar_t* cos = octaves.tables.cos.data() + octaves.first;
  const int64_t stride = octaves.tables.m;
  for (int k = 0; k < layout.n_frequencies; ++k, out += 2 * dim, sin += stride, cos += stride) {
    for (int j = 0; j < dim; ++j) out[j] = entry(k, false, SinCos<scalar_t>{sin[j], cos[j]}, j);
    for (int j = 0; j < dim; ++j) {
      out[dim + j] = entry(k, true, SinCos<scalar_t>{sin[j], cos[j]}, j);
    }
  }
}

template <typename scalar_t, typename Entry>
void write_row(const FrequencyLayout& layout, scalar_t* row, const scalar_t* input,
               const PointOctaves<scalar_t>& octaves, const Entry& entry) {
  if (layout.dim == 3) {
    write_row_of<3>(layout, row, input, octaves, entry);
  } else {
    write_row_of<0>(layout, row, input, octaves, entry);
  }
}

// The CUDA kernels' items under the tile emulation (tests), the CPU passes otherwise.
template <typename Items, typename Passes>
void emulated_or(const Items& items, const Passes& passes) {
  if (cpu::tile_emulation_width() != 0) {
    cpu::run_emulated(items);
  } else {
    passes();
  }
}

}  // namespace

template <>
struct FrequencyPasses<CpuLauncher> {
  using Items = FrequencyItems<CpuLauncher>;

  template <typename scalar_t>
  static void forward(const at::Tensor& device_of, const FrequencyForward<scalar_t>& a) {
    const FrequencyLayout& layout = a.layout;
    emulated_or([&] { Items::forward(device_of, a); }, [&] {
      for_each_point(layout, a.x, [&](int64_t point, const PointOctaves<scalar_t>& octaves) {
        write_row(layout, a.out + point * layout.width(), a.x + point * layout.dim, octaves,
                  [](int, bool is_cos, const SinCos<scalar_t>& sc, int) {
                    return is_cos ? sc.c : sc.s;
                  });
      });
    });
  }

  template <typename scalar_t>
  static void backward(const at::Tensor& device_of, const FrequencyBackward<scalar_t>& a) {
    const FrequencyLayout& layout = a.layout;
    emulated_or([&] { Items::backward(device_of, a); }, [&] {
      for_each_point(layout, a.x, [&](int64_t point, const PointOctaves<scalar_t>& octaves) {
        const scalar_t* grad_row = a.grad_out + point * layout.width();
        for (int j = 0; j < layout.dim; ++j) {
          a.x_grad[point * layout.dim + j] = frequency_input_grad(
              layout, grad_row, j, [&](int k) { return octaves(k, j); });
        }
      });
    });
  }

  template <typename scalar_t>
  static void second_order(const at::Tensor& device_of, const FrequencySecondOrder<scalar_t>& a) {
    const FrequencyLayout& layout = a.layout;
    emulated_or([&] { Items::second_order(device_of, a); }, [&] {
      for_each_point(layout, a.x, [&](int64_t point, const PointOctaves<scalar_t>& octaves) {
        const scalar_t* gg = a.gg_x + point * layout.dim;
        if (a.grad_out_grad != nullptr) {
          write_row(layout, a.grad_out_grad + point * layout.width(), gg, octaves,
                    [&](int k, bool is_cos, const SinCos<scalar_t>& sc, int j) {
                      return frequency_grad_out_grad(k, is_cos, sc, gg[j]);
                    });
        }
        if (a.x_grad != nullptr) {
          const scalar_t* grad_row = a.grad_out + point * layout.width();
          for (int j = 0; j < layout.dim; ++j) {
            a.x_grad[point * layout.dim + j] = frequency_second_input_grad(
                layout, grad_row, j, gg[j], [&](int k) { return octaves(k, j); });
          }
        }
      });
    });
  }
};

}  // namespace fastfield

TORCH_LIBRARY_IMPL(fastfield, CPU, m) {
  using fastfield::CpuLauncher;
  m.impl("frequency_encode_fwd", &fastfield::frequency_encode_fwd_driver<CpuLauncher>);
  m.impl("frequency_encode_bwd", &fastfield::frequency_encode_bwd_driver<CpuLauncher>);
  m.impl("frequency_encode_bwd_bwd", &fastfield::frequency_encode_bwd_bwd_driver<CpuLauncher>);
}
