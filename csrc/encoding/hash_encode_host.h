// The drivers of hash_encode, written once over a launcher (../common/launch.h) and
// instantiated by hash_encode_cpu.cpp and hash_encode_cuda.cu: argument checks, the level
// geometry, output allocation, and the runs of hash_encode.h's per-item functions.
//
// The forward and the per-point passes (dL/dx, the double backward's dL/dG and dL/dx) are the
// same on both launchers. The passes that scatter into the table (dL/dparams) are
// HashTableScatter<Launcher>: on CUDA one thread per (point, level) with atomicAdd; on the CPU
// one task per level (levels own disjoint slices of the table) adding its points in order, so
// that the sums are bitwise the same for any thread count, with no float atomics and no
// per-thread copies of the table.
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

// Items of the (point, level) passes per CPU task: a few groups of kHashGroupPoints points.
inline int64_t hash_item_grain(int64_t n_levels) { return 4 * kHashGroupPoints * n_levels; }
constexpr int64_t kHashPointGrain = 256;

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
    Launcher::for_each(call.x, call.n_points * call.n_levels, hash_item_grain(call.n_levels),
                       [=] FF_HOST_DEVICE(int64_t item) {
                         const PointLevel at = point_level_of(item, a.grid.n_points,
                                                              a.grid.n_levels);
                         hash_forward_item(a, at.point, at.level);
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
      Launcher::for_each(call.x, call.n_points, kHashPointGrain,
                         [=] FF_HOST_DEVICE(int64_t point) { hash_input_grad_point(a, point); });
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
  at::Tensor grad_out_grad_out = grad_out_grad ? grad.new_empty(grad.sizes()) : call.x.new_empty({0});
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
      Launcher::for_each(call.x, call.n_points, kHashPointGrain,
                         [=] FF_HOST_DEVICE(int64_t point) { hash_second_order_point(a, point); });
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
