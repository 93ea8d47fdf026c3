// Host-side half of the ray drivers, shared by rays_cpu.cpp and rays_cuda.cu: argument checks,
// contiguous copies, output allocation and the raw-pointer views that the per-ray functions in
// camera_rays.h and bounds.h consume.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <tuple>

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
// min <= max on every axis when value checks are on.
at::Tensor prepare_aabb(const char* op, const at::Tensor& aabb, const at::Tensor& like);

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

}  // namespace fastfield
