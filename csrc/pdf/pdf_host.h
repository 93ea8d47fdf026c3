// Host-side half of the pdf drivers, shared by pdf_cpu.cpp and pdf_cuda.cu: argument checks,
// contiguous copies, output allocation and the raw-pointer views that the per-ray functions in
// pdf.h consume.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

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

}  // namespace fastfield
