// The drivers of the pdf family, written once over a launcher (../common/launch.h) and
// instantiated by pdf_cpu.cpp and pdf_cuda.cu: argument checks, contiguous copies, output
// allocation, the raw-pointer views that the per-ray functions of pdf.h consume, and one launch
// of such a function per ray.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <tuple>

#include "../common/host_device.h"
#include "../common/launch.h"
#include "../common/math.h"
#include "pdf.h"

namespace fastfield {

// Checked, contiguous inputs of one sample_pdf call, and its output [n_rays, n_samples].
struct PdfCall {
  at::Tensor bins, weights, u, out;
  int64_t n_rays = 0, n_bins = 0, n_samples = 0, u_stride = 0;
};
PdfCall prepare_sample_pdf(const at::Tensor& bins, const at::Tensor& weights, const at::Tensor& u);

// Checked, contiguous inputs of one merge_sorted call, and its outputs.
struct MergeCall {
  at::Tensor a, b, merged, index;
  int64_t n_rays = 0, na = 0, nb = 0;
};
MergeCall prepare_merge_sorted(const at::Tensor& a, const at::Tensor& b);

// Checked, contiguous inputs of one neus_upsample call, and its output [n_rays, n_new].
struct NeusCall {
  at::Tensor rays_o, rays_d, t, sdf, u, out;
  int64_t n_rays = 0, n = 0, n_new = 0, u_stride = 0;
  double inv_s = 0;
};
NeusCall prepare_neus_upsample(const at::Tensor& rays_o, const at::Tensor& rays_d,
                               const at::Tensor& t, const at::Tensor& sdf, const at::Tensor& u,
                               double inv_s);

template <typename scalar_t>
PdfArgs<scalar_t> pdf_args(PdfCall& c) {
  return {c.n_rays, c.n_bins, c.n_samples, c.u_stride, c.bins.data_ptr<scalar_t>(),
          c.weights.data_ptr<scalar_t>(), c.u.data_ptr<scalar_t>(), c.out.data_ptr<scalar_t>()};
}

template <typename scalar_t>
MergeArgs<scalar_t> merge_args(MergeCall& c) {
  return {c.n_rays, c.na, c.nb, c.a.data_ptr<scalar_t>(), c.b.data_ptr<scalar_t>(),
          c.merged.data_ptr<scalar_t>(), c.index.data_ptr<int64_t>()};
}

template <typename scalar_t>
NeusArgs<scalar_t> neus_args(NeusCall& c) {
  return {c.n_rays,
          c.n,
          c.n_new,
          c.u_stride,
          c.rays_o.data_ptr<scalar_t>(),
          c.rays_d.data_ptr<scalar_t>(),
          c.t.data_ptr<scalar_t>(),
          c.sdf.data_ptr<scalar_t>(),
          c.u.data_ptr<scalar_t>(),
          static_cast<scalar_t>(c.inv_s),
          c.out.data_ptr<scalar_t>()};
}

// Walk steps per CPU task: enough that a thread's start-up cost stays small.
constexpr int64_t kStepsPerTask = 8192;

// How sample_pdf runs its rays: run(device_of, args, grain) writes args.out. This general form
// walks each ray (the CUDA kernel); pdf_cpu.cpp specialises it for CpuLauncher with the
// table-based inversion of invert_cdf_cpu.h, which computes the same samples.
template <class Launcher, typename scalar_t>
void walk_sample_pdf_rays(const at::Tensor& device_of, const PdfArgs<scalar_t>& args,
                          int64_t grain) {
  Launcher::for_each(device_of, args.n_rays, grain,
                     [=] FF_HOST_DEVICE(int64_t ray) { sample_pdf_one_ray(args, ray); });
}

template <class Launcher>
struct SamplePdfRays {
  template <typename scalar_t>
  static void run(const at::Tensor& device_of, const PdfArgs<scalar_t>& args, int64_t grain) {
    walk_sample_pdf_rays<Launcher>(device_of, args, grain);
  }
};

template <>
struct SamplePdfRays<CpuLauncher>;  // pdf_cpu.cpp

template <class Launcher>
at::Tensor sample_pdf_driver(const at::Tensor& bins, const at::Tensor& weights,
                             const at::Tensor& u) {
  PdfCall call = prepare_sample_pdf(bins, weights, u);
  AT_DISPATCH_FLOATING_TYPES(bins.scalar_type(), "sample_pdf", [&] {
    const int64_t grain = items_per_task(2 * call.n_bins + call.n_samples, kStepsPerTask);
    SamplePdfRays<Launcher>::run(bins, pdf_args<scalar_t>(call), grain);
  });
  return call.out;
}

template <class Launcher>
std::tuple<at::Tensor, at::Tensor> merge_sorted_driver(const at::Tensor& a, const at::Tensor& b) {
  MergeCall call = prepare_merge_sorted(a, b);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "merge_sorted", [&] {
    const auto args = merge_args<scalar_t>(call);
    Launcher::for_each(a, call.n_rays, items_per_task(call.na + call.nb, kStepsPerTask),
                       [=] FF_HOST_DEVICE(int64_t ray) { merge_sorted_one_ray(args, ray); });
  });
  return {call.merged, call.index};
}

// How neus_upsample runs its rays: run(device_of, args, grain) writes args.out. This general
// form runs one item per ray that evaluates its section alphas on the spot as it walks (the
// CUDA kernel). pdf_cpu.cpp specialises it for CpuLauncher: a vectorised bulk pass fills each
// ray's alphas first, then the same walk reads them.
template <class Launcher>
struct NeusUpsampleRays {
  template <typename scalar_t>
  static void run(const at::Tensor& device_of, const NeusArgs<scalar_t>& args, int64_t grain) {
    Launcher::for_each(device_of, args.n_rays, grain, [=] FF_HOST_DEVICE(int64_t ray) {
      neus_upsample_one_ray(args, neus_sections(args, ray, StdExp{}), ray);
    });
  }
};

template <>
struct NeusUpsampleRays<CpuLauncher>;  // pdf_cpu.cpp

template <class Launcher>
at::Tensor neus_upsample_driver(const at::Tensor& rays_o, const at::Tensor& rays_d,
                                const at::Tensor& t, const at::Tensor& sdf, const at::Tensor& u,
                                double inv_s) {
  NeusCall call = prepare_neus_upsample(rays_o, rays_d, t, sdf, u, inv_s);
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "neus_upsample", [&] {
    // A section's alpha (two exps, three divisions) costs about as much as 8 walk steps.
    const int64_t grain = items_per_task(8 * (call.n - 1) + call.n_new, kStepsPerTask);
    NeusUpsampleRays<Launcher>::run(t, neus_args<scalar_t>(call), grain);
  });
  return call.out;
}

}  // namespace fastfield
