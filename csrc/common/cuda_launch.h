// Launch hygiene shared by every CUDA driver: device guard, current stream, one thread per item,
// a launch check after every kernel. Only narrow c10 headers (the CUDA toolkit here has no
// cuBLAS/cuSPARSE headers, which ATen/cuda/CUDAContext.h pulls in).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cstdint>

namespace fastfield {
namespace cuda {

constexpr int kThreadsPerBlock = 128;

// Launches kernel<<<ceil(n / kThreadsPerBlock), kThreadsPerBlock>>>(args...) on the current stream
// of `device_of`'s device; nothing happens when n == 0.
template <typename Kernel, typename... Args>
void launch_per_item(const at::Tensor& device_of, int64_t n, Kernel kernel, Args... args) {
  if (n == 0) return;
  const c10::cuda::CUDAGuard guard(device_of.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device_of.get_device()).stream();
  const int64_t blocks = (n + kThreadsPerBlock - 1) / kThreadsPerBlock;
  kernel<<<static_cast<unsigned int>(blocks), kThreadsPerBlock, 0, stream>>>(args...);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Global index of this thread in a 1-D launch, as int64 so that large launches cannot overflow.
__device__ inline int64_t thread_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

}  // namespace cuda
}  // namespace fastfield
