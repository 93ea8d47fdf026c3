// CUDA kernels of composite_sdf: the drivers of sdf_host.h on the CUDA launcher (one thread per
// ray, neus_alpha evaluated on the spot).
#include <torch/library.h>

#include "../common/cuda_launch.h"
#include "sdf_host.h"

TORCH_LIBRARY_IMPL(fastfield, CUDA, m) {
  using fastfield::CudaLauncher;
  m.impl("composite_sdf_fwd", &fastfield::composite_sdf_fwd_driver<CudaLauncher>);
  m.impl("composite_sdf_bwd", &fastfield::composite_sdf_bwd_driver<CudaLauncher>);
}
