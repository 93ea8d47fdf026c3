// Argument checks shared by every host driver (CPU and CUDA). Shape and value errors raise
// ValueError, dtype errors TypeError, each naming the op, the argument and what was expected.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <initializer_list>
#include <optional>

#include "enums.h"

namespace fastfield {

// An int64 enumeration argument (enums.def) as its enum class; ValueError listing the values.
template <typename Enum>
Enum checked_enum(const char* op, const char* name, int64_t value) {
  TORCH_CHECK_VALUE(is_enum_value(Enum{}, value), op, ": ", name, " must be one of",
                    enum_choices(Enum{}), ", got ", value);
  return static_cast<Enum>(value);
}

// Checks that read tensor data (ray offsets, camera ids, sortedness) are on for CPU tensors and
// off for CUDA ones, where each would cost a device synchronisation.
//   mode 0: CPU only (default)   mode 1: every device (FASTFIELD_DEBUG=1)
//   mode -1: never -- test-only, so the in-kernel index guards meet invalid input on CPU too.
// Returns the previous mode.
int64_t set_value_check_mode(int64_t mode);
bool value_checks_enabled(const at::Tensor& t);

// float32 or float64, else TypeError.
void check_float(const char* op, const at::Tensor& t, const char* name);
// Same dtype and device as `like` (TypeError / ValueError).
void check_like(const char* op, const at::Tensor& t, const char* name, const at::Tensor& like,
                const char* like_name);
// Sizes equal to `expected` where an entry is >= 0 (-1 matches anything); `pattern` is the
// symbolic shape shown in the error, e.g. "[n_rays, n_samples]".
void check_sizes(const char* op, const at::Tensor& t, const char* name,
                 std::initializer_list<int64_t> expected, const char* pattern);
// An optional tensor argument: undefined when absent (std::nullopt or an undefined tensor), else
// checked with check_like against `like` and with check_sizes against `expected`, and made
// contiguous.
at::Tensor checked_optional(const char* op, const std::optional<at::Tensor>& t, const char* name,
                            const at::Tensor& like, const char* like_name,
                            std::initializer_list<int64_t> expected, const char* pattern);
// CSR ray offsets: int64, 1-D with n_rays + 1 >= 1 entries, on the device of `like`; when value
// checks are enabled also offsets[0] == 0, non-decreasing, offsets[n_rays] == n_samples.
void check_ray_offsets(const char* op, const at::Tensor& offsets, int64_t n_samples,
                       const at::Tensor& like);
// Every entry of the int64 tensor `ids` lies in [0, bound) (runs when value checks are enabled).
void check_index_range(const char* op, const at::Tensor& ids, const char* name, int64_t bound);

// Every row of the float tensor t (along its last dimension) is ascending in torch.sort's order,
// NaN last (runs when value checks are enabled).
void check_rows_ascending(const char* op, const at::Tensor& t, const char* name);

}  // namespace fastfield
