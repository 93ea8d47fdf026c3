#include "pdf_host.h"

#include <c10/util/Exception.h>

#include "../common/checks.h"

namespace fastfield {
namespace {

// Quantiles u: [n_samples] shared by all rays or [n_rays, n_samples], ascending along the row.
// Returns the contiguous u; sets n_samples and the row stride (0 when shared).
at::Tensor checked_quantiles(const char* op, const at::Tensor& u, int64_t n_rays,
                             const at::Tensor& like, const char* like_name, int64_t& n_samples,
                             int64_t& u_stride) {
  check_like(op, u, "u", like, like_name);
  if (u.dim() == 1) {
    n_samples = u.size(0);
    u_stride = 0;
  } else {
    check_sizes(op, u, "u", {n_rays, -1}, "[n_samples] or [n_rays, n_samples]");
    n_samples = u.size(1);
    u_stride = n_samples;
  }
  at::Tensor contiguous = u.contiguous();
  check_rows_ascending(op, contiguous, "u");
  return contiguous;
}

}  // namespace

PdfCall prepare_sample_pdf(const at::Tensor& bins, const at::Tensor& weights, const at::Tensor& u) {
  const char* op = "sample_pdf";
  check_float(op, bins, "bins");
  check_like(op, weights, "weights", bins, "bins");
  check_sizes(op, bins, "bins", {-1, -1}, "[n_rays, n_bins + 1]");
  TORCH_CHECK_VALUE(bins.size(1) >= 1, op, ": bins must be [n_rays, n_bins + 1] with at least ",
                    "one edge, got ", bins.sizes());
  PdfCall c;
  c.n_rays = bins.size(0);
  c.n_bins = bins.size(1) - 1;
  check_sizes(op, weights, "weights", {c.n_rays, c.n_bins}, "[n_rays, n_bins]");
  c.u = checked_quantiles(op, u, c.n_rays, bins, "bins", c.n_samples, c.u_stride);
  c.bins = bins.contiguous();
  c.weights = weights.contiguous();
  c.out = bins.new_empty({c.n_rays, c.n_samples});
  return c;
}

MergeCall prepare_merge_sorted(const at::Tensor& a, const at::Tensor& b) {
  const char* op = "merge_sorted";
  check_float(op, a, "a");
  check_like(op, b, "b", a, "a");
  check_sizes(op, a, "a", {-1, -1}, "[n_rays, na]");
  MergeCall c;
  c.n_rays = a.size(0);
  check_sizes(op, b, "b", {c.n_rays, -1}, "[n_rays, nb]");
  c.na = a.size(1);
  c.nb = b.size(1);
  c.a = a.contiguous();
  c.b = b.contiguous();
  check_rows_ascending(op, c.a, "a");
  check_rows_ascending(op, c.b, "b");
  c.merged = a.new_empty({c.n_rays, c.na + c.nb});
  c.index = a.new_empty({c.n_rays, c.na + c.nb}, a.options().dtype(at::kLong));
  return c;
}

NeusCall prepare_neus_upsample(const at::Tensor& rays_o, const at::Tensor& rays_d,
                               const at::Tensor& t, const at::Tensor& sdf, const at::Tensor& u,
                               double inv_s) {
  const char* op = "neus_upsample";
  check_float(op, t, "t");
  check_like(op, rays_o, "rays_o", t, "t");
  check_like(op, rays_d, "rays_d", t, "t");
  check_like(op, sdf, "sdf", t, "t");
  check_sizes(op, t, "t", {-1, -1}, "[n_rays, n]");
  NeusCall c;
  c.n_rays = t.size(0);
  c.n = t.size(1);
  TORCH_CHECK_VALUE(c.n >= 2, op, ": t must hold n >= 2 samples per ray (n - 1 sections), got ",
                    t.sizes());
  check_sizes(op, sdf, "sdf", {c.n_rays, c.n}, "[n_rays, n]");
  check_sizes(op, rays_o, "rays_o", {c.n_rays, 3}, "[n_rays, 3]");
  check_sizes(op, rays_d, "rays_d", {c.n_rays, 3}, "[n_rays, 3]");
  c.u = checked_quantiles(op, u, c.n_rays, t, "t", c.n_new, c.u_stride);
  c.rays_o = rays_o.contiguous();
  c.rays_d = rays_d.contiguous();
  c.t = t.contiguous();
  c.sdf = sdf.contiguous();
  c.inv_s = inv_s;
  c.out = t.new_empty({c.n_rays, c.n_new});
  return c;
}

}  // namespace fastfield
