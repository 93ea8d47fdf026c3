// Pinhole camera rays: the per-ray math of generate_rays and ndc_rays, run on CPU and CUDA by the
// drivers of rays_host.h.
//
// generate_rays, pixel (camera c, row, col), o = pixel_offset, K_c = (fx, fy, cx, cy):
//   x = (col + o - cx) / fx,  y = (row + o - cy) / fy
//   d_cam = (x, -y, -1) (OpenGL: Blender, LLFF)  or  (x, y, 1) (OpenCV: DTU, NeuS)
//   origin = c2w_c[:, 3],  direction = c2w_c[:, :3] @ d_cam  (divided by its norm if normalize)
// ndc_rays (nerf-pytorch), origin first moved to the plane z = -near along the ray:
//   t = -(near + o_z) / d_z,  o' = o + t d
//   origin    = (-2f/W o'_x/o'_z,  -2f/H o'_y/o'_z,  1 + 2 near/o'_z)
//   direction = (-2f/W (d_x/d_z - o'_x/o'_z),  -2f/H (d_y/d_z - o'_y/o'_z),  -2 near/o'_z)
#pragma once

#include <cmath>
#include <cstdint>

#include "../common/enums.h"  // CameraConvention
#include "../common/host_device.h"

namespace fastfield {

template <typename scalar_t>
struct CameraRayInputs {
  int64_t n_rays;
  int64_t n_cameras;
  const scalar_t* c2w;         // [n_cameras, 3, 4]
  const scalar_t* intrinsics;  // [n_cameras, 4] = (fx, fy, cx, cy)
  const int64_t* pixels;       // [n_rays, 3] = (camera, row, col)
  scalar_t pixel_offset;
  CameraConvention convention;
  bool normalize;
};

template <typename scalar_t>
struct RayOutputs {
  scalar_t* origins;     // [n_rays, 3]
  scalar_t* directions;  // [n_rays, 3]
};

template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void generate_one_ray(const CameraRayInputs<scalar_t>& in,
                                               const RayOutputs<scalar_t>& out, int64_t ray) {
  const int64_t* pixel = in.pixels + 3 * ray;
  const int64_t camera = pixel[0];
  scalar_t* origin = out.origins + 3 * ray;
  scalar_t* direction = out.directions + 3 * ray;
  if (camera < 0 || camera >= in.n_cameras) {
    // Only reachable with value checks off (CUDA): no camera to read, the ray is NaN.
    for (int k = 0; k < 3; ++k) origin[k] = direction[k] = static_cast<scalar_t>(NAN);
    return;
  }
  const scalar_t* pose = in.c2w + 12 * camera;
  const scalar_t* intrinsics = in.intrinsics + 4 * camera;
  const scalar_t x =
      (static_cast<scalar_t>(pixel[2]) + in.pixel_offset - intrinsics[2]) / intrinsics[0];
  const scalar_t y =
      (static_cast<scalar_t>(pixel[1]) + in.pixel_offset - intrinsics[3]) / intrinsics[1];
  const bool opengl = in.convention == CameraConvention::kOpenGL;
  const scalar_t d_cam[3] = {x, opengl ? -y : y, opengl ? scalar_t(-1) : scalar_t(1)};
  scalar_t d[3];
  for (int k = 0; k < 3; ++k) {
    const scalar_t* row = pose + 4 * k;
    d[k] = row[0] * d_cam[0] + row[1] * d_cam[1] + row[2] * d_cam[2];
    origin[k] = row[3];
  }
  if (in.normalize) {
    using std::sqrt;
    const scalar_t norm = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    for (int k = 0; k < 3; ++k) d[k] /= norm;
  }
  for (int k = 0; k < 3; ++k) direction[k] = d[k];
}

template <typename scalar_t>
struct NdcInputs {
  int64_t n_rays;
  const scalar_t* origins;     // [n_rays, 3]
  const scalar_t* directions;  // [n_rays, 3]
  scalar_t height;
  scalar_t width;
  scalar_t focal;
  scalar_t near;
};

template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void ndc_one_ray(const NdcInputs<scalar_t>& in,
                                          const RayOutputs<scalar_t>& out, int64_t ray) {
  const scalar_t* o = in.origins + 3 * ray;
  const scalar_t* d = in.directions + 3 * ray;
  const scalar_t t = -(in.near + o[2]) / d[2];
  const scalar_t shifted[3] = {o[0] + t * d[0], o[1] + t * d[1], o[2] + t * d[2]};
  // nerf-pytorch writes -1 / (W / (2 focal)); kept in that form so float64 agrees to rounding.
  const scalar_t scale_x = scalar_t(-1) / (in.width / (scalar_t(2) * in.focal));
  const scalar_t scale_y = scalar_t(-1) / (in.height / (scalar_t(2) * in.focal));
  const scalar_t x_over_z = shifted[0] / shifted[2];
  const scalar_t y_over_z = shifted[1] / shifted[2];
  scalar_t* origin = out.origins + 3 * ray;
  scalar_t* direction = out.directions + 3 * ray;
  origin[0] = scale_x * x_over_z;
  origin[1] = scale_y * y_over_z;
  origin[2] = scalar_t(1) + scalar_t(2) * in.near / shifted[2];
  direction[0] = scale_x * (d[0] / d[2] - x_over_z);
  direction[1] = scale_y * (d[1] / d[2] - y_over_z);
  direction[2] = scalar_t(-2) * in.near / shifted[2];
}

}  // namespace fastfield
