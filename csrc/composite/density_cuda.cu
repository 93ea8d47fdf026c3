// CUDA kernels of composite_density: the drivers of density_host.h on the CUDA launcher (one
// thread per ray, exp(-sigma delta) computed on the spot).
#include <torch/library.h>

#include "../common/cuda_launch.h"
#include "density_host.h"

TORCH_LIBRARY_IMPL(fastfield, CUDA, m) {
  using fastfield::CudaLauncher;
  m.impl("composite_density_fwd", &fastfield::composite_density_fwd_driver<CudaLauncher>);
  m.impl("composite_density_bwd", &fastfield::composite_density_bwd_driver<CudaLauncher>);
}
