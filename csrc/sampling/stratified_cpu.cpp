// CPU kernel of stratified_samples: the driver of stratified_host.h on the CPU launcher, one item
// per ray whose loops over the samples vectorise (for_each_vectorised). With the tile emulation
// switched on (tests), the CUDA kernel's one item per sample runs instead (tile_cpu.h).
#include <torch/library.h>

#include "../common/cpu_launch.h"
#include "../common/tile_cpu.h"
#include "stratified_host.h"

namespace fastfield {

template <>
struct StratifiedRays<CpuLauncher> {
  template <typename scalar_t>
  static void run(const at::Tensor& device_of, const StratifiedInputs<scalar_t>& in,
                  scalar_t* out, int64_t grain) {
    if (cpu::tile_emulation_width() != 0) {
      return cpu::run_emulated(
          [&] { StratifiedRays<CpuTileLauncher>::run(device_of, in, out, grain); });
    }
    CpuLauncher::for_each_vectorised(device_of, in.n_rays, grain,
                                     [=](int64_t ray) { stratified_one_ray(in, out, ray); });
  }
};

}  // namespace fastfield

TORCH_LIBRARY_IMPL(fastfield, CPU, m) {
  m.impl("stratified_samples", &fastfield::stratified_samples_driver<fastfield::CpuLauncher>);
}
