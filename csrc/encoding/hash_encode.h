// Multi-resolution hash encoding (instant-ngp / tiny-cuda-nn grid): the math of hash_encode_fwd,
// _bwd and _bwd_bwd for one (point, level), run on CPU and CUDA by the drivers of
// hash_encode_host.h.
//
// Level l of L, table of T = 2^k rows of F features (params [L, T, F]):
//   s_l = base_resolution * per_level_scale^l - 1          (scale)
//   r_l = ceil(s_l) + 1                                     (grid resolution)
//   x' = clamp(x, 0, 1);  pos = x' s_l + 0.5;  c = floor(pos);  t = pos - c  (per axis)
//   corner (i, j, k) = c + (b0, b1, b2), b in {0, 1}^3, weight w = prod_d (b_d ? t_d : 1 - t_d)
//   row = i + j r_l + k r_l^2                         when r_l^3 <= T (dense level)
//       = i xor (j * 2654435761) xor (k * 805459861)  otherwise (hashed level), uint32 arithmetic
//   both taken modulo T (dense rows stay below r_l^3 except for corners past the top faces,
//   where pos exceeds r_l - 1 when frac(s_l) >= 0.5: they alias other rows, as in tiny-cuda-nn)
//   y_l[f] = sum over the 8 corners of w * params[l, row, f]   (output [n, L * F], level-major)
//
// Derivatives (G = dL/dy, the incoming gradient; dt_d/dx_d = s_l inside [0, 1], 0 where clamped):
//   dL/dparams[l, row, f] += w G[l, f]
//   dL/dx_d = sum_l dt_d/dx_d sum_corners (dw/dt_d) sum_f G[l, f] params[l, row, f]
// The backward is linear in G and in params and piecewise in x (rows and the clamp are locally
// constant); its own derivatives, for a loss on (grad_x, grad_params) with incoming gradients
// (gg_x [n, 3], gg_params [L, T, F]) and v_d = gg_x_d dt_d/dx_d:
//   dL/dG[l, f] = sum_corners w gg_params[l, row, f] + (sum_d v_d dw/dt_d) params[l, row, f]
//   dL/dparams[l, row, f] += (sum_d v_d dw/dt_d) G[l, f]
//   dL/dx_e = sum_l dt_e/dx_e sum_corners [dw/dt_e B + sum_{d != e} v_d d2w/dt_d dt_e A]
//     with A = sum_f G[l, f] params[l, row, f], B = sum_f G[l, f] gg_params[l, row, f]
// (d2w/dt_d^2 = 0: trilinear weights are linear in each axis).
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../common/host_device.h"
#include "../common/math.h"

namespace fastfield {

constexpr int kMaxHashLevels = 64;
// tiny-cuda-nn's coherent prime hash (the x prime is 1).
constexpr uint32_t kHashPrimeY = 2654435761u;
constexpr uint32_t kHashPrimeZ = 805459861u;

template <typename scalar_t>
struct HashLevel {
  scalar_t scale;       // s_l
  uint32_t resolution;  // r_l
  uint32_t dense;       // r_l^3 <= T
};

// The grid of one call, captured by value by the kernels (about 1 KiB, kernel-parameter space).
template <typename scalar_t>
struct HashGrid {
  int64_t n_points;
  int32_t n_levels;
  int32_t n_features;
  int64_t table_size;  // T
  uint32_t row_mask;   // T - 1
  HashLevel<scalar_t> levels[kMaxHashLevels];

  // Offset of params[level, row, 0] (int64: L * T * F may pass 2^31).
  FF_HOST_DEVICE FF_INLINE int64_t entry(int level, uint32_t row) const {
    return (static_cast<int64_t>(level) * table_size + row) * n_features;
  }
  FF_HOST_DEVICE FF_INLINE int64_t out_width() const {
    return static_cast<int64_t>(n_levels) * n_features;
  }
};

// a * b rounded on its own: nvcc would otherwise fuse a * b + c into one FMA, and the CPU (no
// FMA in the baseline ISA) and the PyTorch twin round twice; with this all three find the same
// cell, bit for bit.
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE scalar_t product_rn(scalar_t a, scalar_t b) {
#if defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<scalar_t, float>) {
    return __fmul_rn(a, b);
  } else {
    return __dmul_rn(a, b);
  }
#else
  return a * b;
#endif
}

// Where a point falls in one level: the 8 corners' rows and the trilinear coordinates.
// Corner k is (k & 1, (k >> 1) & 1, (k >> 2) & 1) from the cell's lower corner.
template <typename scalar_t>
struct HashCell {
  uint32_t row[8];
  scalar_t t[3];      // position inside the cell, in [0, 1]
  scalar_t dt_dx[3];  // s_l, or 0 where x_d was outside [0, 1] (clamped)

  static FF_HOST_DEVICE FF_INLINE bool upper(int k, int d) { return (k >> d) & 1; }
  FF_HOST_DEVICE FF_INLINE scalar_t factor(int k, int d) const {
    return upper(k, d) ? t[d] : scalar_t(1) - t[d];
  }
  FF_HOST_DEVICE FF_INLINE scalar_t sign(int k, int d) const {
    return upper(k, d) ? scalar_t(1) : scalar_t(-1);
  }
  FF_HOST_DEVICE FF_INLINE scalar_t weight(int k) const {
    return factor(k, 0) * factor(k, 1) * factor(k, 2);
  }
  // d weight / d t_d
  FF_HOST_DEVICE FF_INLINE scalar_t weight_dt(int k, int d) const {
    return sign(k, d) * factor(k, d == 0 ? 1 : 0) * factor(k, d == 2 ? 1 : 2);
  }
  // d^2 weight / d t_d d t_e, d != e
  FF_HOST_DEVICE FF_INLINE scalar_t weight_dt2(int k, int d, int e) const {
    return sign(k, d) * sign(k, e) * factor(k, 3 - d - e);
  }
};

// Clamps x into [0, 1] per axis. A NaN coordinate gives a NaN t (so NaN features and gradients)
// and cell 0 along its axis: no input, even unchecked, indexes outside the table.
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE HashCell<scalar_t> hash_cell(const scalar_t* __restrict__ x,
                                                      const HashLevel<scalar_t>& level,
                                                      uint32_t row_mask) {
  HashCell<scalar_t> cell;
  uint32_t corner[3];
  for (int d = 0; d < 3; ++d) {
    const scalar_t xd = x[d];
    const scalar_t pos = product_rn(clip_keep_nan(xd, scalar_t(0), scalar_t(1)), level.scale) +
                         scalar_t(0.5);
    using std::floor;
    const scalar_t lower = floor(pos);
    // False only for NaN (scales are checked below 2^30): the cast below is then defined.
    const bool valid = lower >= scalar_t(0) && lower < scalar_t(4294967296.0);
    corner[d] = valid ? static_cast<uint32_t>(lower) : 0u;
    cell.t[d] = pos - lower;
    cell.dt_dx[d] = (xd < scalar_t(0) || xd > scalar_t(1)) ? scalar_t(0) : level.scale;
  }
  const uint32_t r = level.resolution;
  for (int k = 0; k < 8; ++k) {
    const uint32_t i = corner[0] + (k & 1), j = corner[1] + ((k >> 1) & 1),
                   l = corner[2] + ((k >> 2) & 1);
    const uint32_t row = level.dense ? i + j * r + l * r * r
                                     : i ^ (j * kHashPrimeY) ^ (l * kHashPrimeZ);
    cell.row[k] = row & row_mask;
  }
  return cell;
}

// ---------------------------------------------------------------------------------- items
// One item per (point, level), in slots of kHashGroupPoints consecutive points of one level; a
// group of kHashGroupPoints points has one slot per level, consecutive. A CUDA warp then holds
// 32 consecutive points of one level: they read their level's geometry as one broadcast and
// gather from nearby rows when the points are near each other (samples along rays), and a
// group's output rows (L * F values per point) are complete while they are still in cache.
// The last group is padded to a full slot (items past n_points do nothing).
constexpr int64_t kHashGroupPoints = 128;

struct PointLevel {
  int64_t point;  // >= n_points for the padding
  int level;
};

FF_HOST_DEVICE FF_INLINE int64_t hash_item_count(int64_t n_points, int n_levels) {
  return (n_points + kHashGroupPoints - 1) / kHashGroupPoints * kHashGroupPoints * n_levels;
}

FF_HOST_DEVICE FF_INLINE PointLevel point_level_of(int64_t item, int n_levels) {
  const int64_t slot = item / kHashGroupPoints, lane = item % kHashGroupPoints;
  // slot / n_levels in 32 bits where it fits: 64-bit division is a long routine on GPUs.
  int64_t group;
  if (slot <= int64_t(0xffffffff)) {
    group = static_cast<uint32_t>(slot) / static_cast<uint32_t>(n_levels);
  } else {
    group = slot / n_levels;
  }
  return {group * kHashGroupPoints + lane, static_cast<int>(slot - group * n_levels)};
}

// ---------------------------------------------------------------------------------- forward

template <typename scalar_t>
struct HashForward {
  HashGrid<scalar_t> grid;
  const scalar_t* __restrict__ x;       // [n, 3]
  const scalar_t* __restrict__ params;  // [L, T, F]
  scalar_t* __restrict__ out;           // [n, L * F]
};

// The item's cell comes from the caller (the CPU computes it some points ahead, to prefetch).
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void hash_forward_item(const HashForward<scalar_t>& a,
                                                const HashCell<scalar_t>& cell, int64_t point,
                                                int level) {
  const HashGrid<scalar_t>& g = a.grid;
  scalar_t w[8];
  for (int k = 0; k < 8; ++k) w[k] = cell.weight(k);
  const scalar_t* table = a.params + g.entry(level, 0);
  scalar_t* out = a.out + point * g.out_width() + static_cast<int64_t>(level) * g.n_features;
  for (int f = 0; f < g.n_features; ++f) {
    scalar_t acc = scalar_t(0);
    for (int k = 0; k < 8; ++k) {
      acc += w[k] * table[static_cast<int64_t>(cell.row[k]) * g.n_features + f];
    }
    out[f] = acc;
  }
}

// ---------------------------------------------------------------------------------- scatter
// Gradients to the table: params_grad[l, row_k, f] += c_k G[point, l, f] with per-corner
// coefficients c_k from a Coefficients policy. Add is the accumulation (atomic on CUDA, a plain
// add in the CPU's one-writer-per-level order).

template <typename scalar_t>
struct HashScatter {
  HashGrid<scalar_t> grid;
  const scalar_t* __restrict__ x;         // [n, 3]
  const scalar_t* __restrict__ grad_out;  // G [n, L * F]
  scalar_t* params_grad;                  // [L, T, F] (may alias nothing else; atomics on CUDA)
};

// Backward: c_k = w_k.
struct CornerWeights {
  template <typename scalar_t>
  FF_HOST_DEVICE FF_INLINE void operator()(const HashCell<scalar_t>& cell, int64_t /*point*/,
                                           scalar_t (&coef)[8]) const {
    for (int k = 0; k < 8; ++k) coef[k] = cell.weight(k);
  }
};

// sum_d v_d dw_k/dt_d with v_d = direction[point, d] dt_d/dx_d: the derivative of the corner
// weights along a direction in x (gg_x [n, 3], for the double backward).
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void weights_along(const HashCell<scalar_t>& cell,
                                            const scalar_t* __restrict__ direction,
                                            scalar_t (&coef)[8]) {
  const scalar_t v[3] = {direction[0] * cell.dt_dx[0], direction[1] * cell.dt_dx[1],
                         direction[2] * cell.dt_dx[2]};
  for (int k = 0; k < 8; ++k) {
    coef[k] = v[0] * cell.weight_dt(k, 0) + v[1] * cell.weight_dt(k, 1) +
              v[2] * cell.weight_dt(k, 2);
  }
}

template <typename scalar_t>
struct CornerWeightsAlong {
  const scalar_t* __restrict__ direction;  // [n, 3]
  FF_HOST_DEVICE FF_INLINE void operator()(const HashCell<scalar_t>& cell, int64_t point,
                                           scalar_t (&coef)[8]) const {
    weights_along(cell, direction + 3 * point, coef);
  }
};

template <typename scalar_t, typename Coefficients, typename Add>
FF_HOST_DEVICE FF_INLINE void hash_scatter_item(const HashScatter<scalar_t>& a,
                                                const Coefficients& coefficients, const Add& add,
                                                const HashCell<scalar_t>& cell, int64_t point,
                                                int level) {
  const HashGrid<scalar_t>& g = a.grid;
  scalar_t coef[8];
  coefficients(cell, point, coef);
  const scalar_t* grad = a.grad_out + point * g.out_width() +
                         static_cast<int64_t>(level) * g.n_features;
  scalar_t* table = a.params_grad + g.entry(level, 0);
  for (int k = 0; k < 8; ++k) {
    scalar_t* row = table + static_cast<int64_t>(cell.row[k]) * g.n_features;
    for (int f = 0; f < g.n_features; ++f) add(row + f, coef[k] * grad[f]);
  }
}

// ---------------------------------------------------------------------------------- per point
// Passes that sum over the levels per point (dL/dx): each (point, level) item adds its level's
// part to the point's accumulator, in level order, and the sum is stored once. The accumulator
// stays in registers (CUDA: one thread per point) or in a per-group array (CPU): no atomics,
// and the same sums on every run and device layout.

template <typename scalar_t>
struct HashInputGrad {
  HashGrid<scalar_t> grid;
  const scalar_t* __restrict__ x;         // [n, 3]
  const scalar_t* __restrict__ params;    // [L, T, F]
  const scalar_t* __restrict__ grad_out;  // G [n, L * F]
  scalar_t* __restrict__ x_grad;          // [n, 3]
};

// Backward: one level's part of dL/dx.
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void hash_input_grad_item(const HashInputGrad<scalar_t>& a,
                                                   const HashCell<scalar_t>& cell,
                                                   int64_t point, int level,
                                                   scalar_t (&x_grad)[3]) {
  const HashGrid<scalar_t>& g = a.grid;
  const scalar_t* table = a.params + g.entry(level, 0);
  const scalar_t* grad = a.grad_out + point * g.out_width() +
                         static_cast<int64_t>(level) * g.n_features;
  scalar_t along[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // A_k = sum_f G_f params[row_k, f]
  for (int f = 0; f < g.n_features; ++f) {
    for (int k = 0; k < 8; ++k) {
      along[k] += grad[f] * table[static_cast<int64_t>(cell.row[k]) * g.n_features + f];
    }
  }
  for (int d = 0; d < 3; ++d) {
    scalar_t sum = scalar_t(0);
    for (int k = 0; k < 8; ++k) sum += cell.weight_dt(k, d) * along[k];
    x_grad[d] += cell.dt_dx[d] * sum;
  }
}

template <typename scalar_t>
struct HashSecondOrder {
  HashGrid<scalar_t> grid;
  const scalar_t* __restrict__ x;          // [n, 3]
  const scalar_t* __restrict__ params;     // [L, T, F]
  const scalar_t* __restrict__ grad_out;   // G [n, L * F]
  const scalar_t* __restrict__ gg_x;       // [n, 3] or nullptr
  const scalar_t* __restrict__ gg_params;  // [L, T, F] or nullptr
  scalar_t* __restrict__ grad_out_grad;    // dL/dG [n, L * F] or nullptr
  scalar_t* __restrict__ x_grad;           // dL/dx [n, 3] or nullptr
};

// Double backward: dL/dG for one (point, level) and that level's part of dL/dx.
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void hash_second_order_item(const HashSecondOrder<scalar_t>& a,
                                                     const HashCell<scalar_t>& cell,
                                                     int64_t point, int level,
                                                     scalar_t (&x_grad)[3]) {
  const HashGrid<scalar_t>& g = a.grid;
  const int64_t row_offset = point * g.out_width() + static_cast<int64_t>(level) * g.n_features;
  const scalar_t* grad = a.grad_out + row_offset;
  const scalar_t* table = a.params + g.entry(level, 0);
  const scalar_t* gg_table = a.gg_params != nullptr ? a.gg_params + g.entry(level, 0) : nullptr;
  scalar_t w[8], w_along[8];
  for (int k = 0; k < 8; ++k) w[k] = cell.weight(k);
  scalar_t v[3] = {0, 0, 0};
  if (a.gg_x != nullptr) {
    for (int d = 0; d < 3; ++d) v[d] = a.gg_x[3 * point + d] * cell.dt_dx[d];
    weights_along(cell, a.gg_x + 3 * point, w_along);
  } else {
    for (int k = 0; k < 8; ++k) w_along[k] = scalar_t(0);
  }
  scalar_t along[8] = {0, 0, 0, 0, 0, 0, 0, 0};     // A_k = sum_f G_f params[row_k, f]
  scalar_t along_gg[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // B_k = sum_f G_f gg_params[row_k, f]
  for (int f = 0; f < g.n_features; ++f) {
    scalar_t grad_f = scalar_t(0);
    for (int k = 0; k < 8; ++k) {
      const int64_t at = static_cast<int64_t>(cell.row[k]) * g.n_features + f;
      const scalar_t p = table[at];
      grad_f += w_along[k] * p;
      along[k] += grad[f] * p;
      if (gg_table != nullptr) {
        grad_f += w[k] * gg_table[at];
        along_gg[k] += grad[f] * gg_table[at];
      }
    }
    if (a.grad_out_grad != nullptr) a.grad_out_grad[row_offset + f] = grad_f;
  }
  if (a.x_grad == nullptr) return;
  // mixed[c] = d2/(dt_d dt_e) sum_k w_k A_k for the axis pair {d, e} = {0, 1, 2} \ {c}.
  scalar_t mixed[3] = {0, 0, 0};
  if (a.gg_x != nullptr) {
    for (int k = 0; k < 8; ++k) {
      mixed[0] += cell.weight_dt2(k, 1, 2) * along[k];
      mixed[1] += cell.weight_dt2(k, 0, 2) * along[k];
      mixed[2] += cell.weight_dt2(k, 0, 1) * along[k];
    }
  }
  for (int e = 0; e < 3; ++e) {
    scalar_t sum = scalar_t(0);
    if (gg_table != nullptr) {
      for (int k = 0; k < 8; ++k) sum += cell.weight_dt(k, e) * along_gg[k];
    }
    for (int d = 0; d < 3; ++d) {
      if (d != e) sum += v[d] * mixed[3 - d - e];
    }
    x_grad[e] += cell.dt_dx[e] * sum;
  }
}

}  // namespace fastfield
