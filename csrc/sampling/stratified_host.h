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

// The per-ray loops of stratified.h vectorise: the CPU runs them through for_each_vectorised.
template <class Launcher>
at::Tensor stratified_samples_driver(const at::Tensor& near, const at::Tensor& far,
                                     const std::optional<at::Tensor>& u, int64_t n_samples,
                                     bool lindisp, int64_t jitter) {
  const StratifiedCall call = prepare_stratified(near, far, u, n_samples, lindisp, jitter);
  at::Tensor t = allocate_stratified(call);
  AT_DISPATCH_FLOATING_TYPES(near.scalar_type(), "stratified_samples", [&] {
    const auto in = stratified_inputs<scalar_t>(call);
    scalar_t* out = t.data_ptr<scalar_t>();  // [n_rays, n_samples]
    const int64_t grain = items_per_task(call.n_samples, kSamplesPerTask);
    Launcher::for_each_vectorised(near, call.n_rays, grain, [=] FF_HOST_DEVICE(int64_t ray) {
      stratified_one_ray(in, out, ray);
    });
  });
  return t;
}

}  // namespace fastfield
