// CPU kernels of the pdf family: the drivers of pdf_host.h on the CPU launcher. sample_pdf
// inverts the CDF from per-ray tables in AVX-512 passes where the CPU has them
// (invert_cdf_cpu.h) and walks otherwise; neus_upsample first fills a ray's section alphas in a
// vectorised bulk pass (the sigmoids dominate), then walks over them; merge_sorted walks. With
// the tile emulation switched on (tests), the CUDA kernels' tile code runs instead
// (tile_cpu.h).
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "../common/cpu_launch.h"
#include "../common/fast_exp_cpu.h"
#include "../common/tile_cpu.h"
#include "invert_cdf_cpu.h"
#include "pdf_host.h"

namespace fastfield {
namespace {

// alpha[k] for the n_sections sections of one ray (the shared formula, with the polynomial exp).
template <typename scalar_t>
FF_CPU_MULTIVERSION void fill_neus_alpha(const NeusSections<scalar_t, cpu::FastExp>& sections,
                                         int64_t n_sections, scalar_t* __restrict__ alpha) {
  alpha[0] = sections.alpha(0, scalar_t(0));
  for (int64_t k = 1; k < n_sections; ++k) alpha[k] = sections.alpha(k, sections.slope(k - 1));
}

}  // namespace

template <>
struct SamplePdfRays<CpuLauncher> {
  template <typename scalar_t>
  static void run(const at::Tensor& device_of, const PdfArgs<scalar_t>& args, int64_t grain) {
    if (cpu::tile_emulation_width() != 0) {
      return cpu::run_emulated(
          [&] { SamplePdfRays<CpuTileLauncher>::run(device_of, args, grain); });
    }
#ifdef FF_TABLE_INVERSION
    if (cpu::table_inversion_supported() && args.n_bins <= cpu::kMaxTableBins) {
      const bool u_ascending =
          args.u_stride != 0 || cpu::ascending_without_nan(args.u, args.n_samples);
      cpu::parallel_for(0, args.n_rays, grain, [&](int64_t begin, int64_t end) {
        cpu::sample_pdf_rays(args, begin, end, u_ascending);
      });
      return;
    }
#endif
    CpuLauncher::for_each(device_of, args.n_rays, grain,
                          [=](int64_t ray) { sample_pdf_one_ray(args, ray); });
  }
};

template <>
struct NeusUpsampleRays<CpuLauncher> {
  template <typename scalar_t>
  static void run(const at::Tensor& device_of, const NeusArgs<scalar_t>& args, int64_t grain) {
    if (cpu::tile_emulation_width() != 0) {
      return cpu::run_emulated(
          [&] { NeusUpsampleRays<CpuTileLauncher>::run(device_of, args, grain); });
    }
    const int64_t n_sections = args.n - 1;
    cpu::parallel_for(0, args.n_rays, grain, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> alpha(static_cast<size_t>(n_sections));
      for (int64_t ray = begin; ray < end; ++ray) {
        fill_neus_alpha(neus_sections(args, ray, cpu::FastExp{}), n_sections, alpha.data());
        neus_upsample_one_ray(args, AlphaTable<scalar_t>{alpha.data()}, ray);
      }
    });
  }
};

template <>
struct MergeRays<CpuLauncher> {
  template <typename scalar_t>
  static void run(const at::Tensor& device_of, const MergeArgs<scalar_t>& args, int64_t grain) {
    if (cpu::tile_emulation_width() != 0) {
      return cpu::run_emulated([&] { MergeRays<CpuTileLauncher>::run(device_of, args, grain); });
    }
    CpuLauncher::for_each(device_of, args.n_rays, grain,
                          [=](int64_t ray) { merge_sorted_one_ray(args, ray); });
  }
};

}  // namespace fastfield

TORCH_LIBRARY_IMPL(fastfield, CPU, m) {
  using fastfield::CpuLauncher;
  m.impl("sample_pdf", &fastfield::sample_pdf_driver<CpuLauncher>);
  m.impl("merge_sorted", &fastfield::merge_sorted_driver<CpuLauncher>);
  m.impl("neus_upsample", &fastfield::neus_upsample_driver<CpuLauncher>);
}
