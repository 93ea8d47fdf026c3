#include "marching_host.h"

#include <c10/util/Exception.h>

#include <cmath>

#include "../common/checks.h"

namespace fastfield {
namespace {

// Grid sizes the walk's integer and float arithmetic covers exactly: cell indices below 2^16 per
// axis, scales up to 2^15, step indices that float32 represents exactly.
constexpr int64_t kMaxResolution = 1 << 16;
constexpr int64_t kMaxLevels = 16;
constexpr int64_t kMaxSteps = 1 << 24;

void check_grid_shape(const char* op, at::IntArrayRef resolution, int64_t levels) {
  TORCH_CHECK_VALUE(resolution.size() == 3, op, ": resolution must be 3 ints (rx, ry, rz), got ",
                    resolution.size(), " values");
  TORCH_CHECK_VALUE(levels >= 1 && levels <= kMaxLevels, op, ": levels must be in [1, ",
                    kMaxLevels, "], got ", levels);
  for (size_t k = 0; k < 3; ++k) {
    TORCH_CHECK_VALUE(resolution[k] >= 1 && resolution[k] <= kMaxResolution, op,
                      ": resolution must be in [1, ", kMaxResolution, "] on every axis, got ",
                      resolution);
    TORCH_CHECK_VALUE(levels == 1 || resolution[k] % 4 == 0, op,
                      ": with levels > 1 the resolution must be a multiple of 4 on every axis ",
                      "(so that each level's box falls on cell faces of the next), got ",
                      resolution);
  }
}

at::Tensor checked_bitfield(const char* op, const at::Tensor& bitfield,
                            at::IntArrayRef resolution, int64_t levels, const at::Tensor& like) {
  TORCH_CHECK_TYPE(bitfield.scalar_type() == at::kByte, op,
                   ": bitfield must be uint8 (8 cells per byte), got ", bitfield.scalar_type());
  TORCH_CHECK_VALUE(bitfield.device() == like.device(), op, ": bitfield is on ",
                    bitfield.device(), " but origins is on ", like.device(),
                    "; move them to the same device");
  const int64_t cells = levels * resolution[0] * resolution[1] * resolution[2];
  check_sizes(op, bitfield, "bitfield", {(cells + 7) / 8},
              "[ceil(levels * rx * ry * rz / 8)]");
  return bitfield.contiguous();
}

}  // namespace

MarchCall prepare_march(const char* op, const at::Tensor& origins, const at::Tensor& directions,
                        const at::Tensor& near, const at::Tensor& far,
                        const std::optional<at::Tensor>& u, const at::Tensor& bitfield,
                        const at::Tensor& aabb, at::IntArrayRef resolution, int64_t levels,
                        double step_size, double cone_angle, double max_step, int64_t max_steps) {
  MarchCall call;
  call.rays = prepare_ray_batch(op, origins, directions);
  const int64_t n_rays = call.rays.n_rays;
  check_like(op, near, "near", origins, "origins");
  check_like(op, far, "far", origins, "origins");
  check_sizes(op, near, "near", {n_rays}, "[n_rays]");
  check_sizes(op, far, "far", {n_rays}, "[n_rays]");
  call.near = near.contiguous();
  call.far = far.contiguous();
  call.u = checked_optional(op, u, "u", origins, "origins", {n_rays}, "[n_rays]");
  check_grid_shape(op, resolution, levels);
  call.bitfield = checked_bitfield(op, bitfield, resolution, levels, origins);
  call.aabb = prepare_aabb(op, aabb, origins, /*strict=*/true);
  TORCH_CHECK_VALUE(std::isfinite(step_size) && step_size > 0, op,
                    ": step_size must be a positive finite number, got ", step_size);
  TORCH_CHECK_VALUE(std::isfinite(cone_angle) && cone_angle >= 0, op,
                    ": cone_angle must be a finite number >= 0, got ", cone_angle);
  TORCH_CHECK_VALUE(max_step >= step_size, op, ": max_step must be >= step_size (", step_size,
                    "), got ", max_step);
  TORCH_CHECK_VALUE(max_steps >= 1 && max_steps <= kMaxSteps, op, ": max_steps must be in [1, ",
                    kMaxSteps, "], got ", max_steps);
  for (int k = 0; k < 3; ++k) call.res[k] = resolution[k];
  call.levels = levels;
  call.step_size = step_size;
  call.cone_angle = cone_angle;
  call.max_step = max_step;
  call.max_steps = max_steps;
  return call;
}

at::Tensor prepare_fill_offsets(const char* op, const MarchCall& call,
                                const at::Tensor& ray_offsets, int64_t capacity) {
  TORCH_CHECK_VALUE(capacity >= 0, op, ": capacity must be >= 0, got ", capacity);
  check_ray_offsets(op, ray_offsets, capacity, call.rays.origins);
  check_sizes(op, ray_offsets, "ray_offsets", {call.rays.n_rays + 1}, "[n_rays + 1]");
  return ray_offsets.contiguous();
}

}  // namespace fastfield
