// The drivers of composite_density, written once over a launcher (../common/launch.h) and
// instantiated by density_cpu.cpp and density_cuda.cu: argument checks, contiguous copies,
// output allocation, the raw-pointer views that the per-ray scans of density.h consume, and the
// run of those scans over the rays (DensityRays: tiles on CUDA, the CPU's own structure there).
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

#include "../common/host_device.h"
#include "../common/launch.h"
#include "../common/math.h"
#include "../common/tensor_args.h"
#include "density.h"

namespace fastfield {

// Checked, contiguous inputs of one composite_density call.
struct DensityCall {
  at::Tensor sigma, rgb, deltas, t, ray_offsets, background;  // t, ray_offsets, background may be undefined
  int64_t n_rays = 0;
  int64_t per_ray = 0;  // samples per ray in the padded layout, 0 when packed
  int64_t n_samples = 0;
};

DensityCall prepare_density(const char* op, const at::Tensor& sigma, const at::Tensor& rgb,
                            const at::Tensor& deltas, const std::optional<at::Tensor>& t,
                            const std::optional<at::Tensor>& ray_offsets,
                            const std::optional<at::Tensor>& background);

// (rgb [n_rays, 3], depth [n_rays] or [0] when t is absent, acc [n_rays], weights like sigma);
// kernels_fill_unowned: see zero_initialised (tensor_args.h).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> allocate_density_outputs(
    const DensityCall& call, bool kernels_fill_unowned);

// Incoming gradients checked against `call` and made contiguous (undefined stays undefined);
// outgoing (grad_sigma, grad_rgb, grad_t [0] when t is absent) allocated.
struct DensityGradTensors {
  at::Tensor grad_rgb, grad_depth, grad_acc, grad_weights;
  at::Tensor grad_sigma, grad_rgb_samples, grad_t;
};

DensityGradTensors prepare_density_grads(const char* op, const DensityCall& call,
                                         const std::optional<at::Tensor>& grad_rgb,
                                         const std::optional<at::Tensor>& grad_depth,
                                         const std::optional<at::Tensor>& grad_acc,
                                         const std::optional<at::Tensor>& grad_weights,
                                         bool kernels_fill_unowned);

template <typename scalar_t>
DensityInputs<scalar_t> density_inputs(const DensityCall& call) {
  return {call.n_rays,
          call.per_ray,
          call.n_samples,
          data_or_null<int64_t>(call.ray_offsets),
          call.sigma.data_ptr<scalar_t>(),
          call.deltas.data_ptr<scalar_t>(),
          call.rgb.data_ptr<scalar_t>(),
          call.t.defined() ? call.t.data_ptr<scalar_t>() : nullptr,
          call.background.defined() ? call.background.data_ptr<scalar_t>() : nullptr,
          call.background.defined() && call.background.dim() == 2 ? 3 : 0};
}

template <typename scalar_t>
DensityOutputs<scalar_t> density_outputs(at::Tensor& rgb, at::Tensor& depth, at::Tensor& acc,
                                         at::Tensor& weights) {
  return {rgb.data_ptr<scalar_t>(), depth.numel() > 0 ? depth.data_ptr<scalar_t>() : nullptr,
          acc.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>()};
}

template <typename scalar_t>
DensityGrads<scalar_t> density_grads(DensityGradTensors& g) {
  return {data_or_null<scalar_t>(g.grad_rgb),     data_or_null<scalar_t>(g.grad_depth),
          data_or_null<scalar_t>(g.grad_acc),     data_or_null<scalar_t>(g.grad_weights),
          g.grad_sigma.data_ptr<scalar_t>(),      g.grad_rgb_samples.data_ptr<scalar_t>(),
          g.grad_t.numel() > 0 ? g.grad_t.data_ptr<scalar_t>() : nullptr};
}

// The tile functions of density.h as functors for Launcher::for_each_tile (launch.h), with
// exp(-sigma delta) computed on the spot.
template <typename scalar_t>
struct DensityForwardTiles {
  DensityInputs<scalar_t> in;
  DensityOutputs<scalar_t> out;
  template <class Tile>
  FF_HOST_DEVICE void operator()(const Tile& tile, int64_t ray) const {
    density_forward_tile(tile, in, DecayFromDensity<scalar_t, StdExp>{in.sigma, in.delta, StdExp{}},
                         out, ray);
  }
};

template <typename scalar_t>
struct DensityBackwardTiles {
  DensityInputs<scalar_t> in;
  DensityGrads<scalar_t> grads;
  scalar_t* scratch;  // [n_samples]: T at each chunk's first sample
  template <class Tile>
  FF_HOST_DEVICE void operator()(const Tile& tile, int64_t ray) const {
    density_backward_tile(tile, in,
                          DecayFromDensity<scalar_t, StdExp>{in.sigma, in.delta, StdExp{}},
                          grads, ray, scratch, 0);
  }
};

// How the per-ray scans of density.h run over the rays: forward(device_of, in, out) and
// backward(device_of, in, grads). This general form runs a tile of lanes per ray
// (Launcher::for_each_tile: the CUDA kernel, and the CPU's tile emulation). density_cpu.cpp
// specialises it for CpuLauncher: a vectorised bulk pass fills the decays of a block of rays
// first, then the sequential scans read them.
template <class Launcher>
struct DensityRays {
  // The tiles write every packed sample, owned or not (zero_unowned).
  static bool fills_unowned() { return true; }

  template <typename scalar_t>
  static void forward(const at::Tensor& device_of, const DensityInputs<scalar_t>& in,
                      const DensityOutputs<scalar_t>& out) {
    Launcher::for_each_tile(device_of, in.n_rays, samples_per_ray(in),
                            DensityForwardTiles<scalar_t>{in, out});
  }

  template <typename scalar_t>
  static void backward(const at::Tensor& device_of, const DensityInputs<scalar_t>& in,
                       const DensityGrads<scalar_t>& grads) {
    // A buffer of its own for T (not an output, which overlapping rays of unchecked invalid
    // offsets would write meanwhile); only each chunk's first entry is touched.
    at::Tensor scratch = device_of.new_empty({in.n_samples});
    Launcher::for_each_tile(device_of, in.n_rays, samples_per_ray(in),
                            DensityBackwardTiles<scalar_t>{in, grads, scratch.data_ptr<scalar_t>()});
  }

 private:
  template <typename scalar_t>
  static int64_t samples_per_ray(const DensityInputs<scalar_t>& in) {
    return in.n_rays > 0 ? in.n_samples / in.n_rays : 0;
  }
};

template <>
struct DensityRays<CpuLauncher>;  // density_cpu.cpp

template <class Launcher>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> composite_density_fwd_driver(
    const at::Tensor& sigma, const at::Tensor& rgb, const at::Tensor& deltas,
    const std::optional<at::Tensor>& t, const std::optional<at::Tensor>& ray_offsets,
    const std::optional<at::Tensor>& background) {
  const DensityCall call =
      prepare_density("composite_density", sigma, rgb, deltas, t, ray_offsets, background);
  auto [out_rgb, depth, acc, weights] =
      allocate_density_outputs(call, DensityRays<Launcher>::fills_unowned());
  AT_DISPATCH_FLOATING_TYPES(sigma.scalar_type(), "composite_density_fwd", [&] {
    DensityRays<Launcher>::forward(sigma, density_inputs<scalar_t>(call),
                                   density_outputs<scalar_t>(out_rgb, depth, acc, weights));
  });
  return {out_rgb, depth, acc, weights};
}

template <class Launcher>
std::tuple<at::Tensor, at::Tensor, at::Tensor> composite_density_bwd_driver(
    const std::optional<at::Tensor>& grad_rgb, const std::optional<at::Tensor>& grad_depth,
    const std::optional<at::Tensor>& grad_acc, const std::optional<at::Tensor>& grad_weights,
    const at::Tensor& sigma, const at::Tensor& rgb, const at::Tensor& deltas,
    const std::optional<at::Tensor>& t, const std::optional<at::Tensor>& ray_offsets,
    const std::optional<at::Tensor>& background) {
  const char* op = "composite_density_bwd";
  const DensityCall call = prepare_density(op, sigma, rgb, deltas, t, ray_offsets, background);
  DensityGradTensors g =
      prepare_density_grads(op, call, grad_rgb, grad_depth, grad_acc, grad_weights,
                            DensityRays<Launcher>::fills_unowned());
  AT_DISPATCH_FLOATING_TYPES(sigma.scalar_type(), "composite_density_bwd", [&] {
    DensityRays<Launcher>::backward(sigma, density_inputs<scalar_t>(call),
                                    density_grads<scalar_t>(g));
  });
  return {g.grad_sigma, g.grad_rgb_samples, g.grad_t};
}

}  // namespace fastfield
