// CPU kernels of composite_density: the drivers of density_host.h on the CPU launcher, whose
// rays first get exp(-sigma delta) from a vectorised bulk pass over a block of rays, then run
// the sequential per-ray scans of density.h over the block. With the tile emulation switched on
// (tests), the CUDA kernels' tile code runs instead (tile_cpu.h).
#include <torch/library.h>

#include <vector>

#include "../common/cpu_launch.h"
#include "../common/fast_exp_cpu.h"
#include "../common/tile_cpu.h"
#include "density_host.h"

namespace fastfield {
namespace {

template <typename scalar_t>
FF_CPU_MULTIVERSION void fill_decay(const scalar_t* __restrict__ sigma,
                                    const scalar_t* __restrict__ delta,
                                    scalar_t* __restrict__ decay, int64_t n) {
  for (int64_t i = 0; i < n; ++i) decay[i] = density_decay(sigma[i], delta[i], cpu::FastExp{});
}

// Runs body(ray, decay, scratch, first) for every ray: decay is a DecayTable over the ray's
// block and scratch[i - first] a free in-cache entry for each sample of the block.
template <typename scalar_t, typename Body>
void for_each_ray_with_decay(const DensityInputs<scalar_t>& in, const Body& body) {
  cpu::for_each_ray_block<scalar_t>(
      in.n_rays, in.offsets, in.per_ray, in.n_samples,
      [&](int64_t first, int64_t last, SampleRange span, std::vector<scalar_t>& buffer) {
        const int64_t n = span.end - span.begin;
        buffer.resize(static_cast<size_t>(2 * n));
        fill_decay(in.sigma + span.begin, in.delta + span.begin, buffer.data(), n);
        const DecayTable<scalar_t> decay{buffer.data(), span.begin};
        for (int64_t ray = first; ray < last; ++ray) {
          body(ray, decay, buffer.data() + n, span.begin);
        }
      });
}

}  // namespace

template <>
struct DensityRays<CpuLauncher> {
  static bool fills_unowned() { return cpu::tile_emulation_width() != 0; }

  template <typename scalar_t>
  static void forward(const at::Tensor& device_of, const DensityInputs<scalar_t>& in,
                      const DensityOutputs<scalar_t>& out) {
    if (cpu::tile_emulation_width() != 0) {
      return cpu::run_emulated([&] { DensityRays<CpuTileLauncher>::forward(device_of, in, out); });
    }
    for_each_ray_with_decay(in, [&](int64_t ray, const DecayTable<scalar_t>& decay, scalar_t*,
                                    int64_t) { density_forward_one_ray(in, decay, out, ray); });
  }

  template <typename scalar_t>
  static void backward(const at::Tensor& device_of, const DensityInputs<scalar_t>& in,
                       const DensityGrads<scalar_t>& grads) {
    if (cpu::tile_emulation_width() != 0) {
      return cpu::run_emulated(
          [&] { DensityRays<CpuTileLauncher>::backward(device_of, in, grads); });
    }
    for_each_ray_with_decay(in, [&](int64_t ray, const DecayTable<scalar_t>& decay,
                                    scalar_t* scratch, int64_t first) {
      density_backward_one_ray(in, decay, grads, ray, scratch, first);
    });
  }
};

}  // namespace fastfield

TORCH_LIBRARY_IMPL(fastfield, CPU, m) {
  using fastfield::CpuLauncher;
  m.impl("composite_density_fwd", &fastfield::composite_density_fwd_driver<CpuLauncher>);
  m.impl("composite_density_bwd", &fastfield::composite_density_bwd_driver<CpuLauncher>);
}
