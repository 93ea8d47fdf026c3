// CPU kernels of the marching ops: the drivers of marching_host.h on the CPU launcher.
//
// The walk must round every product and sum on its own, as the reference twin does (see
// marching.h). GCC and Clang contract a * b + c into an FMA where the target has one (an
// -march with FMA, or AArch64); contraction is switched off for this file, which holds nothing
// but the walk's instantiations.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <torch/library.h>

#include "../common/cpu_launch.h"
#include "marching_host.h"

TORCH_LIBRARY_IMPL(fastfield, CPU, m) {
  using fastfield::CpuLauncher;
  m.impl("march_rays_count", &fastfield::march_rays_count_driver<CpuLauncher>);
  m.impl("march_rays_fill", &fastfield::march_rays_fill_driver<CpuLauncher>);
}
