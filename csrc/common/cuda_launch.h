// The CUDA launcher (see launch.h): one thread per item, with the launch hygiene of every CUDA
// driver -- device guard, current stream, nothing launched for n == 0, a launch check after the
// kernel. Only for .cu files. Only narrow c10 headers (the CUDA toolkit here has no
// cuBLAS/cuSPARSE headers, which ATen/cuda/CUDAContext.h pulls in).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cstdint>

#include "launch.h"

namespace fastfield {
namespace cuda {

constexpr int kThreadsPerBlock = 128;

// fn(i) in thread i of a 1-D launch; the index is int64 so that large launches cannot overflow.
template <typename Fn>
__global__ void apply_per_item(int64_t n, Fn fn) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) fn(i);
}

}  // namespace cuda

struct CudaLauncher {
  template <typename Fn>
  static void for_each(const at::Tensor& device_of, int64_t n, int64_t /*grain*/, const Fn& fn) {
    if (n == 0) return;
    const c10::cuda::CUDAGuard guard(device_of.device());
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device_of.get_device()).stream();
    const int64_t blocks = (n + cuda::kThreadsPerBlock - 1) / cuda::kThreadsPerBlock;
    cuda::apply_per_item<<<static_cast<unsigned int>(blocks), cuda::kThreadsPerBlock, 0, stream>>>(
        n, fn);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

  // Vectorisation is a CPU matter: one thread per item as for_each.
  template <typename Fn>
  static void for_each_vectorised(const at::Tensor& device_of, int64_t n, int64_t grain,
                                  const Fn& fn) {
    for_each(device_of, n, grain, fn);
  }
};

}  // namespace fastfield
