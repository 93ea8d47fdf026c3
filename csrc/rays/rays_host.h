// The drivers of the ray ops, written once over a launcher (../common/launch.h) and
// instantiated by rays_cpu.cpp and rays_cuda.cu: argument checks, contiguous copies, output
// allocation, the raw-pointer views that the per-ray functions of camera_rays.h and bounds.h
// consume, and one launch of that function per ray.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <tuple>

#include "../common/host_device.h"
#include "../common/launch.h"
#include "bounds.h"
#include "camera_rays.h"

namespace fastfield {

// Checked, contiguous inputs of one generate_rays call.
struct CameraRayCall {
  at::Tensor c2w;         // [n_cameras, 3, 4]
  at::Tensor intrinsics;  // [n_cameras, 4]
  at::Tensor pixels;      // int64 [n_rays, 3]
  int64_t n_rays = 0;
  int64_t n_cameras = 0;
  CameraConvention convention = CameraConvention::kOpenGL;
  double pixel_offset = 0.0;
  bool normalize = false;
};

CameraRayCall prepare_camera_rays(const at::Tensor& c2w, const at::Tensor& intrinsics,
                                  const at::Tensor& pixels, int64_t convention,
                                  double pixel_offset, bool normalize);

// Checked, contiguous origins and directions [n_rays, 3] of one ray op.
struct RayBatch {
  at::Tensor origins, directions;
  int64_t n_rays = 0;
};

RayBatch prepare_ray_batch(const char* op, const at::Tensor& origins,
                           const at::Tensor& directions);

// aabb [6] = (xmin, ymin, zmin, xmax, ymax, zmax), checked against `like` and made contiguous;
// min <= max on every axis when value checks are on (min < max when `strict`).
at::Tensor prepare_aabb(const char* op, const at::Tensor& aabb, const at::Tensor& like,
                        bool strict = false);

SphereBounds sphere_bounds_mode(int64_t mode);

// (origins, directions), both [n_rays, 3] like `like`.
std::tuple<at::Tensor, at::Tensor> allocate_rays(const at::Tensor& like, int64_t n_rays);

// (near, far [n_rays] like `like`, hit bool [n_rays]).
std::tuple<at::Tensor, at::Tensor, at::Tensor> allocate_bounds(const at::Tensor& like,
                                                              int64_t n_rays);

template <typename scalar_t>
CameraRayInputs<scalar_t> camera_ray_inputs(const CameraRayCall& call) {
  return {call.n_rays,
          call.n_cameras,
          call.c2w.data_ptr<scalar_t>(),
          call.intrinsics.data_ptr<scalar_t>(),
          call.pixels.data_ptr<int64_t>(),
          static_cast<scalar_t>(call.pixel_offset),
          call.convention,
          call.normalize};
}

template <typename scalar_t>
RayOutputs<scalar_t> ray_outputs(at::Tensor& origins, at::Tensor& directions) {
  return {origins.data_ptr<scalar_t>(), directions.data_ptr<scalar_t>()};
}

template <typename scalar_t>
NdcInputs<scalar_t> ndc_inputs(const RayBatch& rays, double height, double width, double focal,
                               double near) {
  return {rays.n_rays,
          rays.origins.data_ptr<scalar_t>(),
          rays.directions.data_ptr<scalar_t>(),
          static_cast<scalar_t>(height),
          static_cast<scalar_t>(width),
          static_cast<scalar_t>(focal),
          static_cast<scalar_t>(near)};
}

template <typename scalar_t>
BoundsInputs<scalar_t> bounds_inputs(const RayBatch& rays) {
  return {rays.n_rays, rays.origins.data_ptr<scalar_t>(), rays.directions.data_ptr<scalar_t>()};
}

template <typename scalar_t>
BoundsOutputs<scalar_t> bounds_outputs(at::Tensor& near, at::Tensor& far, at::Tensor& hit) {
  return {near.data_ptr<scalar_t>(), far.data_ptr<scalar_t>(), hit.data_ptr<bool>()};
}

// A few dozen flops per ray: on CPU, smaller batches are not worth waking a second thread for.
constexpr int64_t kRaysPerTask = 4096;

template <class Launcher>
std::tuple<at::Tensor, at::Tensor> generate_rays_driver(const at::Tensor& c2w,
                                                        const at::Tensor& intrinsics,
                                                        const at::Tensor& pixels,
                                                        int64_t convention, double pixel_offset,
                                                        bool normalize) {
  const CameraRayCall call =
      prepare_camera_rays(c2w, intrinsics, pixels, convention, pixel_offset, normalize);
  auto [origins, directions] = allocate_rays(call.c2w, call.n_rays);
  AT_DISPATCH_FLOATING_TYPES(c2w.scalar_type(), "generate_rays", [&] {
    const auto in = camera_ray_inputs<scalar_t>(call);
    const auto out = ray_outputs<scalar_t>(origins, directions);
    Launcher::for_each(c2w, call.n_rays, kRaysPerTask,
                       [=] FF_HOST_DEVICE(int64_t ray) { generate_one_ray(in, out, ray); });
  });
  return {origins, directions};
}

template <class Launcher>
std::tuple<at::Tensor, at::Tensor> ndc_rays_driver(const at::Tensor& origins,
                                                   const at::Tensor& directions, double height,
                                                   double width, double focal, double near) {
  const RayBatch rays = prepare_ray_batch("ndc_rays", origins, directions);
  auto [ndc_origins, ndc_directions] = allocate_rays(rays.origins, rays.n_rays);
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "ndc_rays", [&] {
    const auto in = ndc_inputs<scalar_t>(rays, height, width, focal, near);
    const auto out = ray_outputs<scalar_t>(ndc_origins, ndc_directions);
    Launcher::for_each(origins, rays.n_rays, kRaysPerTask,
                       [=] FF_HOST_DEVICE(int64_t ray) { ndc_one_ray(in, out, ray); });
  });
  return {ndc_origins, ndc_directions};
}

template <class Launcher>
std::tuple<at::Tensor, at::Tensor, at::Tensor> near_far_sphere_driver(const at::Tensor& origins,
                                                                      const at::Tensor& directions,
                                                                      double radius,
                                                                      int64_t mode) {
  const RayBatch rays = prepare_ray_batch("near_far_sphere", origins, directions);
  const SphereBounds bounds_mode = sphere_bounds_mode(mode);
  auto [near, far, hit] = allocate_bounds(rays.origins, rays.n_rays);
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "near_far_sphere", [&] {
    const auto in = bounds_inputs<scalar_t>(rays);
    const auto out = bounds_outputs<scalar_t>(near, far, hit);
    const auto r = static_cast<scalar_t>(radius);
    Launcher::for_each(origins, rays.n_rays, kRaysPerTask, [=] FF_HOST_DEVICE(int64_t ray) {
      near_far_sphere_one_ray(in, r, bounds_mode, out, ray);
    });
  });
  return {near, far, hit};
}

template <class Launcher>
std::tuple<at::Tensor, at::Tensor, at::Tensor> near_far_aabb_driver(const at::Tensor& origins,
                                                                    const at::Tensor& directions,
                                                                    const at::Tensor& aabb) {
  const char* op = "near_far_aabb";
  const RayBatch rays = prepare_ray_batch(op, origins, directions);
  const at::Tensor box = prepare_aabb(op, aabb, rays.origins);
  auto [near, far, hit] = allocate_bounds(rays.origins, rays.n_rays);
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "near_far_aabb", [&] {
    const auto in = bounds_inputs<scalar_t>(rays);
    const auto out = bounds_outputs<scalar_t>(near, far, hit);
    const scalar_t* box_data = box.data_ptr<scalar_t>();  // [6]
    Launcher::for_each(origins, rays.n_rays, kRaysPerTask, [=] FF_HOST_DEVICE(int64_t ray) {
      near_far_aabb_one_ray(in, box_data, out, ray);
    });
  });
  return {near, far, hit};
}

}  // namespace fastfield
