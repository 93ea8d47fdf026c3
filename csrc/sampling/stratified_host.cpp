#include "stratified_host.h"

#include <c10/util/Exception.h>

#include <cstdint>
#include <limits>

#include "../common/checks.h"

namespace fastfield {

StratifiedCall prepare_stratified(const at::Tensor& near, const at::Tensor& far,
                                  const std::optional<at::Tensor>& u, int64_t n_samples,
                                  bool lindisp, int64_t jitter) {
  const char* op = "stratified_samples";
  check_float(op, near, "near");
  check_like(op, far, "far", near, "near");
  check_sizes(op, near, "near", {-1}, "[n_rays]");
  StratifiedCall call;
  call.n_rays = near.size(0);
  check_sizes(op, far, "far", {call.n_rays}, "[n_rays]");
  TORCH_CHECK_VALUE(n_samples >= 1 && n_samples <= std::numeric_limits<int32_t>::max(), op,
                    ": n_samples must be in [1, 2^31), got ", n_samples);
  call.n_samples = n_samples;
  call.lindisp = lindisp;
  call.jitter = checked_enum<Jitter>(op, "jitter", jitter);
  const bool has_u = u.has_value() && u->defined();
  if (call.jitter == Jitter::kNone) {
    TORCH_CHECK_VALUE(!has_u, op, ": u must be None when jitter is 'none'");
  } else {
    TORCH_CHECK_VALUE(has_u, op, ": u is required when jitter is 'per_sample' or 'per_ray'");
    check_like(op, *u, "u", near, "near");
    if (call.jitter == Jitter::kPerSample) {
      check_sizes(op, *u, "u", {call.n_rays, n_samples}, "[n_rays, n_samples] (per_sample)");
    } else {
      check_sizes(op, *u, "u", {call.n_rays}, "[n_rays] (per_ray)");
    }
    call.u = u->contiguous();
  }
  call.near = near.contiguous();
  call.far = far.contiguous();
  return call;
}

at::Tensor allocate_stratified(const StratifiedCall& call) {
  return call.near.new_empty({call.n_rays, call.n_samples});
}

}  // namespace fastfield
