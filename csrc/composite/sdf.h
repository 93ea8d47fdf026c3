// SDF (NeuS) compositing: the math of composite_sdf_fwd / _bwd, run on CPU and CUDA by the
// drivers of sdf_host.h. NeuS render_core, per section k with
// s = inv_s (per ray) and r = cos_anneal_ratio:
//
//   iter_cos = -(relu(-0.5 cos + 0.5) (1 - r) + relu(-cos) r)
//   e_prev = sdf - iter_cos dist / 2,   e_next = sdf + iter_cos dist / 2
//   P = sigmoid(s e_prev),   N = sigmoid(s e_next)
//   alpha = clip((P - N + 1e-5) / (P + 1e-5), 0, 1)
//
// With a background model (padded layout only) the n_in samples of a ray blend with it by the
// inside-sphere mask and its n_out outside samples are appended:
//
//   j < n_in:   a_j = alpha_j in_j + bg_alpha_j (1 - in_j),  c_j = rgb_j in_j + bg_rgb_j (1 - in_j)
//   j >= n_in:  a_j = bg_alpha_j,                            c_j = bg_rgb_j
//
// Compositing (compositing.h) with the factor f_j = 1 - a_j + 1e-7: w_j = a_j T_j,
// rgb = sum w_j c_j, acc = sum w_j. No fixed background colour: that is the caller's
// rgb + (1 - acc) background.
//
// Backward: dL/da_j = T_j (v_j - R_j) + g_alpha_j from the shared scan, with
// v_j = g_rgb . c_j + g_acc + g_weights_j; through the blend (dL/dalpha_j = in_j dL/da_j,
// dL/dbg_alpha_j = (1 - in_j) dL/da_j) and the partials of neus_alpha below.
//
// The per-sample formulas (neus_alpha, the blend in SdfSamples, weight_gradient, sample_grads,
// store_sample_grads) are written once here. The CUDA driver applies them inline per sample on a
// tile of lanes per ray (sdf_forward_tile, sdf_backward_tile); the CPU driver runs the forward
// sequentially over tables (sdf_forward_one_ray), and the backward as vectorised passes around
// the sequential scan (sdf_cpu.cpp).
#pragma once

#include <cstdint>

#include "../common/host_device.h"
#include "../common/math.h"
#include "compositing.h"

namespace fastfield {

// NeuS alpha of one section and its partial derivatives (zero where the clip is active).
template <typename scalar_t>
struct NeusAlpha {
  scalar_t alpha;
  scalar_t d_sdf;
  scalar_t d_cos;
  scalar_t d_inv_s;
};

// The per-section formula above, with raw = (P - N + eps) / (P + eps), eps = 1e-5:
//   d raw / dP = N / (P + eps)^2,   d raw / dN = -1 / (P + eps),
//   dP = P (1 - P) (s de_prev + e_prev ds),   dN = N (1 - N) (s de_next + e_next ds),
//   d iter_cos / d cos = 0.5 (1 - r) [-0.5 cos + 0.5 > 0] + r [-cos > 0]   (relu' = 0 at 0),
// and the clip passes the gradient where 0 <= raw <= 1 (torch.clamp's inclusive mask).
//
// Evaluation, for float32 accuracy and one division per sample: each sigmoid is kept as
// sigmoid(x) = u / m, 1 - sigmoid(x) = v / m with z = exp(-|x|), m = 1 + z and (u, v) = (1, z)
// for x >= 0, (z, 1) for x < 0 -- both parts exact where the sigmoid saturates. Then
//   (P - N) m_p m_n = u_p v_n - u_n v_p        (= P (1 - N) - N (1 - P): where both sigmoids
//                                                saturate on the same side, in the empty space
//                                                before a surface, a plain P - N would leave only
//                                                rounding error next to the 1e-5)
//   (P + eps) m_p m_n = c m_n,   c = u_p + eps m_p,
// so with q = 1 / (c m_n) everything is a product: raw = ((P - N) m_p m_n + eps m_p m_n) q,
//   A = d raw/d(s e_prev) = N P (1 - P) / (P + eps)^2 = u_n u_p v_p m_n q^2,
//   B = -d raw/d(s e_next) = N (1 - N) / (P + eps) = u_n v_n m_p c q^2,
//   A - B = -N (P (P - N) + eps (1 - N)) / (P + eps)^2
//         = -u_n (u_p (P - N) m_p m_n + eps v_n m_p^2) q^2      (without cancellation),
// and d raw/d sdf = s (A - B), d raw/d cos = -s dist/2
// d iter_cos/d cos (A + B), d raw/d s = A e_prev - B e_next = (A - B) e_next + A (e_prev - e_next).
// Branch-free (selects only), so the CPU bulk pass vectorises.
template <typename scalar_t, typename Exp>
FF_HOST_DEVICE FF_INLINE NeusAlpha<scalar_t> neus_alpha(scalar_t sdf, scalar_t cos, scalar_t dist,
                                                        scalar_t inv_s, scalar_t anneal,
                                                        const Exp& exp_fn) {
  const scalar_t zero = 0, one = 1, half = 0.5, eps = 1e-5;
  const scalar_t half_cos_kink = -cos * half + half;
  const scalar_t iter_cos = -(relu(half_cos_kink) * (one - anneal) + relu(-cos) * anneal);
  const scalar_t half_step = iter_cos * dist * half;
  const scalar_t e_next = sdf + half_step;
  const scalar_t e_prev = sdf - half_step;
  const scalar_t x_prev = e_prev * inv_s, x_next = e_next * inv_s;
  const scalar_t z_prev = exp_fn(x_prev < zero ? x_prev : -x_prev);  // exp(-|x|); NaN stays
  const scalar_t z_next = exp_fn(x_next < zero ? x_next : -x_next);
  const scalar_t u_prev = x_prev >= zero ? one : z_prev, v_prev = x_prev >= zero ? z_prev : one;
  const scalar_t u_next = x_next >= zero ? one : z_next, v_next = x_next >= zero ? z_next : one;
  const scalar_t m_prev = one + z_prev, m_next = one + z_next;
  const scalar_t p_scaled = u_prev * v_next - u_next * v_prev;  // (P - N) m_p m_n
  const scalar_t c = u_prev + eps * m_prev;
  const scalar_t q = one / (c * m_next);
  const scalar_t q2 = q * q;
  const scalar_t raw = (p_scaled + eps * m_prev * m_next) * q;
  const scalar_t keep = (raw >= zero && raw <= one) ? one : zero;
  const scalar_t via_prev = u_next * u_prev * v_prev * m_next * q2;           // A
  const scalar_t via_next = u_next * v_next * m_prev * c * q2;                // B
  const scalar_t via_sdf = -u_next * (u_prev * p_scaled + eps * v_next * m_prev * m_prev) * q2;
  const scalar_t d_iter_cos = half * (one - anneal) * (half_cos_kink > zero ? one : zero) +
                              anneal * (-cos > zero ? one : zero);
  NeusAlpha<scalar_t> out;
  out.alpha = clip_keep_nan(raw, zero, one);
  out.d_sdf = keep * inv_s * via_sdf;
  out.d_cos = -keep * half * inv_s * dist * d_iter_cos * (via_prev + via_next);
  out.d_inv_s = keep * (via_sdf * e_next - via_prev * iter_cos * dist);
  return out;
}

// NeuS's factor on the transmittance, 1 - a + 1e-7 (the 1e-7 keeps T > 0 behind a = 1).
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE scalar_t neus_factor(scalar_t alpha) {
  return scalar_t(1) - alpha + scalar_t(1e-7);
}

// Where the NeuS alpha of SDF sample k comes from: evaluated on the spot (CUDA) ...
template <typename scalar_t, typename Exp>
struct NeusFromSdf {
  const scalar_t* __restrict__ sdf;
  const scalar_t* __restrict__ cos;
  const scalar_t* __restrict__ dist;
  scalar_t inv_s;
  scalar_t anneal;
  Exp exp_fn;
  FF_HOST_DEVICE FF_INLINE NeusAlpha<scalar_t> sample(int64_t k) const {
    return neus_alpha(sdf[k], cos[k], dist[k], inv_s, anneal, exp_fn);
  }
  FF_HOST_DEVICE FF_INLINE scalar_t alpha(int64_t k) const { return sample(k).alpha; }
};

// ... or read from tables filled by a vectorised bulk pass (CPU); entry 0 is sample `first`.
// The partial tables may be nullptr when only alpha is read (forward).
template <typename scalar_t>
struct NeusTable {
  const scalar_t* __restrict__ alpha_table;
  const scalar_t* __restrict__ d_sdf;
  const scalar_t* __restrict__ d_cos;
  const scalar_t* __restrict__ d_inv_s;
  int64_t first;
  FF_HOST_DEVICE FF_INLINE NeusAlpha<scalar_t> sample(int64_t k) const {
    const int64_t j = k - first;
    return {alpha_table[j], d_sdf[j], d_cos[j], d_inv_s[j]};
  }
  FF_HOST_DEVICE FF_INLINE scalar_t alpha(int64_t k) const { return alpha_table[k - first]; }
};

// Packed layout: sdf, cos, dists [n_samples], rgb [n_samples, 3], ray r owns
// offsets[r]:offsets[r+1], no background model. Padded: offsets == nullptr, ray r owns SDF
// samples [r n_in, (r + 1) n_in) and, with a background model, composite samples
// [r n_total, (r + 1) n_total) of weights, alpha, bg_alpha and bg_rgb (n_total = n_in + n_out).
template <typename scalar_t>
struct SdfInputs {
  int64_t n_rays;
  int64_t n_in;                 // SDF samples per ray (padded), 0 when packed
  int64_t n_total;              // n_in + n_out with a background model, else 0
  int64_t n_samples;            // SDF samples in all
  const int64_t* offsets;       // [n_rays + 1] or nullptr
  const scalar_t* sdf;          // [n_samples]
  const scalar_t* cos;          // [n_samples]
  const scalar_t* dists;        // [n_samples]
  const scalar_t* inv_s;        // [1] or [n_rays]
  int64_t inv_s_stride;         // 0 for one value, 1 for one per ray
  const scalar_t* rgb;          // [n_samples, 3]
  const scalar_t* inside;       // [n_samples] or nullptr (with the background model)
  const scalar_t* bg_alpha;     // [n_rays * n_total] or nullptr
  const scalar_t* bg_rgb;       // [n_rays * n_total, 3] or nullptr
  scalar_t cos_anneal_ratio;
};

template <typename scalar_t>
struct SdfOutputs {
  scalar_t* rgb;      // [n_rays, 3]
  scalar_t* acc;      // [n_rays]
  scalar_t* weights;  // composite samples
  scalar_t* alpha;    // composite samples
};

template <typename scalar_t>
struct SdfGrads {
  const scalar_t* grad_rgb;      // [n_rays, 3] or nullptr (incoming)
  const scalar_t* grad_acc;      // [n_rays] or nullptr
  const scalar_t* grad_weights;  // composite samples or nullptr
  const scalar_t* grad_alpha;    // composite samples or nullptr
  scalar_t* grad_sdf;            // [n_samples] (outgoing)
  scalar_t* grad_cos;            // [n_samples]
  scalar_t* grad_inv_s;          // [n_rays]
  scalar_t* grad_rgb_samples;    // [n_samples, 3]
  scalar_t* grad_bg_alpha;       // composite samples, or nullptr without a background model
  scalar_t* grad_bg_rgb;         // [composite samples, 3] or nullptr
};

// The samples of one ray: SDF samples (index k into sdf, cos, dists, rgb, inside) and
// composite samples (index i into weights, alpha, bg_alpha, bg_rgb).
struct SdfRaySpan {
  SampleRange sdf;
  SampleRange out;
};

template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE SdfRaySpan sdf_ray_span(const SdfInputs<scalar_t>& in, int64_t ray) {
  const SampleRange sdf = ray_samples(in.offsets, in.n_in, in.n_samples, ray);
  if (in.bg_alpha == nullptr) return {sdf, sdf};
  return {sdf, {ray * in.n_total, (ray + 1) * in.n_total}};
}

template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE scalar_t ray_inv_s(const SdfInputs<scalar_t>& in, int64_t ray) {
  return in.inv_s[ray * in.inv_s_stride];
}

// The SDF samples of one ray with their NeuS alpha evaluated on the spot.
template <typename scalar_t, typename Exp>
FF_HOST_DEVICE FF_INLINE NeusFromSdf<scalar_t, Exp> neus_from_sdf(const SdfInputs<scalar_t>& in,
                                                                  int64_t ray, const Exp& exp_fn) {
  return {in.sdf, in.cos, in.dists, ray_inv_s(in, ray), in.cos_anneal_ratio, exp_fn};
}

// Composite sample i of one ray: the blend of the NeuS alpha/colour with the background model
// (kBackground; without one, composite sample i is SDF sample i + to_sdf). Composite samples
// [out.begin, inside_end) have the SDF sample k = i + to_sdf (the *_inside accessors), the rest
// come from the background model alone (*_outside).
template <typename scalar_t, typename Neus, bool kBackground>
struct SdfSamples {
  Neus neus;
  const scalar_t* __restrict__ rgb;
  const scalar_t* __restrict__ inside;
  const scalar_t* __restrict__ bg_alpha;
  const scalar_t* __restrict__ bg_rgb;
  int64_t to_sdf;
  int64_t inside_end;

  // d a_i / d alpha_k: the inside mask with a background model.
  FF_HOST_DEVICE FF_INLINE scalar_t share(int64_t i) const {
    return kBackground ? inside[i + to_sdf] : scalar_t(1);
  }
  FF_HOST_DEVICE FF_INLINE scalar_t alpha_inside(int64_t i) const {
    const scalar_t a = neus.alpha(i + to_sdf);
    if constexpr (!kBackground) return a;
    const scalar_t in = inside[i + to_sdf];
    return a * in + bg_alpha[i] * (scalar_t(1) - in);
  }
  FF_HOST_DEVICE FF_INLINE scalar_t color_inside(int64_t i, int c) const {
    const scalar_t color = rgb[3 * (i + to_sdf) + c];
    if constexpr (!kBackground) return color;
    const scalar_t in = inside[i + to_sdf];
    return color * in + bg_rgb[3 * i + c] * (scalar_t(1) - in);
  }
  FF_HOST_DEVICE FF_INLINE scalar_t alpha_outside(int64_t i) const { return bg_alpha[i]; }
  FF_HOST_DEVICE FF_INLINE scalar_t color_outside(int64_t i, int c) const {
    return bg_rgb[3 * i + c];
  }

  FF_HOST_DEVICE FF_INLINE scalar_t alpha(int64_t i) const {
    return (kBackground && i >= inside_end) ? alpha_outside(i) : alpha_inside(i);
  }
  FF_HOST_DEVICE FF_INLINE scalar_t factor(int64_t i) const { return neus_factor(alpha(i)); }
  FF_HOST_DEVICE FF_INLINE Opacity<scalar_t> opacity(int64_t i) const {
    const scalar_t a = alpha(i);
    return {a, neus_factor(a)};
  }
  FF_HOST_DEVICE FF_INLINE scalar_t color(int64_t i, int c) const {
    return (kBackground && i >= inside_end) ? color_outside(i, c) : color_inside(i, c);
  }
};

template <bool kBackground, typename scalar_t, typename Neus>
FF_HOST_DEVICE FF_INLINE SdfSamples<scalar_t, Neus, kBackground> sdf_samples(
    const SdfInputs<scalar_t>& in, const SdfRaySpan& span, const Neus& neus) {
  const int64_t n_sdf = span.sdf.end - span.sdf.begin;
  return {neus,      in.rgb, in.inside, in.bg_alpha, in.bg_rgb, span.sdf.begin - span.out.begin,
          span.out.begin + n_sdf};
}

template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE void store_sdf_ray(const SdfOutputs<scalar_t>& out, int64_t ray,
                                            const CompositeResult<scalar_t>& r) {
  for (int c = 0; c < 3; ++c) out.rgb[3 * ray + c] = r.rgb[c];
  out.acc[ray] = r.acc;
}

// `neus` evaluates the SDF samples of this ray (at inv_s = ray_inv_s(in, ray)); kBackground
// must be in.bg_alpha != nullptr (a template argument, so that the scans carry no branch for it).
template <bool kBackground, typename scalar_t, typename Neus>
FF_HOST_DEVICE FF_INLINE void sdf_forward_one_ray(const SdfInputs<scalar_t>& in,
                                                  const SdfRaySpan& span, const Neus& neus,
                                                  const SdfOutputs<scalar_t>& out, int64_t ray) {
  const auto samples = sdf_samples<kBackground>(in, span, neus);
  const CompositeResult<scalar_t> r = composite_forward_ray<scalar_t, false>(
      samples, span.out.begin, span.out.end, out.weights, out.alpha);
  store_sdf_ray(out, ray, r);
}

// The same ray by a tile (compositing.h, tile.h); lane 0 writes the per-ray outputs.
template <bool kBackground, typename scalar_t, class Tile, typename Neus>
FF_HOST_DEVICE FF_INLINE void sdf_forward_tile(const Tile& tile, const SdfInputs<scalar_t>& in,
                                               const SdfRaySpan& span, const Neus& neus,
                                               const SdfOutputs<scalar_t>& out, int64_t ray) {
  if constexpr (!kBackground) {  // packed rays have no background model
    zero_unowned(tile, in, ray, [&](int64_t i) { out.weights[i] = out.alpha[i] = scalar_t(0); });
  }
  const auto samples = sdf_samples<kBackground>(in, span, neus);
  const CompositeResult<scalar_t> r = composite_forward_tile<scalar_t, false>(
      tile, samples, span.out.begin, span.out.end, out.weights, out.alpha);
  tile.leader([&] { store_sdf_ray(out, ray, r); });
}

// The incoming gradients of one ray's outputs.
template <typename scalar_t>
struct RayOutputGrads {
  scalar_t rgb[3];
  scalar_t acc;
};

template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE RayOutputGrads<scalar_t> ray_output_grads(const SdfGrads<scalar_t>& g,
                                                                   int64_t ray) {
  RayOutputGrads<scalar_t> r{{0, 0, 0}, g.grad_acc != nullptr ? g.grad_acc[ray] : scalar_t(0)};
  if (g.grad_rgb != nullptr) {
    for (int c = 0; c < 3; ++c) r.rgb[c] = g.grad_rgb[3 * ray + c];
  }
  return r;
}

// v_i = dL/dw_i of a composite sample with colour (c0, c1, c2); grad_weight is the incoming
// gradient of the weights output there (0 without one).
template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE scalar_t weight_gradient(const RayOutputGrads<scalar_t>& g, scalar_t c0,
                                                  scalar_t c1, scalar_t c2,
                                                  scalar_t grad_weight) {
  return g.acc + g.rgb[0] * c0 + g.rgb[1] * c1 + g.rgb[2] * c2 + grad_weight;
}

// Gradients that composite sample i sends to its inputs, from dL/da_i of the scan (grad_a), the
// incoming gradient of the alpha output there, w_i, the sample's share of the SDF model (the
// inside mask; 1 without a background model, 0 for outside samples) and the partials of its
// NeuS alpha (zero for outside samples).
template <typename scalar_t>
struct SampleGrads {
  scalar_t sdf, cos, inv_s;  // dL/dsdf_k, dL/dcos_k, the sample's term of dL/dinv_s
  scalar_t rgb_weight;       // dL/drgb_k = g_rgb rgb_weight
  scalar_t bg_alpha;         // dL/dbg_alpha_i
  scalar_t bg_rgb_weight;    // dL/dbg_rgb_i = g_rgb bg_rgb_weight
};

template <typename scalar_t>
FF_HOST_DEVICE FF_INLINE SampleGrads<scalar_t> sample_grads(scalar_t grad_a, scalar_t grad_alpha,
                                                            scalar_t w, scalar_t share,
                                                            const NeusAlpha<scalar_t>& partials) {
  const scalar_t total = grad_a + grad_alpha;  // dL/da_i
  const scalar_t to_neus = total * share, rest = scalar_t(1) - share;
  return {to_neus * partials.d_sdf, to_neus * partials.d_cos, to_neus * partials.d_inv_s,
          w * share,                total * rest,             w * rest};
}

// One ray's outgoing gradient arrays: the SDF-sample ones from the ray's first SDF sample, the
// background-model ones (nullptr without) from its first composite sample, so that inside sample
// j of the ray is entry j of both.
template <typename scalar_t>
struct RayGradArrays {
  scalar_t* sdf;
  scalar_t* cos;
  scalar_t* rgb;
  scalar_t* bg_alpha;
  scalar_t* bg_rgb;
};

template <bool kBackground, typename scalar_t>
FF_HOST_DEVICE FF_INLINE RayGradArrays<scalar_t> ray_grad_arrays(const SdfGrads<scalar_t>& g,
                                                                 const SdfRaySpan& span) {
  return {g.grad_sdf + span.sdf.begin, g.grad_cos + span.sdf.begin,
          g.grad_rgb_samples + 3 * span.sdf.begin,
          kBackground ? g.grad_bg_alpha + span.out.begin : nullptr,
          kBackground ? g.grad_bg_rgb + 3 * span.out.begin : nullptr};
}

// Stores the gradients r of the ray's composite sample j (kOutside: one of the background
// model's outside samples, which has no SDF sample); returns its term of dL/dinv_s.
template <bool kBackground, bool kOutside, typename scalar_t>
FF_HOST_DEVICE FF_INLINE scalar_t store_sample_grads(const SampleGrads<scalar_t>& r,
                                                     const RayOutputGrads<scalar_t>& ray_grads,
                                                     int64_t j, scalar_t* grad_sdf,
                                                     scalar_t* grad_cos, scalar_t* grad_rgb,
                                                     scalar_t* grad_bg_alpha,
                                                     scalar_t* grad_bg_rgb) {
  if (kBackground) {
    grad_bg_alpha[j] = r.bg_alpha;
    for (int c = 0; c < 3; ++c) grad_bg_rgb[3 * j + c] = ray_grads.rgb[c] * r.bg_rgb_weight;
  }
  if (kOutside) return scalar_t(0);
  grad_sdf[j] = r.sdf;
  grad_cos[j] = r.cos;
  for (int c = 0; c < 3; ++c) grad_rgb[3 * j + c] = ray_grads.rgb[c] * r.rgb_weight;
  return r.inv_s;
}

// v_i of composite sample i of one ray (compositing.h's value).
template <typename scalar_t, typename Samples>
FF_HOST_DEVICE FF_INLINE scalar_t sdf_value(const Samples& samples, const SdfGrads<scalar_t>& g,
                                            const RayOutputGrads<scalar_t>& ray_grads,
                                            int64_t i) {
  return weight_gradient(ray_grads, samples.color(i, 0), samples.color(i, 1), samples.color(i, 2),
                         g.grad_weights != nullptr ? g.grad_weights[i] : scalar_t(0));
}

// Stores the gradients that composite sample i sends to its inputs, with every per-sample
// value evaluated inline, from dL/da_i of the scan (grad_a) and w_i; returns its term of
// dL/dinv_s.
template <bool kBackground, typename scalar_t, typename Samples, typename Neus>
FF_HOST_DEVICE FF_INLINE scalar_t emit_sdf_sample(const Samples& samples, const Neus& neus,
                                                  const SdfGrads<scalar_t>& g,
                                                  const RayOutputGrads<scalar_t>& ray_grads,
                                                  const RayGradArrays<scalar_t>& out,
                                                  const SdfRaySpan& span, int64_t i,
                                                  scalar_t grad_a, scalar_t w) {
  const scalar_t grad_alpha = g.grad_alpha != nullptr ? g.grad_alpha[i] : scalar_t(0);
  const int64_t j = i - span.out.begin;
  if (kBackground && i >= samples.inside_end) {
    const SampleGrads<scalar_t> r =
        sample_grads(grad_a, grad_alpha, w, scalar_t(0), NeusAlpha<scalar_t>{0, 0, 0, 0});
    return store_sample_grads<kBackground, true>(r, ray_grads, j, out.sdf, out.cos, out.rgb,
                                                 out.bg_alpha, out.bg_rgb);
  }
  const SampleGrads<scalar_t> r =
      sample_grads(grad_a, grad_alpha, w, samples.share(i), neus.sample(i + samples.to_sdf));
  return store_sample_grads<kBackground, false>(r, ray_grads, j, out.sdf, out.cos, out.rgb,
                                                out.bg_alpha, out.bg_rgb);
}

// The backward of one ray by a tile, every per-sample value evaluated inline (the CPU kernels
// run the same formulas as vectorised passes around the sequential scan, sdf_cpu.cpp); dL/dinv_s
// as per-lane double sums added up at the end. scratch[i - scratch_first] holds T at each chunk's first
// composite sample i (see composite_backward_tile).
template <bool kBackground, typename scalar_t, class Tile, typename Neus>
FF_HOST_DEVICE FF_INLINE void sdf_backward_tile(const Tile& tile, const SdfInputs<scalar_t>& in,
                                                const SdfRaySpan& span, const Neus& neus,
                                                const SdfGrads<scalar_t>& g, int64_t ray,
                                                scalar_t* scratch, int64_t scratch_first) {
  if constexpr (!kBackground) {  // packed rays have no background model
    zero_unowned(tile, in, ray, [&](int64_t k) {
      g.grad_sdf[k] = g.grad_cos[k] = scalar_t(0);
      for (int c = 0; c < 3; ++c) g.grad_rgb_samples[3 * k + c] = scalar_t(0);
    });
  }
  const auto samples = sdf_samples<kBackground>(in, span, neus);
  const RayOutputGrads<scalar_t> ray_grads = ray_output_grads(g, ray);
  const RayGradArrays<scalar_t> out = ray_grad_arrays<kBackground>(g, span);
  // In double: the terms cancel (the ray's samples before and behind its surface pull inv_s
  // both ways), and a float32 sum in a tile's order loses up to 1e-4 of such a total.
  auto grad_inv_s = tile.map([](int) { return 0.0; });
  composite_backward_tile<scalar_t>(
      tile, samples, span.out.begin, span.out.end, scratch, scratch_first,
      [&](int64_t i) { return sdf_value(samples, g, ray_grads, i); },
      [&](int lane, int64_t i, scalar_t grad_a, scalar_t w) {
        grad_inv_s[lane] += static_cast<double>(emit_sdf_sample<kBackground>(
            samples, neus, g, ray_grads, out, span, i, grad_a, w));
      });
  const scalar_t total = static_cast<scalar_t>(tile.reduce(grad_inv_s, tile::Add{}));
  tile.leader([&] { g.grad_inv_s[ray] = total; });
}

}  // namespace fastfield
