// Every fastfield operator schema, and nothing else. Kernels register per backend in the
// *_cpu.cpp / *_cuda.cu files of each family (TORCH_LIBRARY_IMPL); the dispatcher picks them.
// Python wrappers with documentation, argument normalisation, fake (meta) functions and autograd
// live in fastfield/ops/. Enumerations travel as ints; their one table is
// csrc/common/enums.def (read by common/enums.h and by fastfield/core/enums.py).
#include <torch/library.h>

#include "common/checks.h"
#include "common/tile_cpu.h"

TORCH_LIBRARY(fastfield, m) {
  // rays/ ----------------------------------------------------------------------------------
  // c2w [n_cams, 3, 4], intrinsics [n_cams, 4] = (fx, fy, cx, cy), pixels int64 [n_rays, 3] =
  // (camera, row, col); convention 0 = OpenGL (Blender, LLFF), 1 = OpenCV (DTU, NeuS).
  m.def("generate_rays(Tensor c2w, Tensor intrinsics, Tensor pixels, int convention, "
        "float pixel_offset, bool normalize) -> (Tensor origins, Tensor directions)");
  m.def("ndc_rays(Tensor origins, Tensor directions, float height, float width, float focal, "
        "float near) -> (Tensor origins, Tensor directions)");
  // mode 0 = NeuS closest approach +/- radius, 1 = exact intersection.
  m.def("near_far_sphere(Tensor origins, Tensor directions, float radius, int mode) "
        "-> (Tensor near, Tensor far, Tensor hit)");
  m.def("near_far_aabb(Tensor origins, Tensor directions, Tensor aabb) "
        "-> (Tensor near, Tensor far, Tensor hit)");

  // sampling/ ------------------------------------------------------------------------------
  // jitter 0 = none, 1 = per sample (u [n_rays, n_samples]), 2 = per ray (u [n_rays]).
  m.def("stratified_samples(Tensor near, Tensor far, Tensor? u, int n_samples, bool lindisp, "
        "int jitter) -> Tensor");

  // pdf/ -----------------------------------------------------------------------------------
  // u: ascending quantiles, [n_samples] (shared by all rays) or [n_rays, n_samples].
  m.def("sample_pdf(Tensor bins, Tensor weights, Tensor u) -> Tensor");
  m.def("merge_sorted(Tensor a, Tensor b) -> (Tensor merged, Tensor index)");
  m.def("neus_upsample(Tensor rays_o, Tensor rays_d, Tensor t, Tensor sdf, Tensor u, "
        "float inv_s) -> Tensor");

  // composite/ -----------------------------------------------------------------------------
  m.def("composite_density_fwd(Tensor sigma, Tensor rgb, Tensor deltas, Tensor? t, "
        "Tensor? ray_offsets, Tensor? background) "
        "-> (Tensor rgb, Tensor depth, Tensor acc, Tensor weights)");
  m.def("composite_density_bwd(Tensor? grad_rgb, Tensor? grad_depth, Tensor? grad_acc, "
        "Tensor? grad_weights, Tensor sigma, Tensor rgb, Tensor deltas, Tensor? t, "
        "Tensor? ray_offsets, Tensor? background) "
        "-> (Tensor grad_sigma, Tensor grad_rgb, Tensor grad_t)");
  m.def("composite_sdf_fwd(Tensor sdf, Tensor cos, Tensor dists, Tensor inv_s, Tensor rgb, "
        "float cos_anneal_ratio, Tensor? inside, Tensor? bg_alpha, Tensor? bg_rgb, "
        "Tensor? ray_offsets) -> (Tensor rgb, Tensor acc, Tensor weights, Tensor alpha)");
  m.def("composite_sdf_bwd(Tensor? grad_rgb, Tensor? grad_acc, Tensor? grad_weights, "
        "Tensor? grad_alpha, Tensor sdf, Tensor cos, Tensor dists, Tensor inv_s, Tensor rgb, "
        "float cos_anneal_ratio, Tensor? inside, Tensor? bg_alpha, Tensor? bg_rgb, "
        "Tensor? ray_offsets) -> (Tensor grad_sdf, Tensor grad_cos, Tensor grad_inv_s, "
        "Tensor grad_rgb, Tensor grad_bg_alpha, Tensor grad_bg_rgb)");

  // marching/ ------------------------------------------------------------------------------
  // Occupancy grid: bitfield uint8 [ceil(levels * rx * ry * rz / 8)] (cell n is bit n & 7 of
  // byte n >> 3), aabb [6], resolution (rx, ry, rz); marching.h states the walk. count gives the
  // samples per ray [n_rays]; fill writes them into ray_offsets' slots (t_starts, t_ends
  // [capacity], ray_indices int64 [capacity]).
  m.def("march_rays_count(Tensor origins, Tensor directions, Tensor near, Tensor far, Tensor? u, "
        "Tensor bitfield, Tensor aabb, int[] resolution, int levels, float step_size, "
        "float cone_angle, float max_step, int max_steps) -> Tensor");
  m.def("march_rays_fill(Tensor origins, Tensor directions, Tensor near, Tensor far, Tensor? u, "
        "Tensor bitfield, Tensor aabb, int[] resolution, int levels, float step_size, "
        "float cone_angle, float max_step, int max_steps, Tensor ray_offsets, int capacity) "
        "-> (Tensor t_starts, Tensor t_ends, Tensor ray_indices)");

  // encoding/ ------------------------------------------------------------------------------
  // Multi-resolution hash encoding: x [n, 3], params [n_levels, 2^k, n_features], output
  // [n, n_levels * n_features]; the grid formula is in encoding/hash_encode.h. The flags say
  // which gradients to compute (the others come back as [0] placeholders). gg_x and gg_params
  // are the incoming gradients of hash_encode_bwd's two outputs.
  m.def("hash_encode_fwd(Tensor x, Tensor params, float base_resolution, float per_level_scale) "
        "-> Tensor");
  m.def("hash_encode_bwd(Tensor grad_out, Tensor x, Tensor params, float base_resolution, "
        "float per_level_scale, bool x_grad, bool params_grad) "
        "-> (Tensor x_grad, Tensor params_grad)");
  m.def("hash_encode_bwd_bwd(Tensor? gg_x, Tensor? gg_params, Tensor grad_out, Tensor x, "
        "Tensor params, float base_resolution, float per_level_scale, bool grad_out_grad, "
        "bool x_grad, bool params_grad) "
        "-> (Tensor grad_out_grad, Tensor x_grad, Tensor params_grad)");
  // Frequency (positional) encoding, NeRF's gamma with the input: x [n, d] -> [n, d (1 + 2L)] =
  // [x, sin(2^0 x), cos(2^0 x), ..., sin(2^(L-1) x), cos(2^(L-1) x)], L = n_frequencies in
  // 0..30 (encoding/frequency_encode.h). gg_x is the incoming gradient of frequency_encode_bwd's
  // output; the flags say which gradients to compute (the other comes back as a [0] placeholder).
  m.def("frequency_encode_fwd(Tensor x, int n_frequencies) -> Tensor");
  m.def("frequency_encode_bwd(Tensor grad_out, Tensor x, int n_frequencies) -> Tensor");
  m.def("frequency_encode_bwd_bwd(Tensor gg_x, Tensor grad_out, Tensor x, int n_frequencies, "
        "bool grad_out_grad, bool x_grad) -> (Tensor grad_out_grad, Tensor x_grad)");

  // Value checks that read tensor data (fastfield/_backend.py documents the modes).
  m.def("_set_value_checks(int mode) -> int", &fastfield::set_value_check_mode);
  // Test-only: the CPU kernels run the CUDA kernels' tile code, emulated at this width (0: off;
  // fastfield/_backend.py documents it).
  m.def("_set_cpu_tile_emulation(int width) -> int", &fastfield::cpu::set_tile_emulation);
  // Benchmarks: the CUDA kernels' tile width, forced (8 or 32; 0: chosen per call).
  m.def("_set_cuda_tile_width(int width) -> int", &fastfield::tile::set_forced_width);
}
