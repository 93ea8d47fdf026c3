"""The CUDA kernels' tile code (csrc/common/tile.h: a tile of lanes per ray, chunked walks with
shuffle scans and a carried prefix), run on the CPU through the tile emulation at widths 1, 8
and 32 (fastfield._backend.cpu_tile_emulation) under the op families' own tests, so that
GPU-less machines execute the GPU's scan and carry logic and its index guards. Tiles against the
production CPU kernels: tests/test_tile_vs_cpu.py."""
import functools

import pytest
import torch

import fastfield
from fastfield._backend import cpu_tile_emulation, value_checks
import test_composite_density as density
import test_composite_sdf as sdf
import test_pdf as pdf

F64, F32 = torch.float64, torch.float32
CPU = torch.device("cpu")
WIDTHS = [1, 8, 32]


@pytest.fixture(params=WIDTHS, ids=lambda w: f"tile{w}")
def width(request):
    """The CPU ops run the tile code emulated at this width for the test's duration."""
    with cpu_tile_emulation(request.param):
        yield request.param


def test_switch_is_checked_and_restored():
    with pytest.raises(ValueError, match="tile emulation width must be 0"):
        fastfield._backend.set_cpu_tile_emulation(4)
    assert fastfield._backend.set_cpu_tile_emulation(0) == 0
    with cpu_tile_emulation(8):
        assert fastfield._backend.set_cpu_tile_emulation(8) == 8
    assert fastfield._backend.set_cpu_tile_emulation(0) == 0


# ----------------------------------------------------------------------------- the families'
# own tests, through the tiles: values against the float64 reference, numerics at alpha = 1,
# gradcheck of the tile backward, layouts, empty rays, n_rays == 0, NaN, opcheck, compile.

def unchecked(test):
    """A test written for the unchecked_values fixture, with value checks off around it."""
    @functools.wraps(test)
    def run(*args):
        with value_checks(-1):
            test(*args, unchecked_values=None)
    return run


FAMILY_TESTS = {
    "density_values": functools.partial(density.test_matches_float64_reference, CPU, 33, 192,
                                        True, "per_ray"),
    "density_values_short": functools.partial(density.test_matches_float64_reference, CPU, 7, 1,
                                              False, None),
    "density_alpha_one": functools.partial(density.test_alpha_one_and_relu_zero_at_last_sample,
                                           CPU),
    "density_f32_grads_padded": functools.partial(
        density.test_float32_gradients_match_float64_at_1e10_delta, CPU, "padded"),
    "density_f32_grads_packed": functools.partial(
        density.test_float32_gradients_match_float64_at_1e10_delta, CPU, "packed"),
    "density_backward_f64": functools.partial(
        density.test_backward_matches_reference_autograd_float64, CPU),
    "density_gradcheck_padded": functools.partial(density.test_gradcheck, CPU, "padded"),
    "density_gradcheck_packed": functools.partial(density.test_gradcheck, CPU, "packed"),
    "density_packed_empty_rays": functools.partial(
        density.test_packed_equals_padded_with_empty_rays, CPU),
    "density_zero_rays": functools.partial(density.test_zero_rays_and_zero_samples, CPU),
    "density_nan": functools.partial(density.test_nan_stays_in_its_ray, CPU),
    "density_opcheck": functools.partial(density.test_opcheck, CPU),
    "density_compile": density.test_torch_compile_fullgraph,
    "sdf_values_bg": functools.partial(sdf.test_matches_float64_reference, CPU, 16, 64, 32),
    "sdf_values_short": functools.partial(sdf.test_matches_float64_reference, CPU, 5, 2, None),
    "sdf_saturated": functools.partial(sdf.test_saturated_sigmoids_and_the_clip, CPU, 1e6, F32),
    "sdf_f32_grads_padded": functools.partial(sdf.test_float32_gradients_match_float64_neus_like,
                                              CPU, "padded"),
    "sdf_f32_grads_bg": functools.partial(sdf.test_float32_gradients_match_float64_neus_like,
                                          CPU, "padded_bg"),
    "sdf_f32_grads_packed": functools.partial(sdf.test_float32_gradients_match_float64_neus_like,
                                              CPU, "packed"),
    "sdf_gradcheck_bg": functools.partial(sdf.test_gradcheck, CPU, "padded_bg"),
    "sdf_gradcheck_packed": functools.partial(sdf.test_gradcheck, CPU, "packed"),
    "sdf_each_output": functools.partial(sdf.test_each_output_alone_drives_the_backward, CPU,
                                         "weights"),
    "sdf_packed_padded": functools.partial(sdf.test_packed_equals_padded, CPU),
    "sdf_packed_empty_rays": functools.partial(
        sdf.test_packed_ragged_with_empty_rays_matches_reference, CPU),
    "sdf_zero_rays": functools.partial(sdf.test_zero_rays_and_zero_samples, CPU),
    "sdf_nan": functools.partial(sdf.test_nan_stays_in_its_ray, CPU),
    "sdf_opcheck": functools.partial(sdf.test_opcheck, CPU),
    "sdf_compile": sdf.test_torch_compile_fullgraph,
    "pdf_values": functools.partial(pdf.test_sample_pdf_matches_float64_reference, CPU, 7, 63,
                                    128, "generator", "relu"),
    "pdf_values_det": functools.partial(pdf.test_sample_pdf_matches_float64_reference, CPU, 9,
                                        64, 33, True, "peaked"),
    "pdf_values_long": functools.partial(pdf.test_sample_pdf_matches_float64_reference, CPU, 2,
                                         5000, 64, "midpoint", "zeros"),
    "pdf_f32": functools.partial(pdf.test_sample_pdf_float32_matches_float32_reference, CPU,
                                 "u", "relu"),
    "pdf_u_zero_one": functools.partial(pdf.test_quantiles_exactly_zero_and_one, CPU),
    "pdf_u_outside": functools.partial(pdf.test_quantiles_outside_the_unit_interval, CPU),
    "pdf_nan_weights": functools.partial(pdf.test_nan_weights_stay_in_their_ray, CPU),
    "pdf_zero_rays": functools.partial(pdf.test_sample_pdf_zero_rays_and_zero_samples, CPU),
    "pdf_nerf_pytorch_u_one": functools.partial(pdf.test_u_one_past_an_empty_tail_like_nerf_pytorch,
                                                CPU),
    "pdf_unsorted_u": unchecked(pdf.test_unchecked_unsorted_u_inverts_every_quantile),
    "merge_values": functools.partial(pdf.test_merge_sorted_matches_reference, CPU, 64, 128,
                                      True, F32),
    "merge_empty": functools.partial(pdf.test_merge_sorted_matches_reference, CPU, 0, 5, False,
                                     F64),
    "merge_nan": functools.partial(pdf.test_merge_sorted_nan_sorts_last, CPU),
    "merge_zero_rays": functools.partial(pdf.test_merge_sorted_non_contiguous_and_zero_rays, CPU),
    "merge_unsorted": unchecked(pdf.test_unchecked_unsorted_merge_is_a_permutation),
    "neus_values": functools.partial(pdf.test_neus_upsample_matches_float64_reference, CPU, 256,
                                     64, 16),
    "neus_values_short": functools.partial(pdf.test_neus_upsample_matches_float64_reference, CPU,
                                           64, 2, 5),
    "neus_f32": functools.partial(pdf.test_neus_upsample_float32_matches_float32_reference, CPU,
                                  512),
    "neus_nan": functools.partial(pdf.test_neus_upsample_nan_and_edge_cases, CPU),
    "neus_unsorted_u": unchecked(pdf.test_unchecked_unsorted_neus_quantiles_restart_the_weights),
    "pdf_opcheck": functools.partial(pdf.test_opcheck, CPU),
    "pdf_compile": pdf.test_torch_compile_fullgraph,
}
for _case in sorted(density.BAD_OFFSETS):
    FAMILY_TESTS[f"density_unchecked_offsets_{_case}"] = unchecked(functools.partial(
        density.test_unchecked_bad_offsets_stay_in_bounds, _case))
    FAMILY_TESTS[f"sdf_unchecked_offsets_{_case}"] = unchecked(functools.partial(
        sdf.test_unchecked_bad_offsets_stay_in_bounds, _case))


@pytest.mark.parametrize("name", sorted(FAMILY_TESTS))
def test_family_test_on_tiles(width, name):
    FAMILY_TESTS[name]()
