// The drivers of hash_encode, written once over a launcher (../common/launch.h) and
// instantiated by hash_encode_cpu.cpp and hash_encode_cuda.cu: argument checks, the level
// geometry, output allocation, and the runs of hash_encode.h's per-item functions.
//
// How the items run is a policy per launcher: HashItems (one (point, level) each: the forward
// and the table scatters), HashPointSums (per-point sums over the levels: dL/dx) and
// HashTableScatter (dL/dparams). On CUDA: one thread per item or per point, atomicAdd into the
// table. On the CPU: groups of points walked level by level with the table rows prefetched a
// few points ahead, and one task per level for the table gradients (levels own disjoint slices
// of the table) adding its points in order, so that the sums are bitwise the same for any
// thread count, with no float atomics and no per-thread copies of the table.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

#include "../common/host_device.h"
#include "../common/launch.h"
#include "../common/tensor_args.h"
#include "hash_encode.h"

namespace fastfield {

// Checked, contiguous inputs of one hash_encode call and its grid in float64.
struct HashEncodeCall {
  at::Tensor x, params;
  int64_t n_points = 0, n_levels = 0, table_size = 0, n_features = 0;
  double scale[kMaxHashLevels] = {};
  int64_t resolution[kMaxHashLevels] = {};
  bool dense[kMaxHashLevels] = {};
};

// x [n, 3] float32/float64, params [L, T, F] like x with 1 <= L <= 64, T a power of two up to
// 2^31, F >= 1; base_resolution >= 1, per_level_scale >= 1, every scale below 2^30.
HashEncodeCall prepare_hash_encode(const char* op, const at::Tensor& x, const at::Tensor& params,
                                   double base_resolution, double per_level_scale);

// A gradient argument shaped like `sizes` (the op's output or input it belongs to), same dtype
// and device as x, contiguous; undefined when absent.
at::Tensor checked_gradient(const char* op, const std::optional<at::Tensor>& t, const char* name,
                            const HashEncodeCall& call, at::IntArrayRef sizes, const char* pattern);

template <typename scalar_t>
HashGrid<scalar_t> hash_grid(const HashEncodeCall& call) {
  HashGrid<scalar_t> g{};
  g.n_points = call.n_points;
  g.n_levels = static_cast<int32_t>(call.n_levels);
  g.n_features = static_cast<int32_t>(call.n_features);
  g.table_size = call.table_size;
  g.row_mask = static_cast<uint32_t>(call.table_size - 1);
  for (int64_t l = 0; l < call.n_levels; ++l) {
    g.levels[l] = {static_cast<scalar_t>(call.scale[l]), static_cast<uint32_t>(call.resolution[l]),
                   call.dense[l] ? 1u : 0u};
  }
  return g;
}

// fn(point, level, cell) for every point and level, with cell = hash_cell(x[point], level):
// the items of hash_encode.h, one CUDA thread each. `table` ([L, T, F]) is the table fn reads
// or writes. hash_encode_cpu.cpp specialises it for CpuLauncher: tasks of whole groups that
// loop over the levels and the group's points in the same order, computing each cell a few
// points ahead and prefetching its rows of `table` (random rows of a 64 MiB table are cache
// misses: the prefetch made the forward 2.3x faster on an Intel Xeon).
template <class Launcher>
struct HashItems {
  template <typename scalar_t, typename Fn>
  static void for_each(const at::Tensor& device_of, const HashGrid<scalar_t>& g,
                       const scalar_t* x, const scalar_t* /*table*/, const Fn& fn) {
    Launcher::for_each(device_of, hash_item_count(g.n_points, g.n_levels), 1,
                       [=] FF_HOST_DEVICE(int64_t item) {
                         const PointLevel at = point_level_of(item, g.n_levels);
                         if (at.point >= g.n_points) return;
                         fn(at.point, at.level,
                            hash_cell(x + 3 * at.point, g.levels[at.level], g.row_mask));
                       });
  }
};

template <>
struct HashItems<CpuLauncher>;  // hash_encode_cpu.cpp

// fn(point, level, cell, sum) for every level of every point, in level order, where sum is the
// point's scalar_t[3] accumulator (starting at 0), stored to x_grad [n, 3] (if not null) after
// the last level. One CUDA thread per point. `table` and `second_table` (may be null) are the tables fn reads, prefetched by the
// CPU specialisation (hash_encode_cpu.cpp), which walks whole groups level by level as
// HashItems does, with the groups' sums in an array.
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void store_point_sum(scalar_t* __restrict__ x_grad, int64_t point,
                                              const scalar_t (&sum)[3]) {
  if (x_grad != nullptr) {
    for (int d = 0; d < 3; ++d) x_grad[3 * point + d] = sum[d];
  }
}

template <class Launcher>
struct HashPointSums {
  template <typename scalar_t, typename Fn>
  static void for_each(const at::Tensor& device_of, const HashGrid<scalar_t>& g,
                       const scalar_t* x, const scalar_t* /*table*/,
                       const scalar_t* /*second_table*/, scalar_t* x_grad, const Fn& fn) {
    Launcher::for_each(device_of, g.n_points, 1,
                       [=] FF_HOST_DEVICE(int64_t point) {
                         scalar_t sum[3] = {0, 0, 0};
                         for (int level = 0; level < g.n_levels; ++level) {
                           fn(point, level, hash_cell(x + 3 * point, g.levels[level], g.row_mask),
                              sum);
                         }
                         store_point_sum(x_grad, point, sum);
                       });
  }
};

template <>
struct HashPointSums<CpuLauncher>;  // hash_encode_cpu.cpp

// dL/dparams passes. scatter(params_grad, args, coefficients): params_grad ([L, T, F],
// uninitialised, also args.params_grad) receives the sum over points of c_k G. Specialised in
// hash_encode_cpu.cpp and hash_encode_cuda.cu.
template <class Launcher>
struct HashTableScatter;

template <class Launcher>
at::Tensor hash_encode_fwd_driver(const at::Tensor& x, const at::Tensor& params,
                                  double base_resolution, double per_level_scale) {
  const HashEncodeCall call =
      prepare_hash_encode("hash_encode_fwd", x, params, base_resolution, per_level_scale);
  at::Tensor out = call.x.new_empty({call.n_points, call.n_levels * call.n_features});
  AT_DISPATCH_FLOATING_TYPES(call.x.scalar_type(), "hash_encode_fwd", [&] {
    const HashForward<scalar_t> a{hash_grid<scalar_t>(call), call.x.data_ptr<scalar_t>(),
                                  call.params.data_ptr<scalar_t>(), out.data_ptr<scalar_t>()};
    HashItems<Launcher>::for_each(call.x, a.grid, a.x, a.params,
                                  [=] FF_HOST_DEVICE(int64_t point, int level,
                                                     const HashCell<scalar_t>& cell) {
                                    hash_forward_item(a, cell, point, level);
                                  });
  });
  return out;
}

// (dL/dx [n, 3] or [0] when !x_grad, dL/dparams [L, T, F] or [0] when !params_grad)
template <class Launcher>
std::tuple<at::Tensor, at::Tensor> hash_encode_bwd_driver(
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& params,
    double base_resolution, double per_level_scale, bool x_grad, bool params_grad) {
  const char* op = "hash_encode_bwd";
  const HashEncodeCall call = prepare_hash_encode(op, x, params, base_resolution, per_level_scale);
  const at::Tensor grad = checked_gradient(op, grad_out, "grad_out", call,
                                           {call.n_points, call.n_levels * call.n_features},
                                           "[n, n_levels * n_features]");
  at::Tensor x_grad_out = x_grad ? call.x.new_empty({call.n_points, 3}) : call.x.new_empty({0});
  at::Tensor params_grad_out = params_grad ? call.params.new_empty(call.params.sizes())
                                           : call.params.new_empty({0});
  AT_DISPATCH_FLOATING_TYPES(call.x.scalar_type(), "hash_encode_bwd", [&] {
    const HashGrid<scalar_t> g = hash_grid<scalar_t>(call);
    if (x_grad) {
      const HashInputGrad<scalar_t> a{g, call.x.data_ptr<scalar_t>(),
                                      call.params.data_ptr<scalar_t>(),
                                      grad.data_ptr<scalar_t>(), x_grad_out.data_ptr<scalar_t>()};
      HashPointSums<Launcher>::for_each(
          call.x, g, a.x, a.params, static_cast<const scalar_t*>(nullptr), a.x_grad,
          [=] FF_HOST_DEVICE(int64_t point, int level, const HashCell<scalar_t>& cell,
                             scalar_t(&sum)[3]) {
            hash_input_grad_item(a, cell, point, level, sum);
          });
    }
    if (params_grad) {
      const HashScatter<scalar_t> a{g, call.x.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>(),
                                    params_grad_out.data_ptr<scalar_t>()};
      HashTableScatter<Launcher>::scatter(params_grad_out, a, CornerWeights{});
    }
  });
  return {x_grad_out, params_grad_out};
}

// The backward's backward: gradients of a loss on (dL/dx, dL/dparams) -- arriving as gg_x
// [n, 3] and gg_params [L, T, F], either absent -- with respect to grad_out, x and params.
// Returns (dL/dgrad_out [n, L * F], dL/dx [n, 3], dL/dparams [L, T, F]), each [0] when not
// requested.
template <class Launcher>
std::tuple<at::Tensor, at::Tensor, at::Tensor> hash_encode_bwd_bwd_driver(
    const std::optional<at::Tensor>& gg_x, const std::optional<at::Tensor>& gg_params,
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& params,
    double base_resolution, double per_level_scale, bool grad_out_grad, bool x_grad,
    bool params_grad) {
  const char* op = "hash_encode_bwd_bwd";
  const HashEncodeCall call = prepare_hash_encode(op, x, params, base_resolution, per_level_scale);
  const at::Tensor grad = checked_gradient(op, grad_out, "grad_out", call,
                                           {call.n_points, call.n_levels * call.n_features},
                                           "[n, n_levels * n_features]");
  const at::Tensor ggx = checked_gradient(op, gg_x, "gg_x", call, {call.n_points, 3}, "[n, 3]");
  const at::Tensor ggp = checked_gradient(op, gg_params, "gg_params", call, call.params.sizes(),
                                          "[n_levels, table_size, n_features]");
  at::Tensor grad_out_grad_out =
      grad_out_grad ? grad.new_empty(grad.sizes()) : call.x.new_empty({0});
  at::Tensor x_grad_out = x_grad ? call.x.new_empty({call.n_points, 3}) : call.x.new_empty({0});
  // dL/dparams comes from gg_x only (dL/dparams of the backward does not depend on params).
  const bool scatter_gg_x = params_grad && ggx.defined();
  at::Tensor params_grad_out = !params_grad ? call.params.new_empty({0})
                               : scatter_gg_x ? call.params.new_empty(call.params.sizes())
                                            : call.params.new_zeros(call.params.sizes());
  AT_DISPATCH_FLOATING_TYPES(call.x.scalar_type(), "hash_encode_bwd_bwd", [&] {
    const HashGrid<scalar_t> g = hash_grid<scalar_t>(call);
    if (grad_out_grad || x_grad) {
      const HashSecondOrder<scalar_t> a{
          g,
          call.x.data_ptr<scalar_t>(),
          call.params.data_ptr<scalar_t>(),
          grad.data_ptr<scalar_t>(),
          ggx.defined() ? ggx.data_ptr<scalar_t>() : nullptr,
          ggp.defined() ? ggp.data_ptr<scalar_t>() : nullptr,
          grad_out_grad ? grad_out_grad_out.data_ptr<scalar_t>() : nullptr,
          x_grad ? x_grad_out.data_ptr<scalar_t>() : nullptr};
      HashPointSums<Launcher>::for_each(
          call.x, g, a.x, a.params, a.gg_params, a.x_grad,
          [=] FF_HOST_DEVICE(int64_t point, int level, const HashCell<scalar_t>& cell,
                             scalar_t(&sum)[3]) {
            hash_second_order_item(a, cell, point, level, sum);
          });
    }
    if (scatter_gg_x) {
      const HashScatter<scalar_t> a{g, call.x.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>(),
                                    params_grad_out.data_ptr<scalar_t>()};
      HashTableScatter<Launcher>::scatter(params_grad_out, a,
                                          CornerWeightsAlong<scalar_t>{ggx.data_ptr<scalar_t>()});
    }
  });
  return {grad_out_grad_out, x_grad_out, params_grad_out};
}

}  // namespace fastfield
