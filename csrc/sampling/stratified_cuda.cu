// CUDA driver of stratified_samples: one thread per ray runs the shared per-ray function of
// stratified.h.
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "../common/cuda_launch.h"
#include "stratified_host.h"

namespace fastfield {
namespace {

template <typename scalar_t>
__global__ void stratified_kernel(const StratifiedInputs<scalar_t> in,
                                  scalar_t* __restrict__ t) {  // [n_rays, n_samples]
  const int64_t ray = cuda::thread_index();
  if (ray >= in.n_rays) return;
  stratified_one_ray(in, t, ray);
}

at::Tensor stratified_samples_cuda(const at::Tensor& near, const at::Tensor& far,
                                   const std::optional<at::Tensor>& u, int64_t n_samples,
                                   bool lindisp, int64_t jitter) {
  const StratifiedCall call = prepare_stratified(near, far, u, n_samples, lindisp, jitter);
  at::Tensor t = allocate_stratified(call);
  AT_DISPATCH_FLOATING_TYPES(near.scalar_type(), "stratified_samples_cuda", [&] {
    cuda::launch_per_item(near, call.n_rays, stratified_kernel<scalar_t>,
                          stratified_inputs<scalar_t>(call), t.data_ptr<scalar_t>());
  });
  return t;
}

}  // namespace
}  // namespace fastfield

TORCH_LIBRARY_IMPL(fastfield, CUDA, m) {
  m.impl("stratified_samples", &fastfield::stratified_samples_cuda);
}
