#include "hash_encode_host.h"

#include <c10/util/Exception.h>

#include <cmath>

#include "../common/checks.h"

namespace fastfield {
namespace {

// Largest scale: corner coordinates (below scale + 1.5) and the dense row arithmetic then stay
// far inside uint32.
constexpr double kMaxScale = 1073741824.0;  // 2^30
constexpr int64_t kMaxTableSize = int64_t(1) << 31;

}  // namespace

HashEncodeCall prepare_hash_encode(const char* op, const at::Tensor& x, const at::Tensor& params,
                                   double base_resolution, double per_level_scale) {
  check_float(op, x, "x");
  check_like(op, params, "params", x, "x");
  check_sizes(op, x, "x", {-1, 3}, "[n, 3]");
  check_sizes(op, params, "params", {-1, -1, -1}, "[n_levels, table_size, n_features]");
  HashEncodeCall call;
  call.n_points = x.size(0);
  call.n_levels = params.size(0);
  call.table_size = params.size(1);
  call.n_features = params.size(2);
  TORCH_CHECK_VALUE(call.n_levels >= 1 && call.n_levels <= kMaxHashLevels, op,
                    ": params must have 1 to ", kMaxHashLevels, " levels (dim 0), got ",
                    call.n_levels);
  const int64_t t = call.table_size;
  TORCH_CHECK_VALUE(t >= 1 && t <= kMaxTableSize && (t & (t - 1)) == 0, op,
                    ": params.shape[1] (the table size) must be a power of two up to 2^31, got ",
                    t);
  TORCH_CHECK_VALUE(call.n_features >= 1, op, ": params must have at least one feature (dim 2), "
                    "got ", call.n_features);
  TORCH_CHECK_VALUE(std::isfinite(base_resolution) && base_resolution >= 1.0, op,
                    ": base_resolution must be >= 1, got ", base_resolution);
  TORCH_CHECK_VALUE(std::isfinite(per_level_scale) && per_level_scale >= 1.0, op,
                    ": per_level_scale must be >= 1, got ", per_level_scale);
  for (int64_t l = 0; l < call.n_levels; ++l) {
    // The same expression, in float64, as the twin's (fastfield/core/hash_grid.py).
    const double scale = base_resolution * std::pow(per_level_scale, static_cast<double>(l)) - 1.0;
    TORCH_CHECK_VALUE(scale < kMaxScale, op, ": level ", l, " has scale ", scale,
                      " (base_resolution * per_level_scale^level - 1); at most 2^30 is supported");
    const int64_t resolution = static_cast<int64_t>(std::ceil(scale)) + 1;
    call.scale[l] = scale;
    call.resolution[l] = resolution;
    // resolution^3 <= 2^31 needs resolution <= 1290: test that first, so the cube cannot overflow.
    call.dense[l] = resolution <= 1290 && resolution * resolution * resolution <= t;
  }
  call.x = x.contiguous();
  call.params = params.contiguous();
  return call;
}

at::Tensor checked_gradient(const char* op, const std::optional<at::Tensor>& t, const char* name,
                            const HashEncodeCall& call, at::IntArrayRef sizes,
                            const char* pattern) {
  if (!t.has_value() || !t->defined()) return at::Tensor();
  check_like(op, *t, name, call.x, "x");
  TORCH_CHECK_VALUE(t->sizes() == sizes, op, ": ", name, " must be ", pattern, " = ", sizes,
                    ", got ", t->sizes());
  return t->contiguous();
}

}  // namespace fastfield
