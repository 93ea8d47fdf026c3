// CPU driver of stratified_samples: at::parallel_for over rays calling the shared per-ray
// function of stratified.h, compiled with AVX2 where the CPU has it.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>

#include "../common/fast_exp_cpu.h"  // FF_CPU_MULTIVERSION
#include "stratified_host.h"

namespace fastfield {
namespace {

// Samples per parallel task: enough work to pay for waking a second thread.
constexpr int64_t kSamplesPerTask = 32768;

// Compiled for AVX2 as well as the baseline ISA: the per-ray loops of stratified.h vectorise.
template <typename scalar_t>
FF_CPU_MULTIVERSION void stratify_rays(const StratifiedInputs<scalar_t>& in, scalar_t* t,
                                       int64_t begin, int64_t end) {
  for (int64_t ray = begin; ray < end; ++ray) stratified_one_ray(in, t, ray);
}

at::Tensor stratified_samples_cpu(const at::Tensor& near, const at::Tensor& far,
                                  const std::optional<at::Tensor>& u, int64_t n_samples,
                                  bool lindisp, int64_t jitter) {
  const StratifiedCall call = prepare_stratified(near, far, u, n_samples, lindisp, jitter);
  at::Tensor t = allocate_stratified(call);
  AT_DISPATCH_FLOATING_TYPES(near.scalar_type(), "stratified_samples_cpu", [&] {
    const auto in = stratified_inputs<scalar_t>(call);
    scalar_t* out = t.data_ptr<scalar_t>();
    const int64_t rays_per_task = std::max<int64_t>(1, kSamplesPerTask / call.n_samples);
    at::parallel_for(0, call.n_rays, rays_per_task,
                     [&](int64_t begin, int64_t end) { stratify_rays(in, out, begin, end); });
  });
  return t;
}

}  // namespace
}  // namespace fastfield

TORCH_LIBRARY_IMPL(fastfield, CPU, m) {
  m.impl("stratified_samples", &fastfield::stratified_samples_cpu);
}
