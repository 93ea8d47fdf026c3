// CPU driver of the pdf family: rays in parallel, each running the shared per-ray walk or merge
// of pdf.h. neus_upsample first fills a ray's section alphas in a vectorised bulk pass (the
// sigmoids dominate), then walks over them.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../common/fast_exp_cpu.h"
#include "pdf_host.h"

namespace fastfield {
namespace {

// Rays per parallel task: enough walk steps that a thread's start-up cost stays small.
int64_t rays_per_task(int64_t steps_per_ray) {
  constexpr int64_t kStepsPerTask = 8192;
  return std::max<int64_t>(1, kStepsPerTask / std::max<int64_t>(1, steps_per_ray));
}

template <typename Fn>
void for_each_ray(int64_t n_rays, int64_t steps_per_ray, const Fn& fn) {
  at::parallel_for(0, n_rays, rays_per_task(steps_per_ray), [&](int64_t begin, int64_t end) {
    for (int64_t ray = begin; ray < end; ++ray) fn(ray);
  });
}

at::Tensor sample_pdf_cpu(const at::Tensor& bins, const at::Tensor& weights, const at::Tensor& u) {
  PdfCall call = prepare_sample_pdf(bins, weights, u);
  AT_DISPATCH_FLOATING_TYPES(bins.scalar_type(), "sample_pdf_cpu", [&] {
    const auto args = pdf_args<scalar_t>(call);
    for_each_ray(call.n_rays, 2 * call.n_bins + call.n_samples,
                 [&](int64_t ray) { sample_pdf_one_ray(args, ray); });
  });
  return call.out;
}

std::tuple<at::Tensor, at::Tensor> merge_sorted_cpu(const at::Tensor& a, const at::Tensor& b) {
  MergeCall call = prepare_merge_sorted(a, b);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "merge_sorted_cpu", [&] {
    const auto args = merge_args<scalar_t>(call);
    for_each_ray(call.n_rays, call.na + call.nb,
                 [&](int64_t ray) { merge_sorted_one_ray(args, ray); });
  });
  return {call.merged, call.index};
}

// alpha[k] for the n_sections sections of one ray (the shared formula, with the polynomial exp).
template <typename scalar_t>
FF_CPU_MULTIVERSION void fill_neus_alpha(const NeusSections<scalar_t, cpu::FastExp>& sections,
                                         int64_t n_sections, scalar_t* __restrict__ alpha) {
  alpha[0] = sections.alpha(0, scalar_t(0));
  for (int64_t k = 1; k < n_sections; ++k) alpha[k] = sections.alpha(k, sections.slope(k - 1));
}

at::Tensor neus_upsample_cpu(const at::Tensor& rays_o, const at::Tensor& rays_d,
                             const at::Tensor& t, const at::Tensor& sdf, const at::Tensor& u,
                             double inv_s) {
  NeusCall call = prepare_neus_upsample(rays_o, rays_d, t, sdf, u, inv_s);
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "neus_upsample_cpu", [&] {
    const auto args = neus_args<scalar_t>(call);
    const int64_t n_sections = call.n - 1;
    // A section's alpha (two exps, three divisions) costs about as much as 8 walk steps.
    at::parallel_for(0, call.n_rays, rays_per_task(8 * n_sections + call.n_new),
                     [&](int64_t begin, int64_t end) {
                       std::vector<scalar_t> alpha(static_cast<size_t>(n_sections));
                       for (int64_t ray = begin; ray < end; ++ray) {
                         fill_neus_alpha(neus_sections(args, ray, cpu::FastExp{}), n_sections,
                                         alpha.data());
                         neus_upsample_one_ray(args, AlphaTable<scalar_t>{alpha.data()}, ray);
                       }
                     });
  });
  return call.out;
}

}  // namespace
}  // namespace fastfield

TORCH_LIBRARY_IMPL(fastfield, CPU, m) {
  m.impl("sample_pdf", &fastfield::sample_pdf_cpu);
  m.impl("merge_sorted", &fastfield::merge_sorted_cpu);
  m.impl("neus_upsample", &fastfield::neus_upsample_cpu);
}
