// CPU driver of the ray ops: at::parallel_for over rays calling the shared per-ray functions
// of camera_rays.h and bounds.h.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "rays_host.h"

namespace fastfield {
namespace {

// A few dozen flops per ray: smaller batches are not worth waking a second thread for.
constexpr int64_t kRaysPerTask = 4096;

template <typename Fn>
void for_each_ray(int64_t n_rays, const Fn& fn) {
  at::parallel_for(0, n_rays, kRaysPerTask, [&](int64_t begin, int64_t end) {
    for (int64_t ray = begin; ray < end; ++ray) fn(ray);
  });
}

std::tuple<at::Tensor, at::Tensor> generate_rays_cpu(const at::Tensor& c2w,
                                                     const at::Tensor& intrinsics,
                                                     const at::Tensor& pixels, int64_t convention,
                                                     double pixel_offset, bool normalize) {
  const CameraRayCall call =
      prepare_camera_rays(c2w, intrinsics, pixels, convention, pixel_offset, normalize);
  auto [origins, directions] = allocate_rays(call.c2w, call.n_rays);
  AT_DISPATCH_FLOATING_TYPES(c2w.scalar_type(), "generate_rays_cpu", [&] {
    const auto in = camera_ray_inputs<scalar_t>(call);
    const auto out = ray_outputs<scalar_t>(origins, directions);
    for_each_ray(call.n_rays, [&](int64_t ray) { generate_one_ray(in, out, ray); });
  });
  return {origins, directions};
}

std::tuple<at::Tensor, at::Tensor> ndc_rays_cpu(const at::Tensor& origins,
                                                const at::Tensor& directions, double height,
                                                double width, double focal, double near) {
  const RayBatch rays = prepare_ray_batch("ndc_rays", origins, directions);
  auto [ndc_origins, ndc_directions] = allocate_rays(rays.origins, rays.n_rays);
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "ndc_rays_cpu", [&] {
    const auto in = ndc_inputs<scalar_t>(rays, height, width, focal, near);
    const auto out = ray_outputs<scalar_t>(ndc_origins, ndc_directions);
    for_each_ray(rays.n_rays, [&](int64_t ray) { ndc_one_ray(in, out, ray); });
  });
  return {ndc_origins, ndc_directions};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> near_far_sphere_cpu(const at::Tensor& origins,
                                                                   const at::Tensor& directions,
                                                                   double radius, int64_t mode) {
  const RayBatch rays = prepare_ray_batch("near_far_sphere", origins, directions);
  const SphereBounds bounds_mode = sphere_bounds_mode(mode);
  auto [near, far, hit] = allocate_bounds(rays.origins, rays.n_rays);
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "near_far_sphere_cpu", [&] {
    const auto in = bounds_inputs<scalar_t>(rays);
    const auto out = bounds_outputs<scalar_t>(near, far, hit);
    const auto r = static_cast<scalar_t>(radius);
    for_each_ray(rays.n_rays,
                 [&](int64_t ray) { near_far_sphere_one_ray(in, r, bounds_mode, out, ray); });
  });
  return {near, far, hit};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> near_far_aabb_cpu(const at::Tensor& origins,
                                                                 const at::Tensor& directions,
                                                                 const at::Tensor& aabb) {
  const char* op = "near_far_aabb";
  const RayBatch rays = prepare_ray_batch(op, origins, directions);
  const at::Tensor box = prepare_aabb(op, aabb, rays.origins);
  auto [near, far, hit] = allocate_bounds(rays.origins, rays.n_rays);
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "near_far_aabb_cpu", [&] {
    const auto in = bounds_inputs<scalar_t>(rays);
    const auto out = bounds_outputs<scalar_t>(near, far, hit);
    const scalar_t* box_data = box.data_ptr<scalar_t>();
    for_each_ray(rays.n_rays, [&](int64_t ray) { near_far_aabb_one_ray(in, box_data, out, ray); });
  });
  return {near, far, hit};
}

}  // namespace
}  // namespace fastfield

TORCH_LIBRARY_IMPL(fastfield, CPU, m) {
  m.impl("generate_rays", &fastfield::generate_rays_cpu);
  m.impl("ndc_rays", &fastfield::ndc_rays_cpu);
  m.impl("near_far_sphere", &fastfield::near_far_sphere_cpu);
  m.impl("near_far_aabb", &fastfield::near_far_aabb_cpu);
}
