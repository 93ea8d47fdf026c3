// The driver of stratified_samples, written once over a launcher (../common/launch.h) and
// instantiated by stratified_cpu.cpp and stratified_cuda.cu: argument checks, contiguous copies,
// output allocation, the raw-pointer view that stratified.h consumes, and one launch of its
// per-ray function per ray.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>

#include "../common/host_device.h"
#include "../common/launch.h"
#include "stratified.h"

namespace fastfield {

// Checked, contiguous inputs of one stratified_samples call.
struct StratifiedCall {
  at::Tensor near, far;  // [n_rays]
  at::Tensor u;          // [n_rays, n_samples], [n_rays] or undefined (jitter none)
  int64_t n_rays = 0;
  int64_t n_samples = 0;
  bool lindisp = false;
  Jitter jitter = Jitter::kNone;
};

StratifiedCall prepare_stratified(const at::Tensor& near, const at::Tensor& far,
                                  const std::optional<at::Tensor>& u, int64_t n_samples,
                                  bool lindisp, int64_t jitter);

// t [n_rays, n_samples] like near.
at::Tensor allocate_stratified(const StratifiedCall& call);

template <typename scalar_t>
StratifiedInputs<scalar_t> stratified_inputs(const StratifiedCall& call) {
  return {call.n_rays,
          call.n_samples,
          call.near.data_ptr<scalar_t>(),
          call.far.data_ptr<scalar_t>(),
          call.u.defined() ? call.u.data_ptr<scalar_t>() : nullptr,
          call.lindisp,
          call.jitter};
}

// Samples per CPU task: enough work to pay for waking a second thread.
constexpr int64_t kSamplesPerTask = 32768;

// How the samples are computed: run(device_of, in, out, grain). This general form runs one item
// per sample (the CUDA kernel: consecutive threads write consecutive samples); the CPU runs one
// item per ray whose loops vectorise (stratified_cpu.cpp).
template <class Launcher>
struct StratifiedRays {
  template <typename scalar_t>
  static void run(const at::Tensor& device_of, const StratifiedInputs<scalar_t>& in,
                  scalar_t* out,  // [n_rays, n_samples]
                  int64_t /*grain*/) {
    const int64_t n = in.n_samples;
    Launcher::for_each(device_of, in.n_rays * n, 1, [=] FF_HOST_DEVICE(int64_t k) {
      out[k] = stratified_sample_of(in, k / n, static_cast<int>(k % n));
    });
  }
};

template <>
struct StratifiedRays<CpuLauncher>;  // stratified_cpu.cpp

template <class Launcher>
at::Tensor stratified_samples_driver(const at::Tensor& near, const at::Tensor& far,
                                     const std::optional<at::Tensor>& u, int64_t n_samples,
                                     bool lindisp, int64_t jitter) {
  const StratifiedCall call = prepare_stratified(near, far, u, n_samples, lindisp, jitter);
  at::Tensor t = allocate_stratified(call);
  AT_DISPATCH_FLOATING_TYPES(near.scalar_type(), "stratified_samples", [&] {
    StratifiedRays<Launcher>::run(near, stratified_inputs<scalar_t>(call), t.data_ptr<scalar_t>(),
                                  items_per_task(call.n_samples, kSamplesPerTask));
  });
  return t;
}

}  // namespace fastfield
