// CUDA driver of the ray ops: one thread per ray runs the shared per-ray functions of
// camera_rays.h and bounds.h.
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "../common/cuda_launch.h"
#include "rays_host.h"

namespace fastfield {
namespace {

template <typename scalar_t>
__global__ void generate_rays_kernel(const CameraRayInputs<scalar_t> in,
                                     const RayOutputs<scalar_t> out) {
  const int64_t ray = cuda::thread_index();
  if (ray >= in.n_rays) return;
  generate_one_ray(in, out, ray);
}

template <typename scalar_t>
__global__ void ndc_rays_kernel(const NdcInputs<scalar_t> in, const RayOutputs<scalar_t> out) {
  const int64_t ray = cuda::thread_index();
  if (ray >= in.n_rays) return;
  ndc_one_ray(in, out, ray);
}

template <typename scalar_t>
__global__ void near_far_sphere_kernel(const BoundsInputs<scalar_t> in, const scalar_t radius,
                                       const SphereBounds mode, const BoundsOutputs<scalar_t> out) {
  const int64_t ray = cuda::thread_index();
  if (ray >= in.n_rays) return;
  near_far_sphere_one_ray(in, radius, mode, out, ray);
}

template <typename scalar_t>
__global__ void near_far_aabb_kernel(const BoundsInputs<scalar_t> in,
                                     const scalar_t* __restrict__ aabb,  // [6]
                                     const BoundsOutputs<scalar_t> out) {
  const int64_t ray = cuda::thread_index();
  if (ray >= in.n_rays) return;
  near_far_aabb_one_ray(in, aabb, out, ray);
}

std::tuple<at::Tensor, at::Tensor> generate_rays_cuda(const at::Tensor& c2w,
                                                      const at::Tensor& intrinsics,
                                                      const at::Tensor& pixels, int64_t convention,
                                                      double pixel_offset, bool normalize) {
  const CameraRayCall call =
      prepare_camera_rays(c2w, intrinsics, pixels, convention, pixel_offset, normalize);
  auto [origins, directions] = allocate_rays(call.c2w, call.n_rays);
  AT_DISPATCH_FLOATING_TYPES(c2w.scalar_type(), "generate_rays_cuda", [&] {
    cuda::launch_per_item(c2w, call.n_rays, generate_rays_kernel<scalar_t>,
                          camera_ray_inputs<scalar_t>(call),
                          ray_outputs<scalar_t>(origins, directions));
  });
  return {origins, directions};
}

std::tuple<at::Tensor, at::Tensor> ndc_rays_cuda(const at::Tensor& origins,
                                                 const at::Tensor& directions, double height,
                                                 double width, double focal, double near) {
  const RayBatch rays = prepare_ray_batch("ndc_rays", origins, directions);
  auto [ndc_origins, ndc_directions] = allocate_rays(rays.origins, rays.n_rays);
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "ndc_rays_cuda", [&] {
    cuda::launch_per_item(origins, rays.n_rays, ndc_rays_kernel<scalar_t>,
                          ndc_inputs<scalar_t>(rays, height, width, focal, near),
                          ray_outputs<scalar_t>(ndc_origins, ndc_directions));
  });
  return {ndc_origins, ndc_directions};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> near_far_sphere_cuda(const at::Tensor& origins,
                                                                    const at::Tensor& directions,
                                                                    double radius, int64_t mode) {
  const RayBatch rays = prepare_ray_batch("near_far_sphere", origins, directions);
  const SphereBounds bounds_mode = sphere_bounds_mode(mode);
  auto [near, far, hit] = allocate_bounds(rays.origins, rays.n_rays);
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "near_far_sphere_cuda", [&] {
    cuda::launch_per_item(origins, rays.n_rays, near_far_sphere_kernel<scalar_t>,
                          bounds_inputs<scalar_t>(rays), static_cast<scalar_t>(radius),
                          bounds_mode, bounds_outputs<scalar_t>(near, far, hit));
  });
  return {near, far, hit};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> near_far_aabb_cuda(const at::Tensor& origins,
                                                                  const at::Tensor& directions,
                                                                  const at::Tensor& aabb) {
  const char* op = "near_far_aabb";
  const RayBatch rays = prepare_ray_batch(op, origins, directions);
  const at::Tensor box = prepare_aabb(op, aabb, rays.origins);
  auto [near, far, hit] = allocate_bounds(rays.origins, rays.n_rays);
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "near_far_aabb_cuda", [&] {
    cuda::launch_per_item(origins, rays.n_rays, near_far_aabb_kernel<scalar_t>,
                          bounds_inputs<scalar_t>(rays),
                          static_cast<const scalar_t*>(box.data_ptr<scalar_t>()),
                          bounds_outputs<scalar_t>(near, far, hit));
  });
  return {near, far, hit};
}

}  // namespace
}  // namespace fastfield

TORCH_LIBRARY_IMPL(fastfield, CUDA, m) {
  m.impl("generate_rays", &fastfield::generate_rays_cuda);
  m.impl("ndc_rays", &fastfield::ndc_rays_cuda);
  m.impl("near_far_sphere", &fastfield::near_far_sphere_cuda);
  m.impl("near_far_aabb", &fastfield::near_far_aabb_cuda);
}
