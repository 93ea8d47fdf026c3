// Stratified samples along rays: the per-ray math of stratified_samples, run on CPU and CUDA by
// the driver of stratified_host.h.
//
// Grid, s_i = i / (n - 1) (s_0 = 0 when n == 1):
//   t_i = near (1 - s_i) + far s_i                     (linear in depth)
//   t_i = 1 / ((1 - s_i) / near + s_i / far)           (lindisp: linear in disparity)
// Jitter:
//   none:        t_i
//   per sample:  lower_i + (upper_i - lower_i) u_i, bins bounded by the midpoints of the grid:
//                lower_0 = t_0, upper_{n-1} = t_{n-1}  (nerf-pytorch render_rays, perturb > 0)
//   per ray:     t_i + (u - 1/2) (far - near) / n      (NeuS render: (u - 1/2) 2 / n for its
//                near/far = closest approach -/+ 1)
#pragma once

#include <cstdint>

#include "../common/enums.h"  // Jitter
#include "../common/host_device.h"

namespace fastfield {

template <typename scalar_t>
struct StratifiedInputs {
  int64_t n_rays;
  int64_t n_samples;
  const scalar_t* near;  // [n_rays]
  const scalar_t* far;   // [n_rays]
  const scalar_t* u;     // [n_rays, n_samples] (per sample), [n_rays] (per ray) or nullptr
  bool lindisp;
  Jitter jitter;
};

// The unjittered grid of one ray, linear in depth ...
template <typename scalar_t>
struct DepthGrid {
  scalar_t near, far, step;  // step = 1 / (n - 1)
  FF_HOST_DEVICE FF_INLINE scalar_t operator()(int i) const {
    const scalar_t s = static_cast<scalar_t>(i) * step;
    return near * (scalar_t(1) - s) + far * s;
  }
};

// ... or linear in disparity.
template <typename scalar_t>
struct DisparityGrid {
  scalar_t inv_near, inv_far, step;
  FF_HOST_DEVICE FF_INLINE scalar_t operator()(int i) const {
    const scalar_t s = static_cast<scalar_t>(i) * step;
    return scalar_t(1) / (inv_near * (scalar_t(1) - s) + inv_far * s);
  }
};

// Sample i of a ray's n. Every sample is computed from its own index (the bin edges re-evaluate
// the neighbouring grid values, which come out bitwise equal), so loops over it carry no
// dependency and vectorise (CPU), and a thread per sample computes it alone (CUDA). u_i is the
// sample's jitter (per sample only), shift the ray's (per ray; 0 otherwise).
template <typename scalar_t, typename Grid>
FF_HOST_DEVICE FF_INLINE scalar_t stratified_sample(const Grid& grid, int n, Jitter jitter,
                                                    scalar_t u_i, scalar_t shift, int i) {
  const scalar_t here = grid(i);
  if (jitter != Jitter::kPerSample) return here + shift;
  // The first bin starts at t_0, the last ends at t_{n-1}.
  const scalar_t lower = i == 0 ? here : scalar_t(0.5) * (grid(i - 1) + here);
  const scalar_t upper = i == n - 1 ? here : scalar_t(0.5) * (here + grid(i + 1));
  return lower + (upper - lower) * u_i;
}

template <typename scalar_t, typename Grid>
FF_HOST_DEVICE FF_INLINE void stratify(const Grid& grid, int n, Jitter jitter,
                                       const scalar_t* __restrict__ u,  // [n] (per sample)
                                       scalar_t shift,                  // per ray
                                       scalar_t* __restrict__ t) {      // [n]
  if (jitter == Jitter::kPerSample) {
    for (int i = 0; i < n; ++i) t[i] = stratified_sample(grid, n, jitter, u[i], shift, i);
  } else {
    for (int i = 0; i < n; ++i) t[i] = stratified_sample(grid, n, jitter, scalar_t(0), shift, i);
  }
}

// The constants of one ray: its bounds, the grid step, its shift and its jitter row.
template <typename scalar_t>
struct RaySpacing {
  scalar_t near, far, step, shift;
  const scalar_t* u;  // [n] (per sample) or nullptr
};

template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE RaySpacing<scalar_t> ray_spacing(const StratifiedInputs<scalar_t>& in,
                                                          int64_t ray) {
  const int n = static_cast<int>(in.n_samples);
  const scalar_t near = in.near[ray], far = in.far[ray];
  const scalar_t step = n > 1 ? scalar_t(1) / static_cast<scalar_t>(n - 1) : scalar_t(0);
  const scalar_t* u = in.jitter == Jitter::kPerSample ? in.u + ray * n : nullptr;
  const scalar_t shift = in.jitter == Jitter::kPerRay
                             ? (in.u[ray] - scalar_t(0.5)) * (far - near) / static_cast<scalar_t>(n)
                             : scalar_t(0);
  return {near, far, step, shift, u};
}

// The samples of one ray (the CPU: loops that vectorise).
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void stratified_one_ray(const StratifiedInputs<scalar_t>& in,
                                                 scalar_t* t,  // [n_rays, n_samples]
                                                 int64_t ray) {
  const int n = static_cast<int>(in.n_samples);
  const RaySpacing<scalar_t> r = ray_spacing(in, ray);
  scalar_t* out = t + ray * n;
  if (in.lindisp) {
    stratify(DisparityGrid<scalar_t>{scalar_t(1) / r.near, scalar_t(1) / r.far, r.step}, n,
             in.jitter, r.u, r.shift, out);
  } else {
    stratify(DepthGrid<scalar_t>{r.near, r.far, r.step}, n, in.jitter, r.u, r.shift, out);
  }
}

// Sample i of ray `ray` alone (CUDA: a thread per sample, so consecutive threads write
// consecutive samples).
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE scalar_t stratified_sample_of(const StratifiedInputs<scalar_t>& in,
                                                       int64_t ray, int i) {
  const int n = static_cast<int>(in.n_samples);
  const RaySpacing<scalar_t> r = ray_spacing(in, ray);
  const scalar_t u_i = r.u != nullptr ? r.u[i] : scalar_t(0);
  if (in.lindisp) {
    return stratified_sample(
        DisparityGrid<scalar_t>{scalar_t(1) / r.near, scalar_t(1) / r.far, r.step}, n, in.jitter,
        u_i, r.shift, i);
  }
  return stratified_sample(DepthGrid<scalar_t>{r.near, r.far, r.step}, n, in.jitter, u_i,
                           r.shift, i);
}

}  // namespace fastfield
