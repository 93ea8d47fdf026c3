// Ray marching through an occupancy grid: the per-ray walk of march_rays_count / march_rays_fill,
// run on CPU and CUDA by the drivers of marching_host.h and mirrored operation for operation by
// fastfield/reference/marching.py (the tests require the same t values, bit for bit).
//
// Grid. A box aabb = (lo, hi) with centre c = (lo + hi) * 0.5 and half size h = (hi - lo) * 0.5,
// and `levels` cascades: level l covers |x - c| <= h 2^l on every axis with res[0] x res[1] x
// res[2] cells. With q = (x - c) * (1 / h), a point's level is the finest one that contains it:
// the smallest l with max_k |q_k| <= 2^l (the outermost level for points outside every box). Its
// cell there: g_k = (q_k * 2^-l + 1) * (res_k * 0.5), i_k = floor(g_k) clamped into
// [0, res_k - 1]. (Reciprocals are taken once per ray: the walk itself never divides.)
// Cell n = l * res_0 res_1 res_2 + (i_0 res_1 + i_1) res_2 + i_2 (x slowest) is occupied when bit
// (n & 7) of byte (n >> 3) of the bitfield is set, least significant bit first
// (fastfield/occupancy/grid.py packs it). With levels > 1 every res_k is a multiple of 4, so that
// the faces of level l - 1 lie on cell faces of level l.
//
// Samples. The ray x(t) = o + t d is marched over [t_enter, t_exit] = [near, far] cut to the
// outermost box c -/+ h 2^(levels-1) (the slab test of ../rays/bounds.h, t >= 0); rays that miss
// it, have NaN or infinite bounds, or t_enter >= t_exit get no samples. The steps:
//   t_0 = t_enter + u dt(t_enter)   (u [0, 1) the caller's jitter per ray, 0 without)
//   cone_angle == 0: t_k = t_0 + k step        (closed form: no rounding accumulates)
//   cone_angle > 0:  t_{k+1} = t_k + dt(t_k),   dt(t) = clamp(t cone_angle, step, max_step)
// Step k (k < max_steps, t_k < t_exit) is the sample [t_k, min(t_{k+1}, t_exit)] if the cell of
// its midpoint (t_start + t_end) * 0.5 is occupied. The grid only removes steps, never moves
// them: a full grid gives every step, contiguous (each t_end is the next t_start).
//
// Empty space is skipped with the DDA: at an empty midpoint the walk computes where the ray
// leaves that cell (at the midpoint's level) and continues with the step that contains the exit
// t_b: cone 0: k = max(k + 1, floor((t_b - t_0) * (1 / step))); cone > 0: the recursion advanced
// while t_{k+1} <= t_b. So no step whose midpoint lies past the exit is skipped, up to rounding
// in t_b of under half a step. k grows by at least 1 per iteration: a ray costs at most max_steps
// iterations whatever its inputs (NaN, zero directions, unchecked boxes).
//
// Exactness. Every product, sum and quotient is rounded on its own (mul_rn, add_rn, ...: nvcc
// would contract a * b + c into one FMA; marching_cpu.cpp keeps the host compiler from doing so),
// in the order the twin performs them.
#pragma once

#include <cmath>
#include <cstdint>

#include "../common/host_device.h"
#include "../common/math.h"
#include "../rays/bounds.h"

namespace fastfield {

// One rounding per operation (never fused into an FMA), on the host and on the device: the same
// float and double overloads in nvcc's host and device passes, with bodies that differ.
#if defined(__CUDA_ARCH__)
#define FF_ROUNDED_OP(name, op, float_intrinsic, double_intrinsic)                          \
  FF_HOST_DEVICE FF_INLINE float name(float a, float b) { return float_intrinsic(a, b); }    \
  FF_HOST_DEVICE FF_INLINE double name(double a, double b) { return double_intrinsic(a, b); }
#else
#define FF_ROUNDED_OP(name, op, float_intrinsic, double_intrinsic)         \
  FF_HOST_DEVICE FF_INLINE float name(float a, float b) { return a op b; } \
  FF_HOST_DEVICE FF_INLINE double name(double a, double b) { return a op b; }
#endif
FF_ROUNDED_OP(mul_rn, *, __fmul_rn, __dmul_rn)
FF_ROUNDED_OP(add_rn, +, __fadd_rn, __dadd_rn)
FF_ROUNDED_OP(sub_rn, -, __fsub_rn, __dsub_rn)
FF_ROUNDED_OP(div_rn, /, __fdiv_rn, __ddiv_rn)
#undef FF_ROUNDED_OP

// The occupancy grid as the walk reads it.
template <typename scalar_t>
struct MarchGrid {
  const uint8_t* bitfield;  // [n_bytes], n_bytes = ceil(levels * res_0 res_1 res_2 / 8)
  int64_t n_bytes;
  const scalar_t* aabb;     // [6] = (lo, hi)
  int64_t res[3];
  int64_t levels;
};

template <typename scalar_t>
struct MarchInputs {
  int64_t n_rays;
  const scalar_t* origins;     // [n_rays, 3]
  const scalar_t* directions;  // [n_rays, 3]
  const scalar_t* near;        // [n_rays]
  const scalar_t* far;         // [n_rays]
  const scalar_t* u;           // [n_rays] jitter in [0, 1), or nullptr
  MarchGrid<scalar_t> grid;
  scalar_t step;
  scalar_t cone_angle;
  scalar_t max_step;
  int64_t max_steps;
};

// A ray and the grid geometry it is walked through, with the reciprocals the walk multiplies by.
template <typename scalar_t>
struct RayFrame {
  scalar_t o[3], d[3], inv_d[3];
  scalar_t centre[3], half[3], inv_half[3];  // c, h and 1 / h of the level-0 box
  scalar_t half_res[3], inv_half_res[3];     // res * 0.5 and 1 / (res * 0.5)
  scalar_t inv_step;
};

// The cell holding a point: its per-axis index, 2^level, and whether it is occupied.
template <typename scalar_t>
struct GridCell {
  int64_t index[3];
  scalar_t scale;
  bool occupied;
};

// floor(g) clamped into [0, res - 1]; NaN maps to 0 (never an out-of-range index).
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE int64_t cell_coordinate(scalar_t g, int64_t res) {
  if (!(g >= scalar_t(0))) return 0;
  if (g >= static_cast<scalar_t>(res)) return res - 1;
  return static_cast<int64_t>(g);  // truncation is floor for g >= 0
}

template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE GridCell<scalar_t> grid_cell(const RayFrame<scalar_t>& f,
                                                      const MarchGrid<scalar_t>& grid,
                                                      const scalar_t* x) {
  scalar_t q[3];
  scalar_t extent = 0;  // max_k |q_k|
  for (int k = 0; k < 3; ++k) {
    q[k] = mul_rn(sub_rn(x[k], f.centre[k]), f.inv_half[k]);
    const scalar_t a = q[k] < scalar_t(0) ? -q[k] : q[k];
    extent = a > extent ? a : extent;
  }
  GridCell<scalar_t> cell;
  cell.scale = 1;
  scalar_t inv_scale = 1;  // 2^-level: multiplying by it is dividing by the scale, exactly
  int64_t level = 0;
  while (level + 1 < grid.levels && extent > cell.scale) {
    cell.scale = cell.scale * scalar_t(2);
    inv_scale = inv_scale * scalar_t(0.5);
    ++level;
  }
  int64_t n = level;
  for (int k = 0; k < 3; ++k) {
    const scalar_t g = mul_rn(add_rn(mul_rn(q[k], inv_scale), scalar_t(1)), f.half_res[k]);
    cell.index[k] = cell_coordinate(g, grid.res[k]);
    n = n * grid.res[k] + cell.index[k];
  }
  const int64_t byte = n >> 3;
  cell.occupied = byte < grid.n_bytes && ((grid.bitfield[byte] >> (n & 7)) & 1) != 0;
  return cell;
}

// The t where the ray leaves `cell` (the nearest face ahead of it on each moving axis); +inf for
// a ray that moves along no axis.
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE scalar_t cell_exit(const RayFrame<scalar_t>& f,
                                            const GridCell<scalar_t>& cell) {
  scalar_t exit = static_cast<scalar_t>(INFINITY);
  for (int k = 0; k < 3; ++k) {
    if (f.d[k] == scalar_t(0)) continue;
    const scalar_t face = static_cast<scalar_t>(cell.index[k] + (f.d[k] > scalar_t(0) ? 1 : 0));
    // c + ((face * (1 / (res * 0.5)) - 1) 2^l) h: the face in world coordinates.
    const scalar_t x = add_rn(
        mul_rn(mul_rn(sub_rn(mul_rn(face, f.inv_half_res[k]), scalar_t(1)), cell.scale),
               f.half[k]),
        f.centre[k]);
    const scalar_t t = mul_rn(sub_rn(x, f.o[k]), f.inv_d[k]);
    exit = t < exit ? t : exit;
  }
  return exit;
}

// dt(t) = clamp(t cone_angle, step, max_step) (instant-ngp's cone-angle step growth).
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE scalar_t cone_step(const MarchInputs<scalar_t>& in, scalar_t t) {
  const scalar_t dt = mul_rn(t, in.cone_angle);
  return dt < in.step ? in.step : (dt > in.max_step ? in.max_step : dt);
}

// floor(v) as a step index clamped into [0, max_steps]; NaN maps to 0.
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE int64_t step_index(scalar_t v, int64_t max_steps) {
  if (!(v >= scalar_t(0))) return 0;
  if (v >= static_cast<scalar_t>(max_steps)) return max_steps;
  return static_cast<int64_t>(v);
}

// Walks ray `ray` front to back and calls emit(t_start, t_end) for each sample (see the top of
// this file); emit returns false to stop the walk.
template <typename scalar_t, typename Emit>
FF_HOST_DEVICE FF_INLINE void march_ray(const MarchInputs<scalar_t>& in, int64_t ray, Emit& emit) {
  const MarchGrid<scalar_t>& grid = in.grid;
  RayFrame<scalar_t> f;
  scalar_t outer = 1;  // 2^(levels - 1)
  for (int64_t level = 1; level < grid.levels; ++level) outer = outer * scalar_t(2);
  scalar_t lo[3], hi[3];
  for (int k = 0; k < 3; ++k) {
    f.o[k] = in.origins[3 * ray + k];
    f.d[k] = in.directions[3 * ray + k];
    f.centre[k] = mul_rn(add_rn(grid.aabb[k], grid.aabb[k + 3]), scalar_t(0.5));
    f.half[k] = mul_rn(sub_rn(grid.aabb[k + 3], grid.aabb[k]), scalar_t(0.5));
    f.half_res[k] = static_cast<scalar_t>(grid.res[k]) * scalar_t(0.5);
    f.inv_d[k] = div_rn(scalar_t(1), f.d[k]);
    f.inv_half[k] = div_rn(scalar_t(1), f.half[k]);
    f.inv_half_res[k] = div_rn(scalar_t(1), f.half_res[k]);
    lo[k] = sub_rn(f.centre[k], mul_rn(f.half[k], outer));
    hi[k] = add_rn(f.centre[k], mul_rn(f.half[k], outer));
  }
  f.inv_step = div_rn(scalar_t(1), in.step);
  const SlabInterval<scalar_t> box = slab_interval(f.o, f.d, lo, hi);
  const scalar_t near = in.near[ray], far = in.far[ray];
  const scalar_t t_enter = max_of(box.near, near), t_exit = min_of(box.far, far);
  using std::isfinite;
  if (!box.hit || near != near || far != far || !(t_enter < t_exit) ||
      !isfinite(sub_rn(t_exit, t_enter))) {
    return;
  }

  const bool cone = in.cone_angle > scalar_t(0);
  const scalar_t t_0 =
      in.u == nullptr
          ? t_enter
          : add_rn(t_enter, mul_rn(in.u[ray], cone ? cone_step(in, t_enter) : in.step));
  int64_t k = 0;
  scalar_t t = t_0;
  while (k < in.max_steps && t < t_exit) {
    const scalar_t t_next = cone ? add_rn(t, cone_step(in, t))
                                 : add_rn(t_0, mul_rn(static_cast<scalar_t>(k + 1), in.step));
    const scalar_t t_end = t_next < t_exit ? t_next : t_exit;
    const scalar_t mid = mul_rn(add_rn(t, t_end), scalar_t(0.5));
    scalar_t x[3];
    for (int a = 0; a < 3; ++a) x[a] = add_rn(f.o[a], mul_rn(mid, f.d[a]));
    const GridCell<scalar_t> cell = grid_cell(f, grid, x);
    if (cell.occupied) {
      if (!emit(t, t_end)) return;
      ++k;
      t = t_next;
      continue;
    }
    const scalar_t t_b = cell_exit(f, cell);
    if (cone) {
      ++k;
      t = t_next;
      while (k < in.max_steps && t < t_exit) {  // on to the step that contains t_b
        const scalar_t after = add_rn(t, cone_step(in, t));
        if (!(after <= t_b)) break;
        t = after;
        ++k;
      }
    } else {
      const int64_t target = step_index(mul_rn(sub_rn(t_b, t_0), f.inv_step), in.max_steps);
      k = target > k + 1 ? target : k + 1;
      t = add_rn(t_0, mul_rn(static_cast<scalar_t>(k), in.step));
    }
  }
}

// Sample slots of a fill: ray r owns [ray_offsets[r], ray_offsets[r + 1]) of the outputs.
template <typename scalar_t>
struct MarchOutputs {
  const int64_t* ray_offsets;  // [n_rays + 1]
  int64_t capacity;            // length of the outputs
  scalar_t* t_starts;          // [capacity]
  scalar_t* t_ends;            // [capacity]
  int64_t* ray_indices;        // [capacity]
};

// The number of samples of ray `ray`.
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE int64_t count_one_ray(const MarchInputs<scalar_t>& in, int64_t ray) {
  int64_t n = 0;
  auto emit = [&n](scalar_t, scalar_t) {
    ++n;
    return true;
  };
  march_ray(in, ray, emit);
  return n;
}

// Writes the samples of ray `ray` into its slots when they all fit there; slots it leaves free,
// or all of them when its samples do not fit, become padding: t_start = t_end = 0 (zero length,
// so they composite to nothing), ray index `ray`. A ray is written completely or not at all.
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void fill_one_ray(const MarchInputs<scalar_t>& in,
                                           const MarchOutputs<scalar_t>& out, int64_t ray) {
  const SampleRange slots = ray_samples(out.ray_offsets, 0, out.capacity, ray);
  int64_t next = slots.begin;
  bool overflow = false;
  auto emit = [&](scalar_t t_start, scalar_t t_end) {
    if (next >= slots.end) {
      overflow = true;
      return false;
    }
    out.t_starts[next] = t_start;
    out.t_ends[next] = t_end;
    out.ray_indices[next] = ray;
    ++next;
    return true;
  };
  march_ray(in, ray, emit);
  for (int64_t i = overflow ? slots.begin : next; i < slots.end; ++i) {
    out.t_starts[i] = scalar_t(0);
    out.t_ends[i] = scalar_t(0);
    out.ray_indices[i] = ray;
  }
}

}  // namespace fastfield
