#include "rays_host.h"

#include <c10/util/Exception.h>

#include "../common/checks.h"

namespace fastfield {

CameraRayCall prepare_camera_rays(const at::Tensor& c2w, const at::Tensor& intrinsics,
                                  const at::Tensor& pixels, int64_t convention,
                                  double pixel_offset, bool normalize) {
  const char* op = "generate_rays";
  check_float(op, c2w, "c2w");
  check_like(op, intrinsics, "intrinsics", c2w, "c2w");
  TORCH_CHECK_TYPE(pixels.scalar_type() == at::kLong, op,
                   ": pixels must be int64 (camera, row, col), got ", pixels.scalar_type());
  TORCH_CHECK_VALUE(pixels.device() == c2w.device(), op, ": pixels is on ", pixels.device(),
                    " but c2w is on ", c2w.device(), "; move them to the same device");
  check_sizes(op, c2w, "c2w", {-1, 3, 4}, "[n_cameras, 3, 4]");
  CameraRayCall call;
  call.n_cameras = c2w.size(0);
  check_sizes(op, intrinsics, "intrinsics", {call.n_cameras, 4},
              "[n_cameras, 4] = (fx, fy, cx, cy)");
  check_sizes(op, pixels, "pixels", {-1, 3}, "[n_rays, 3] = (camera, row, col)");
  call.convention = checked_enum<CameraConvention>(op, "convention", convention);
  check_index_range(op, pixels.select(1, 0), "pixels[:, 0] (camera ids)", call.n_cameras);
  call.c2w = c2w.contiguous();
  call.intrinsics = intrinsics.contiguous();
  call.pixels = pixels.contiguous();
  call.n_rays = pixels.size(0);
  call.pixel_offset = pixel_offset;
  call.normalize = normalize;
  return call;
}

RayBatch prepare_ray_batch(const char* op, const at::Tensor& origins,
                           const at::Tensor& directions) {
  check_float(op, origins, "origins");
  check_like(op, directions, "directions", origins, "origins");
  check_sizes(op, origins, "origins", {-1, 3}, "[n_rays, 3]");
  RayBatch rays;
  rays.n_rays = origins.size(0);
  check_sizes(op, directions, "directions", {rays.n_rays, 3}, "[n_rays, 3]");
  rays.origins = origins.contiguous();
  rays.directions = directions.contiguous();
  return rays;
}

at::Tensor prepare_aabb(const char* op, const at::Tensor& aabb, const at::Tensor& like,
                        bool strict) {
  check_like(op, aabb, "aabb", like, "origins");
  check_sizes(op, aabb, "aabb", {6}, "[6] = (xmin, ymin, zmin, xmax, ymax, zmax)");
  at::Tensor box = aabb.contiguous();
  if (value_checks_enabled(box)) {
    const at::Tensor host = box.is_cpu() ? box.to(at::kDouble) : box.cpu().to(at::kDouble);
    const double* b = host.data_ptr<double>();
    for (int k = 0; k < 3; ++k) {
      TORCH_CHECK_VALUE(strict ? b[k] < b[k + 3] : b[k] <= b[k + 3], op, ": aabb must have min ",
                        strict ? "<" : "<=", " max on every axis, got aabb[", k, "] = ", b[k],
                        " and aabb[", k + 3, "] = ", b[k + 3]);
    }
  }
  return box;
}

SphereBounds sphere_bounds_mode(int64_t mode) {
  return checked_enum<SphereBounds>("near_far_sphere", "mode", mode);
}

std::tuple<at::Tensor, at::Tensor> allocate_rays(const at::Tensor& like, int64_t n_rays) {
  return {like.new_empty({n_rays, 3}), like.new_empty({n_rays, 3})};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> allocate_bounds(const at::Tensor& like,
                                                              int64_t n_rays) {
  return {like.new_empty({n_rays}), like.new_empty({n_rays}),
          like.new_empty({n_rays}, like.options().dtype(at::kBool))};
}

}  // namespace fastfield
