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

// The samples of one ray. Every sample is computed from its own index (the bin edges re-evaluate
// the neighbouring grid values, which come out bitwise equal), so the loops carry no dependency
// and the CPU driver's compiler vectorises them. Sample indices are int: n <= INT32_MAX.
template <typename scalar_t, typename Grid>
FF_HOST_DEVICE FF_INLINE void stratify(const Grid& grid, int n, Jitter jitter,
                                       const scalar_t* __restrict__ u,  // [n] (per sample)
                                       scalar_t shift,                  // per ray
                                       scalar_t* __restrict__ t) {      // [n]
  if (jitter == Jitter::kPerSample) {
    const auto sample = [&](int i, scalar_t lower, scalar_t upper) {
      t[i] = lower + (upper - lower) * u[i];
    };
    for (int i = 0; i < n; ++i) {
      const scalar_t here = grid(i);
      sample(i, scalar_t(0.5) * (grid(i - 1) + here), scalar_t(0.5) * (here + grid(i + 1)));
    }
    // The first bin starts at t_0, the last ends at t_{n-1} (overwriting the loop's values).
    const scalar_t first = grid(0), last = grid(n - 1);
    sample(0, first, n > 1 ? scalar_t(0.5) * (first + grid(1)) : first);
    if (n > 1) sample(n - 1, scalar_t(0.5) * (grid(n - 2) + last), last);
  } else {
    for (int i = 0; i < n; ++i) t[i] = grid(i) + shift;
  }
}

template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void stratified_one_ray(const StratifiedInputs<scalar_t>& in,
                                                 scalar_t* t,  // [n_rays, n_samples]
                                                 int64_t ray) {
  const int n = static_cast<int>(in.n_samples);
  const scalar_t near = in.near[ray], far = in.far[ray];
  const scalar_t step = n > 1 ? scalar_t(1) / static_cast<scalar_t>(n - 1) : scalar_t(0);
  const scalar_t* u = in.jitter == Jitter::kPerSample ? in.u + ray * n : nullptr;
  const scalar_t shift = in.jitter == Jitter::kPerRay
                             ? (in.u[ray] - scalar_t(0.5)) * (far - near) / static_cast<scalar_t>(n)
                             : scalar_t(0);
  scalar_t* out = t + ray * n;
  if (in.lindisp) {
    stratify(DisparityGrid<scalar_t>{scalar_t(1) / near, scalar_t(1) / far, step}, n, in.jitter,
             u, shift, out);
  } else {
    stratify(DepthGrid<scalar_t>{near, far, step}, n, in.jitter, u, shift, out);
  }
}

}  // namespace fastfield
