// CPU kernels of the ray ops: the drivers of rays_host.h on the CPU launcher.
#include <torch/library.h>

#include "../common/cpu_launch.h"
#include "rays_host.h"

TORCH_LIBRARY_IMPL(fastfield, CPU, m) {
  using fastfield::CpuLauncher;
  m.impl("generate_rays", &fastfield::generate_rays_driver<CpuLauncher>);
  m.impl("ndc_rays", &fastfield::ndc_rays_driver<CpuLauncher>);
  m.impl("near_far_sphere", &fastfield::near_far_sphere_driver<CpuLauncher>);
  m.impl("near_far_aabb", &fastfield::near_far_aabb_driver<CpuLauncher>);
}
