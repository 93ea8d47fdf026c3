// Ray bounds: the per-ray math of near_far_sphere and near_far_aabb, run on CPU and CUDA by the
// drivers of rays_host.h. Ray x(t) = o + t d, d not necessarily unit.
//
// Sphere of radius r at the origin. Closest approach t_mid = -(o.d)/(d.d), p = o + t_mid d
// (|p|^2 taken directly rather than as o.o - (o.d)^2/(d.d), which cancels for distant origins).
//   NeuS:  near = t_mid - r, far = t_mid + r, hit = |p| <= r   (NeuS's near_far_from_sphere; in
//          units of t, so the interval is the sphere's diameter only for unit directions)
//   exact: h = sqrt((r^2 - |p|^2) / (d.d)), far = t_mid + h, near = max(t_mid - h, 0),
//          hit = |p| <= r and far >= 0; otherwise near = far = max(t_mid, 0)
// Box (lo, hi), slab test over the closed box: per axis with d_k != 0 the ray is inside for t
// between (lo_k - o_k) (1/d_k) and (hi_k - o_k) (1/d_k); with d_k == 0 for every t when
// lo_k <= o_k <= hi_k, else never. near = max(0, largest entry), far = smallest exit,
// hit = far >= near; otherwise near = far = 0.
// A ray with a NaN coordinate gets near = far = NaN and hit = false from both.
#pragma once

#include <cmath>
#include <cstdint>

#include "../common/enums.h"  // SphereBounds
#include "../common/host_device.h"

namespace fastfield {

template <typename scalar_t>
struct BoundsInputs {
  int64_t n_rays;
  const scalar_t* origins;     // [n_rays, 3]
  const scalar_t* directions;  // [n_rays, 3]
};

template <typename scalar_t>
struct BoundsOutputs {
  scalar_t* near;  // [n_rays]
  scalar_t* far;   // [n_rays]
  bool* hit;       // [n_rays]
};

// min and max as the selects that compile to minss/maxss: branch-free, since which operand
// wins is unpredictable from ray to ray. Both return `a` when either operand is NaN, so
// max_of(x, 0) keeps a NaN x as torch.clamp_min does.
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE scalar_t min_of(scalar_t a, scalar_t b) {
  return b < a ? b : a;
}

template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE scalar_t max_of(scalar_t a, scalar_t b) {
  return a < b ? b : a;
}

template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void store_bounds(const BoundsOutputs<scalar_t>& out, int64_t ray,
                                           scalar_t near, scalar_t far, bool hit) {
  out.near[ray] = near;
  out.far[ray] = far;
  out.hit[ray] = hit;
}

template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void near_far_sphere_one_ray(const BoundsInputs<scalar_t>& in,
                                                      scalar_t radius, SphereBounds mode,
                                                      const BoundsOutputs<scalar_t>& out,
                                                      int64_t ray) {
  using std::sqrt;
  const scalar_t* o = in.origins + 3 * ray;
  const scalar_t* d = in.directions + 3 * ray;
  const scalar_t dd = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
  const scalar_t od = o[0] * d[0] + o[1] * d[1] + o[2] * d[2];
  const scalar_t t_mid = -od / dd;
  scalar_t closest_sq = 0;
  for (int k = 0; k < 3; ++k) {
    const scalar_t p = o[k] + t_mid * d[k];
    closest_sq += p * p;
  }
  const scalar_t radius_sq = radius * radius;
  const bool passes_inside = closest_sq <= radius_sq;
  if (mode == SphereBounds::kNeuS) {
    store_bounds(out, ray, t_mid - radius, t_mid + radius, passes_inside);
    return;
  }
  const scalar_t half_chord = sqrt(max_of((radius_sq - closest_sq) / dd, scalar_t(0)));
  const scalar_t far = t_mid + half_chord;
  // Selects, not branches: whether a ray hits is unpredictable.
  const bool hit = passes_inside & (far >= scalar_t(0));
  const scalar_t rest = max_of(t_mid, scalar_t(0));
  store_bounds(out, ray, hit ? max_of(t_mid - half_chord, scalar_t(0)) : rest,
               hit ? far : rest, hit);
}

// The interval of t where the ray o + t d lies in the closed box [lo, hi] (3 values each), cut
// at t >= 0: the slab test described at the top, shared by near_far_aabb and march_rays.
template <typename scalar_t>
struct SlabInterval {
  scalar_t near, far;
  bool hit;
};

template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE SlabInterval<scalar_t> slab_interval(const scalar_t* o, const scalar_t* d,
                                                               const scalar_t* lo,
                                                               const scalar_t* hi) {
  const scalar_t inf = static_cast<scalar_t>(INFINITY);
  bool has_nan = false;
  scalar_t near = 0;
  scalar_t far = inf;
  for (int k = 0; k < 3; ++k) {
    const scalar_t inv_d = scalar_t(1) / d[k];
    const scalar_t t_lo = (lo[k] - o[k]) * inv_d, t_hi = (hi[k] - o[k]) * inv_d;
    // Parallel to the slab (d_k = +-0): inside it for every t, or never.
    const bool parallel = d[k] == scalar_t(0);
    const bool in_slab = (lo[k] <= o[k]) & (o[k] <= hi[k]);
    const scalar_t enter = parallel ? (in_slab ? -inf : inf) : min_of(t_lo, t_hi);
    const scalar_t leave = parallel ? (in_slab ? inf : -inf) : max_of(t_lo, t_hi);
    near = max_of(near, enter);
    far = min_of(far, leave);
    has_nan = has_nan | (o[k] != o[k]) | (d[k] != d[k]);
  }
  const bool hit = (far >= near) & !has_nan;
  const scalar_t miss = has_nan ? static_cast<scalar_t>(NAN) : scalar_t(0);
  return {hit ? near : miss, hit ? far : miss, hit};
}

template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void near_far_aabb_one_ray(const BoundsInputs<scalar_t>& in,
                                                    const scalar_t* aabb,  // [6] = (lo, hi)
                                                    const BoundsOutputs<scalar_t>& out,
                                                    int64_t ray) {
  const SlabInterval<scalar_t> box =
      slab_interval(in.origins + 3 * ray, in.directions + 3 * ray, aabb, aabb + 3);
  store_bounds(out, ray, box.near, box.far, box.hit);
}

}  // namespace fastfield
