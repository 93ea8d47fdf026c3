#include "checks.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <sstream>
#include <string>

#include "fast_exp_cpu.h"  // FF_CPU_MULTIVERSION
#include "math.h"

namespace fastfield {
namespace {

// Whether any of rows [begin, end) of a [rows, n] array descends (NaN last, as torch.sort).
// Branch-free and compiled for the wide vector ISAs: it runs on every checked call.
template <typename scalar_t>
FF_CPU_MULTIVERSION bool any_row_descends(const scalar_t* __restrict__ data, int64_t n,
                                          int64_t begin, int64_t end) {
  int descends = 0;
  for (int64_t r = begin; r < end; ++r) {
    const scalar_t* row = data + r * n;
    for (int64_t k = 1; k < n; ++k) descends |= sorts_before(row[k], row[k - 1]);
  }
  return descends != 0;
}

int64_t initial_mode() {
  const char* debug = std::getenv("FASTFIELD_DEBUG");
  return (debug != nullptr && std::string(debug) == "1") ? 1 : 0;
}

std::atomic<int64_t>& mode_flag() {
  static std::atomic<int64_t> mode{initial_mode()};
  return mode;
}

std::string sizes_text(at::IntArrayRef sizes) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < sizes.size(); ++i) out << (i ? ", " : "") << sizes[i];
  out << "]";
  return out.str();
}

}  // namespace

int64_t set_value_check_mode(int64_t mode) {
  TORCH_CHECK_VALUE(mode >= -1 && mode <= 1, "value check mode must be -1, 0 or 1, got ", mode);
  return mode_flag().exchange(mode);
}

bool value_checks_enabled(const at::Tensor& t) {
  const int64_t mode = mode_flag().load();
  return mode == 1 || (mode == 0 && t.device().is_cpu());
}

void check_float(const char* op, const at::Tensor& t, const char* name) {
  TORCH_CHECK_TYPE(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, op, ": ",
                   name, " must be float32 or float64, got ", t.scalar_type(),
                   " (half and bfloat16 are upcast only under torch.autocast)");
}

void check_like(const char* op, const at::Tensor& t, const char* name, const at::Tensor& like,
                const char* like_name) {
  TORCH_CHECK_TYPE(t.scalar_type() == like.scalar_type(), op, ": ", name, " must have the dtype of ",
                   like_name, " (", like.scalar_type(), "), got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.device() == like.device(), op, ": ", name, " is on ", t.device(), " but ",
                    like_name, " is on ", like.device(), "; move them to the same device");
}

void check_sizes(const char* op, const at::Tensor& t, const char* name,
                 std::initializer_list<int64_t> expected, const char* pattern) {
  bool ok = t.dim() == static_cast<int64_t>(expected.size());
  int64_t d = 0;
  for (int64_t size : expected) {
    if (!ok) break;
    ok = size < 0 || t.size(d) == size;
    ++d;
  }
  if (ok) return;
  std::ostringstream want;
  want << "[";
  d = 0;
  for (int64_t size : expected) {
    want << (d++ ? ", " : "");
    if (size < 0) want << "*"; else want << size;
  }
  want << "]";
  TORCH_CHECK_VALUE(false, op, ": ", name, " must be ", pattern, " = ", want.str(), ", got ",
                    sizes_text(t.sizes()));
}

at::Tensor checked_optional(const char* op, const std::optional<at::Tensor>& t, const char* name,
                            const at::Tensor& like, const char* like_name,
                            std::initializer_list<int64_t> expected, const char* pattern) {
  if (!t.has_value() || !t->defined()) return at::Tensor();
  check_like(op, *t, name, like, like_name);
  check_sizes(op, *t, name, expected, pattern);
  return t->contiguous();
}

void check_ray_offsets(const char* op, const at::Tensor& offsets, int64_t n_samples,
                       const at::Tensor& like) {
  TORCH_CHECK_TYPE(offsets.scalar_type() == at::kLong, op, ": ray_offsets must be int64, got ",
                   offsets.scalar_type());
  TORCH_CHECK_VALUE(offsets.dim() == 1 && offsets.size(0) >= 1, op,
                    ": ray_offsets must be [n_rays + 1] with n_rays + 1 >= 1, got ",
                    sizes_text(offsets.sizes()));
  TORCH_CHECK_VALUE(offsets.device() == like.device(), op, ": ray_offsets is on ",
                    offsets.device(), " but the samples are on ", like.device());
  if (!value_checks_enabled(offsets)) return;
  const at::Tensor host = offsets.is_cpu() ? offsets.contiguous() : offsets.cpu().contiguous();
  const int64_t* data = host.data_ptr<int64_t>();
  const int64_t n = host.size(0);
  TORCH_CHECK_VALUE(data[0] == 0, op, ": ray_offsets[0] must be 0, got ", data[0]);
  for (int64_t i = 1; i < n; ++i) {
    TORCH_CHECK_VALUE(data[i] >= data[i - 1], op, ": ray_offsets must be non-decreasing, but ",
                      "ray_offsets[", i, "] = ", data[i], " < ray_offsets[", i - 1,
                      "] = ", data[i - 1]);
  }
  TORCH_CHECK_VALUE(data[n - 1] == n_samples, op, ": ray_offsets[-1] must equal the number of ",
                    "samples (", n_samples, "), got ", data[n - 1]);
}

void check_index_range(const char* op, const at::Tensor& ids, const char* name, int64_t bound) {
  if (!value_checks_enabled(ids) || ids.numel() == 0) return;
  // A 1-D view (often a column of a larger tensor) is read in place, without a copy.
  const at::Tensor host = ids.is_cpu() ? ids : ids.cpu();
  const at::Tensor flat = host.dim() == 1 ? host : host.contiguous().view({-1});
  const int64_t* data = flat.data_ptr<int64_t>();
  const int64_t stride = flat.stride(0);
  for (int64_t i = 0; i < flat.numel(); ++i) {
    const int64_t id = data[i * stride];
    TORCH_CHECK_VALUE(id >= 0 && id < bound, op, ": ", name, " must lie in [0, ", bound,
                      "), found ", id);
  }
}

void check_rows_ascending(const char* op, const at::Tensor& t, const char* name) {
  if (!value_checks_enabled(t) || t.dim() == 0 || t.numel() == 0) return;
  const at::Tensor host = t.is_cpu() ? t.contiguous() : t.cpu().contiguous();
  const int64_t n = host.size(-1);
  const int64_t rows = host.numel() / n;
  AT_DISPATCH_FLOATING_TYPES(host.scalar_type(), "check_rows_ascending", [&] {
    const scalar_t* data = host.data_ptr<scalar_t>();
    // A fast parallel pass finds whether any row descends; only then look where.
    std::atomic<bool> descends{false};
    at::parallel_for(0, rows, std::max<int64_t>(1, 65536 / std::max<int64_t>(n, 1)),
                     [&](int64_t begin, int64_t end) {
                       if (any_row_descends(data, n, begin, end)) descends = true;
                     });
    if (!descends) return;
    for (int64_t r = 0; r < rows; ++r) {
      const scalar_t* row = data + r * n;
      for (int64_t k = 1; k < n; ++k) {
        if (!sorts_before(row[k], row[k - 1])) continue;
        std::ostringstream where;
        where << name << "[";
        if (host.dim() > 1) where << r << ", ";
        where << k;
        TORCH_CHECK_VALUE(false, op, ": ", name, " must be ascending along its last dimension ",
                          "(NaN last), but ", where.str(), "] = ", row[k], " comes after ",
                          row[k - 1]);
      }
    }
  });
}

}  // namespace fastfield
