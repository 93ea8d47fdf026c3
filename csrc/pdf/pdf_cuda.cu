// CUDA driver of the pdf family: one thread per ray runs the shared per-ray walk or merge of
// pdf.h; neus_upsample computes its section alphas on the spot.
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "../common/cuda_launch.h"
#include "pdf_host.h"

namespace fastfield {
namespace {

template <typename scalar_t>
__global__ void sample_pdf_kernel(const PdfArgs<scalar_t> args) {
  const int64_t ray = cuda::thread_index();
  if (ray >= args.n_rays) return;
  sample_pdf_one_ray(args, ray);
}

template <typename scalar_t>
__global__ void merge_sorted_kernel(const MergeArgs<scalar_t> args) {
  const int64_t ray = cuda::thread_index();
  if (ray >= args.n_rays) return;
  merge_sorted_one_ray(args, ray);
}

template <typename scalar_t>
__global__ void neus_upsample_kernel(const NeusArgs<scalar_t> args) {
  const int64_t ray = cuda::thread_index();
  if (ray >= args.n_rays) return;
  neus_upsample_one_ray(args, neus_sections(args, ray, StdExp{}), ray);
}

at::Tensor sample_pdf_cuda(const at::Tensor& bins, const at::Tensor& weights,
                           const at::Tensor& u) {
  PdfCall call = prepare_sample_pdf(bins, weights, u);
  AT_DISPATCH_FLOATING_TYPES(bins.scalar_type(), "sample_pdf_cuda", [&] {
    cuda::launch_per_item(bins, call.n_rays, sample_pdf_kernel<scalar_t>, pdf_args<scalar_t>(call));
  });
  return call.out;
}

std::tuple<at::Tensor, at::Tensor> merge_sorted_cuda(const at::Tensor& a, const at::Tensor& b) {
  MergeCall call = prepare_merge_sorted(a, b);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "merge_sorted_cuda", [&] {
    cuda::launch_per_item(a, call.n_rays, merge_sorted_kernel<scalar_t>,
                          merge_args<scalar_t>(call));
  });
  return {call.merged, call.index};
}

at::Tensor neus_upsample_cuda(const at::Tensor& rays_o, const at::Tensor& rays_d,
                              const at::Tensor& t, const at::Tensor& sdf, const at::Tensor& u,
                              double inv_s) {
  NeusCall call = prepare_neus_upsample(rays_o, rays_d, t, sdf, u, inv_s);
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "neus_upsample_cuda", [&] {
    cuda::launch_per_item(t, call.n_rays, neus_upsample_kernel<scalar_t>,
                          neus_args<scalar_t>(call));
  });
  return call.out;
}

}  // namespace
}  // namespace fastfield

TORCH_LIBRARY_IMPL(fastfield, CUDA, m) {
  m.impl("sample_pdf", &fastfield::sample_pdf_cuda);
  m.impl("merge_sorted", &fastfield::merge_sorted_cuda);
  m.impl("neus_upsample", &fastfield::neus_upsample_cuda);
}
