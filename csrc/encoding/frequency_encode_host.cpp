#include "frequency_encode_host.h"

#include <c10/util/Exception.h>

#include "../common/checks.h"

namespace fastfield {

FrequencyEncodeCall prepare_frequency_encode(const char* op, const at::Tensor& x,
                                             int64_t n_frequencies) {
  check_float(op, x, "x");
  check_sizes(op, x, "x", {-1, -1}, "[n, d]");
  TORCH_CHECK_VALUE(x.size(1) >= 1, op, ": x must have at least one coordinate (d >= 1), got ",
                    x.sizes());
  TORCH_CHECK_VALUE(n_frequencies >= 0 && n_frequencies <= kMaxFrequencies, op,
                    ": n_frequencies must be in 0..", kMaxFrequencies, ", got ", n_frequencies);
  const int64_t width = x.size(1) * (1 + 2 * n_frequencies);
  TORCH_CHECK_VALUE(width < (int64_t(1) << 31), op, ": the encoding's width d * (1 + 2 * ",
                    "n_frequencies) = ", width, " must stay below 2^31");
  FrequencyEncodeCall call;
  call.x = x.contiguous();
  call.layout = {x.size(0), static_cast<int32_t>(x.size(1)), static_cast<int32_t>(n_frequencies)};
  return call;
}

at::Tensor checked_frequency_gradient(const char* op, const at::Tensor& t, const char* name,
                                      const FrequencyEncodeCall& call, int64_t columns,
                                      const char* pattern) {
  check_like(op, t, name, call.x, "x");
  TORCH_CHECK_VALUE(t.dim() == 2 && t.size(0) == call.layout.n_points && t.size(1) == columns,
                    op, ": ", name, " must be ", pattern, " = [", call.layout.n_points, ", ",
                    columns, "], got ", t.sizes());
  return t.contiguous();
}

}  // namespace fastfield
