// The drivers of composite_sdf (NeuS compositing), written once over a launcher
// (../common/launch.h) and instantiated by sdf_cpu.cpp and sdf_cuda.cu: argument checks,
// contiguous copies, output allocation, the raw-pointer views that the per-ray scans of sdf.h
// consume, and the run of those scans over the rays (SdfRays: tiles on CUDA, the CPU's own
// structure there).
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

#include "../common/host_device.h"
#include "../common/launch.h"
#include "../common/math.h"
#include "../common/tensor_args.h"
#include "sdf.h"

namespace fastfield {

// Checked, contiguous inputs of one composite_sdf call. inside, bg_alpha, bg_rgb (all three or
// none) and ray_offsets may be undefined.
struct SdfCall {
  at::Tensor sdf, cos, dists, inv_s, rgb, inside, bg_alpha, bg_rgb, ray_offsets;
  double cos_anneal_ratio = 0;
  int64_t n_rays = 0;
  int64_t n_in = 0;     // SDF samples per ray in the padded layout, 0 when packed
  int64_t n_total = 0;  // n_in + n_out with a background model, else 0
  int64_t n_samples = 0;
};

SdfCall prepare_sdf(const char* op, const at::Tensor& sdf, const at::Tensor& cos,
                    const at::Tensor& dists, const at::Tensor& inv_s, const at::Tensor& rgb,
                    double cos_anneal_ratio, const std::optional<at::Tensor>& inside,
                    const std::optional<at::Tensor>& bg_alpha,
                    const std::optional<at::Tensor>& bg_rgb,
                    const std::optional<at::Tensor>& ray_offsets);

// (rgb [n_rays, 3], acc [n_rays], weights, alpha): weights and alpha are [n_rays, n_total] with
// a background model, else in the layout of sdf.
// kernels_fill_unowned: see zero_initialised (tensor_args.h).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> allocate_sdf_outputs(
    const SdfCall& call, bool kernels_fill_unowned);

// Incoming gradients checked against `call` and made contiguous (undefined stays undefined);
// outgoing ones allocated: grad_sdf, grad_cos like sdf, grad_inv_s [n_rays], grad_rgb like rgb,
// grad_bg_alpha / grad_bg_rgb like bg_alpha / bg_rgb ([0] without a background model).
struct SdfGradTensors {
  at::Tensor grad_rgb, grad_acc, grad_weights, grad_alpha;
  at::Tensor grad_sdf, grad_cos, grad_inv_s, grad_rgb_samples, grad_bg_alpha, grad_bg_rgb;
};

SdfGradTensors prepare_sdf_grads(const char* op, const SdfCall& call,
                                 const std::optional<at::Tensor>& grad_rgb,
                                 const std::optional<at::Tensor>& grad_acc,
                                 const std::optional<at::Tensor>& grad_weights,
                                 const std::optional<at::Tensor>& grad_alpha,
                                 bool kernels_fill_unowned);

template <typename scalar_t>
SdfInputs<scalar_t> sdf_inputs(const SdfCall& call) {
  return {call.n_rays,
          call.n_in,
          call.n_total,
          call.n_samples,
          data_or_null<int64_t>(call.ray_offsets),
          call.sdf.data_ptr<scalar_t>(),
          call.cos.data_ptr<scalar_t>(),
          call.dists.data_ptr<scalar_t>(),
          call.inv_s.data_ptr<scalar_t>(),
          call.inv_s.numel() == 1 ? 0 : 1,
          call.rgb.data_ptr<scalar_t>(),
          data_or_null<scalar_t>(call.inside),
          data_or_null<scalar_t>(call.bg_alpha),
          data_or_null<scalar_t>(call.bg_rgb),
          static_cast<scalar_t>(call.cos_anneal_ratio)};
}

template <typename scalar_t>
SdfOutputs<scalar_t> sdf_outputs(at::Tensor& rgb, at::Tensor& acc, at::Tensor& weights,
                                 at::Tensor& alpha) {
  return {rgb.data_ptr<scalar_t>(), acc.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>(),
          alpha.data_ptr<scalar_t>()};
}

template <typename scalar_t>
SdfGrads<scalar_t> sdf_grads(SdfGradTensors& g) {
  return {data_or_null<scalar_t>(g.grad_rgb),
          data_or_null<scalar_t>(g.grad_acc),
          data_or_null<scalar_t>(g.grad_weights),
          data_or_null<scalar_t>(g.grad_alpha),
          g.grad_sdf.data_ptr<scalar_t>(),
          g.grad_cos.data_ptr<scalar_t>(),
          g.grad_inv_s.data_ptr<scalar_t>(),
          g.grad_rgb_samples.data_ptr<scalar_t>(),
          data_or_null<scalar_t>(g.grad_bg_alpha),
          data_or_null<scalar_t>(g.grad_bg_rgb)};
}

// The tile functions of sdf.h as functors for Launcher::for_each_tile (launch.h), with the NeuS
// alpha evaluated on the spot (the backward evaluates it in both sweeps instead of storing
// per-sample tables).
template <bool kBackground, typename scalar_t>
struct SdfForwardTiles {
  SdfInputs<scalar_t> in;
  SdfOutputs<scalar_t> out;
  template <class Tile>
  FF_HOST_DEVICE void operator()(const Tile& tile, int64_t ray) const {
    sdf_forward_tile<kBackground>(tile, in, sdf_ray_span(in, ray),
                                  neus_from_sdf(in, ray, StdExp{}), out, ray);
  }
};

template <bool kBackground, typename scalar_t>
struct SdfBackwardTiles {
  SdfInputs<scalar_t> in;
  SdfGrads<scalar_t> grads;
  scalar_t* scratch;  // one entry per composite sample: T at each chunk's first
  template <class Tile>
  FF_HOST_DEVICE void operator()(const Tile& tile, int64_t ray) const {
    sdf_backward_tile<kBackground>(tile, in, sdf_ray_span(in, ray),
                                   neus_from_sdf(in, ray, StdExp{}), grads, ray, scratch, 0);
  }
};

// How the per-ray scans of sdf.h run over the rays: forward<kBackground>(device_of, in, out) and
// backward<kBackground>(device_of, in, grads), kBackground == (in.bg_alpha != nullptr). This
// general form runs a tile of lanes per ray (Launcher::for_each_tile: the CUDA kernel, and the
// CPU's tile emulation). sdf_cpu.cpp specialises it for CpuLauncher: vectorised bulk passes
// evaluate the per-sample formulas into in-cache tables around sequential scans.
template <class Launcher>
struct SdfRays {
  // The tiles write every packed sample, owned or not (zero_unowned).
  static bool fills_unowned() { return true; }

  template <bool kBackground, typename scalar_t>
  static void forward(const at::Tensor& device_of, const SdfInputs<scalar_t>& in,
                      const SdfOutputs<scalar_t>& out) {
    Launcher::for_each_tile(device_of, in.n_rays, samples_per_ray(in),
                            SdfForwardTiles<kBackground, scalar_t>{in, out});
  }

  template <bool kBackground, typename scalar_t>
  static void backward(const at::Tensor& device_of, const SdfInputs<scalar_t>& in,
                       const SdfGrads<scalar_t>& grads) {
    // A buffer of its own for T (not an output, which overlapping rays of unchecked invalid
    // offsets would write meanwhile); only each chunk's first entry is touched.
    const int64_t composite = kBackground ? in.n_rays * in.n_total : in.n_samples;
    at::Tensor scratch = device_of.new_empty({composite});
    Launcher::for_each_tile(
        device_of, in.n_rays, samples_per_ray(in),
        SdfBackwardTiles<kBackground, scalar_t>{in, grads, scratch.data_ptr<scalar_t>()});
  }

 private:
  template <typename scalar_t>
  static int64_t samples_per_ray(const SdfInputs<scalar_t>& in) {
    if (in.n_rays == 0) return 0;
    return in.bg_alpha != nullptr ? in.n_total : in.n_samples / in.n_rays;
  }
};

template <>
struct SdfRays<CpuLauncher>;  // sdf_cpu.cpp

template <class Launcher>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> composite_sdf_fwd_driver(
    const at::Tensor& sdf, const at::Tensor& cos, const at::Tensor& dists,
    const at::Tensor& inv_s, const at::Tensor& rgb, double cos_anneal_ratio,
    const std::optional<at::Tensor>& inside, const std::optional<at::Tensor>& bg_alpha,
    const std::optional<at::Tensor>& bg_rgb, const std::optional<at::Tensor>& ray_offsets) {
  const SdfCall call = prepare_sdf("composite_sdf", sdf, cos, dists, inv_s, rgb,
                                   cos_anneal_ratio, inside, bg_alpha, bg_rgb, ray_offsets);
  auto [out_rgb, acc, weights, alpha] =
      allocate_sdf_outputs(call, SdfRays<Launcher>::fills_unowned());
  AT_DISPATCH_FLOATING_TYPES(sdf.scalar_type(), "composite_sdf_fwd", [&] {
    const auto in = sdf_inputs<scalar_t>(call);
    const auto out = sdf_outputs<scalar_t>(out_rgb, acc, weights, alpha);
    if (in.bg_alpha != nullptr) {
      SdfRays<Launcher>::template forward<true>(sdf, in, out);
    } else {
      SdfRays<Launcher>::template forward<false>(sdf, in, out);
    }
  });
  return {out_rgb, acc, weights, alpha};
}

template <class Launcher>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
composite_sdf_bwd_driver(const std::optional<at::Tensor>& grad_rgb,
                         const std::optional<at::Tensor>& grad_acc,
                         const std::optional<at::Tensor>& grad_weights,
                         const std::optional<at::Tensor>& grad_alpha, const at::Tensor& sdf,
                         const at::Tensor& cos, const at::Tensor& dists, const at::Tensor& inv_s,
                         const at::Tensor& rgb, double cos_anneal_ratio,
                         const std::optional<at::Tensor>& inside,
                         const std::optional<at::Tensor>& bg_alpha,
                         const std::optional<at::Tensor>& bg_rgb,
                         const std::optional<at::Tensor>& ray_offsets) {
  const char* op = "composite_sdf_bwd";
  const SdfCall call = prepare_sdf(op, sdf, cos, dists, inv_s, rgb, cos_anneal_ratio, inside,
                                   bg_alpha, bg_rgb, ray_offsets);
  SdfGradTensors g = prepare_sdf_grads(op, call, grad_rgb, grad_acc, grad_weights, grad_alpha,
                                       SdfRays<Launcher>::fills_unowned());
  AT_DISPATCH_FLOATING_TYPES(sdf.scalar_type(), "composite_sdf_bwd", [&] {
    const auto in = sdf_inputs<scalar_t>(call);
    const auto grads = sdf_grads<scalar_t>(g);
    if (in.bg_alpha != nullptr) {
      SdfRays<Launcher>::template backward<true>(sdf, in, grads);
    } else {
      SdfRays<Launcher>::template backward<false>(sdf, in, grads);
    }
  });
  return {g.grad_sdf, g.grad_cos, g.grad_inv_s, g.grad_rgb_samples, g.grad_bg_alpha,
          g.grad_bg_rgb};
}

}  // namespace fastfield
