// The drivers of the marching ops, written once over a launcher (../common/launch.h) and
// instantiated by marching_cpu.cpp and marching_cuda.cu: argument checks, contiguous copies,
// output allocation, the raw-pointer views that the per-ray walk of marching.h consumes, and one
// launch of that walk per ray (the walk is sequential along a ray, as in instant-ngp and nerfacc).
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <optional>
#include <tuple>

#include "../common/host_device.h"
#include "../common/launch.h"
#include "../rays/rays_host.h"
#include "marching.h"

namespace fastfield {

// Checked, contiguous inputs of one march_rays_count / march_rays_fill call.
struct MarchCall {
  RayBatch rays;
  at::Tensor near, far, u, bitfield, aabb;  // u may be undefined
  int64_t res[3] = {0, 0, 0};
  int64_t levels = 0;
  double step_size = 0, cone_angle = 0, max_step = 0;
  int64_t max_steps = 0;
};

MarchCall prepare_march(const char* op, const at::Tensor& origins, const at::Tensor& directions,
                        const at::Tensor& near, const at::Tensor& far,
                        const std::optional<at::Tensor>& u, const at::Tensor& bitfield,
                        const at::Tensor& aabb, at::IntArrayRef resolution, int64_t levels,
                        double step_size, double cone_angle, double max_step, int64_t max_steps);

// ray_offsets int64 [n_rays + 1] (monotone, ending at capacity, when value checks are on),
// made contiguous; capacity >= 0.
at::Tensor prepare_fill_offsets(const char* op, const MarchCall& call,
                                const at::Tensor& ray_offsets, int64_t capacity);

template <typename scalar_t>
MarchInputs<scalar_t> march_inputs(const MarchCall& call) {
  MarchGrid<scalar_t> grid{call.bitfield.data_ptr<uint8_t>(),
                           call.bitfield.numel(),
                           call.aabb.data_ptr<scalar_t>(),
                           {call.res[0], call.res[1], call.res[2]},
                           call.levels};
  return {call.rays.n_rays,
          call.rays.origins.data_ptr<scalar_t>(),
          call.rays.directions.data_ptr<scalar_t>(),
          call.near.data_ptr<scalar_t>(),
          call.far.data_ptr<scalar_t>(),
          call.u.defined() ? call.u.data_ptr<scalar_t>() : nullptr,
          grid,
          static_cast<scalar_t>(call.step_size),
          static_cast<scalar_t>(call.cone_angle),
          static_cast<scalar_t>(call.max_step),
          call.max_steps};
}

// Hundreds of steps per ray: small CPU tasks still pay for themselves.
constexpr int64_t kMarchRaysPerTask = 16;

template <class Launcher>
at::Tensor march_rays_count_driver(const at::Tensor& origins, const at::Tensor& directions,
                                   const at::Tensor& near, const at::Tensor& far,
                                   const std::optional<at::Tensor>& u,
                                   const at::Tensor& bitfield, const at::Tensor& aabb,
                                   at::IntArrayRef resolution, int64_t levels, double step_size,
                                   double cone_angle, double max_step, int64_t max_steps) {
  const MarchCall call = prepare_march("march_rays_count", origins, directions, near, far, u,
                                       bitfield, aabb, resolution, levels, step_size, cone_angle,
                                       max_step, max_steps);
  at::Tensor counts = origins.new_empty({call.rays.n_rays}, origins.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "march_rays_count", [&] {
    const auto in = march_inputs<scalar_t>(call);
    int64_t* out = counts.data_ptr<int64_t>();
    Launcher::for_each(origins, in.n_rays, kMarchRaysPerTask,
                       [=] FF_HOST_DEVICE(int64_t ray) { out[ray] = count_one_ray(in, ray); });
  });
  return counts;
}

template <class Launcher>
std::tuple<at::Tensor, at::Tensor, at::Tensor> march_rays_fill_driver(
    const at::Tensor& origins, const at::Tensor& directions, const at::Tensor& near,
    const at::Tensor& far, const std::optional<at::Tensor>& u, const at::Tensor& bitfield,
    const at::Tensor& aabb, at::IntArrayRef resolution, int64_t levels, double step_size,
    double cone_angle, double max_step, int64_t max_steps, const at::Tensor& ray_offsets,
    int64_t capacity) {
  const char* op = "march_rays_fill";
  const MarchCall call = prepare_march(op, origins, directions, near, far, u, bitfield, aabb,
                                       resolution, levels, step_size, cone_angle, max_step,
                                       max_steps);
  const at::Tensor offsets = prepare_fill_offsets(op, call, ray_offsets, capacity);
  // Zeros: slots that no ray owns (only possible with unchecked offsets) read as padding.
  at::Tensor t_starts = origins.new_zeros({capacity});
  at::Tensor t_ends = origins.new_zeros({capacity});
  at::Tensor ray_indices = origins.new_zeros({capacity}, origins.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "march_rays_fill", [&] {
    const auto in = march_inputs<scalar_t>(call);
    const MarchOutputs<scalar_t> out{offsets.data_ptr<int64_t>(), capacity,
                                     t_starts.data_ptr<scalar_t>(), t_ends.data_ptr<scalar_t>(),
                                     ray_indices.data_ptr<int64_t>()};
    Launcher::for_each(origins, in.n_rays, kMarchRaysPerTask,
                       [=] FF_HOST_DEVICE(int64_t ray) { fill_one_ray(in, out, ray); });
  });
  return {t_starts, t_ends, ray_indices};
}

}  // namespace fastfield
