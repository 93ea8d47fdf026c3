// The CUDA launcher (see launch.h): one thread per item (for_each) or one tile of warp lanes per
// item (for_each_tile, tile_cuda.cuh), with the launch hygiene of every CUDA driver -- device
// guard, current stream, nothing launched for n == 0, a launch check after the kernel. Only for
// .cu files. Only narrow c10 headers (the CUDA toolkit here has no
// cuBLAS/cuSPARSE headers, which ATen/cuda/CUDAContext.h pulls in).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cstdint>

#include "launch.h"
#include "tile_cuda.cuh"

namespace fastfield {
namespace cuda {

constexpr int kThreadsPerBlock = 128;

// fn(i) in thread i of a 1-D launch; the index is int64 so that large launches cannot overflow.
template <typename Fn>
__global__ void apply_per_item(int64_t n, Fn fn) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) fn(i);
}

// fn(tile, item) for the tile of W lanes that item `item` maps to: tiles are aligned groups of W
// consecutive threads, so a block holds kThreadsPerBlock / W items. The bounds check is the same
// for every lane of a tile, as the tile's collectives require. The launch bounds name one block
// per SM as the minimum: with the block size alone, ptxas squeezes kernels that need a few more
// than 32 registers into 32 to fit 8 blocks, and spills (measured: DensityForwardTiles<float>).
template <int W, typename Fn>
__global__ void __launch_bounds__(tile::kThreadsPerBlock, 1) apply_per_tile(int64_t n, Fn fn) {
  const int64_t item = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / W;
  if (item >= n) return;
  const WarpTile<W> tile;
  fn(tile, item);
}

template <int W, typename Fn>
void launch_tiles(cudaStream_t stream, int64_t n, const Fn& fn) {
  constexpr int64_t kItemsPerBlock = tile::kThreadsPerBlock / W;
  const int64_t blocks = (n + kItemsPerBlock - 1) / kItemsPerBlock;
  apply_per_tile<W><<<static_cast<unsigned int>(blocks), tile::kThreadsPerBlock, 0, stream>>>(n,
                                                                                              fn);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
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

  // fn(tile, item) for every item in [0, n) on a tile of tile::width_for(samples_per_item)
  // lanes. fn is a functor with a `template <class Tile> __host__ __device__ void
  // operator()(const Tile&, int64_t) const`, copied to the device (small POD members only).
  template <typename Fn>
  static void for_each_tile(const at::Tensor& device_of, int64_t n, int64_t samples_per_item,
                            const Fn& fn) {
    if (n == 0) return;
    const c10::cuda::CUDAGuard guard(device_of.device());
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device_of.get_device()).stream();
    if (tile::width_for(samples_per_item) == tile::kWide) {
      cuda::launch_tiles<tile::kWide>(stream, n, fn);
    } else {
      cuda::launch_tiles<tile::kNarrow>(stream, n, fn);
    }
  }

  // Vectorisation is a CPU matter: one thread per item as for_each.
  template <typename Fn>
  static void for_each_vectorised(const at::Tensor& device_of, int64_t n, int64_t grain,
                                  const Fn& fn) {
    for_each(device_of, n, grain, fn);
  }
};

}  // namespace fastfield
