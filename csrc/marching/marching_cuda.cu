// CUDA kernels of the marching ops: the drivers of marching_host.h on the CUDA launcher (one
// thread per ray; the walk rounds each operation with __fmul_rn and friends, so it matches the
// CPU kernels and the reference twin bit for bit).
#include <torch/library.h>

#include "../common/cuda_launch.h"
#include "marching_host.h"

TORCH_LIBRARY_IMPL(fastfield, CUDA, m) {
  using fastfield::CudaLauncher;
  m.impl("march_rays_count", &fastfield::march_rays_count_driver<CudaLauncher>);
  m.impl("march_rays_fill", &fastfield::march_rays_fill_driver<CudaLauncher>);
}
