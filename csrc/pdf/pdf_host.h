// The drivers of the pdf family, written once over a launcher (../common/launch.h) and
// instantiated by pdf_cpu.cpp and pdf_cuda.cu: argument checks, contiguous copies, output
// allocation, the raw-pointer views that the per-ray functions of pdf.h consume, and the run of
// those functions over the rays (tiles on CUDA, the CPU's own structure there).
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

// The tile functions of pdf.h as functors for Launcher::for_each_tile (launch.h). The inverse
// CDF tiles get a scratch table of [n_bins + 1] entries per ray.
template <typename scalar_t>
struct SamplePdfTiles {
  PdfArgs<scalar_t> args;
  scalar_t* tables;  // [n_rays, n_bins + 1]
  template <class Tile>
  FF_HOST_DEVICE void operator()(const Tile& tile, int64_t ray) const {
    sample_pdf_tile(tile, args, ray, tables + ray * (args.n_bins + 1));
  }
};

template <typename scalar_t>
struct NeusUpsampleTiles {
  NeusArgs<scalar_t> args;
  scalar_t* tables;  // [n_rays, n]
  template <class Tile>
  FF_HOST_DEVICE void operator()(const Tile& tile, int64_t ray) const {
    neus_upsample_tile(tile, args, neus_sections(args, ray, StdExp{}), ray,
                       tables + ray * args.n);
  }
};

template <typename scalar_t>
struct MergeTiles {
  MergeArgs<scalar_t> args;
  template <class Tile>
  FF_HOST_DEVICE void operator()(const Tile& tile, int64_t ray) const {
    merge_sorted_tile(tile, args, ray);
  }
};

// How each op of the family runs its rays: run(device_of, args, grain) writes the outputs in
// args. These general forms run a tile of lanes per ray (Launcher::for_each_tile: the CUDA
// kernels, and the CPU's tile emulation; `grain` is a CPU matter). pdf_cpu.cpp specialises them
// for CpuLauncher: sample_pdf inverts from per-ray tables in AVX-512 passes or walks,
// neus_upsample fills each ray's alphas in a vectorised bulk pass and walks over them,
// merge_sorted walks.
template <class Launcher>
struct SamplePdfRays {
  template <typename scalar_t>
  static void run(const at::Tensor& device_of, const PdfArgs<scalar_t>& args, int64_t /*grain*/) {
    at::Tensor tables = device_of.new_empty({args.n_rays, args.n_bins + 1});
    Launcher::for_each_tile(device_of, args.n_rays, args.n_bins + args.n_samples,
                            SamplePdfTiles<scalar_t>{args, tables.data_ptr<scalar_t>()});
  }
};

template <class Launcher>
struct NeusUpsampleRays {
  template <typename scalar_t>
  static void run(const at::Tensor& device_of, const NeusArgs<scalar_t>& args, int64_t /*grain*/) {
    at::Tensor tables = device_of.new_empty({args.n_rays, args.n});
    Launcher::for_each_tile(device_of, args.n_rays, args.n + args.n_new,
                            NeusUpsampleTiles<scalar_t>{args, tables.data_ptr<scalar_t>()});
  }
};

template <class Launcher>
struct MergeRays {
  template <typename scalar_t>
  static void run(const at::Tensor& device_of, const MergeArgs<scalar_t>& args, int64_t /*grain*/) {
    Launcher::for_each_tile(device_of, args.n_rays, args.na + args.nb, MergeTiles<scalar_t>{args});
  }
};

template <>
struct SamplePdfRays<CpuLauncher>;  // pdf_cpu.cpp
template <>
struct NeusUpsampleRays<CpuLauncher>;  // pdf_cpu.cpp
template <>
struct MergeRays<CpuLauncher>;  // pdf_cpu.cpp

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
    MergeRays<Launcher>::run(a, merge_args<scalar_t>(call),
                             items_per_task(call.na + call.nb, kStepsPerTask));
  });
  return {call.merged, call.index};
}

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
