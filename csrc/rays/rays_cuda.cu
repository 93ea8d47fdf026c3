// CUDA kernels of the ray ops: the drivers of rays_host.h on the CUDA launcher (one thread per
// ray).
#include <torch/library.h>

#include "../common/cuda_launch.h"
#include "rays_host.h"

TORCH_LIBRARY_IMPL(fastfield, CUDA, m) {
  using fastfield::CudaLauncher;
  m.impl("generate_rays", &fastfield::generate_rays_driver<CudaLauncher>);
  m.impl("ndc_rays", &fastfield::ndc_rays_driver<CudaLauncher>);
  m.impl("near_far_sphere", &fastfield::near_far_sphere_driver<CudaLauncher>);
  m.impl("near_far_aabb", &fastfield::near_far_aabb_driver<CudaLauncher>);
}
