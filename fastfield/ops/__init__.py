"""The fastfield operators: documented wrappers over torch.ops.fastfield with fake (meta)
functions and autograd registered. Pure-PyTorch twins are in fastfield.reference."""
from .. import _backend  # noqa: F401  (loads the kernels before anything registers on them)
from .composite import composite_density, composite_sdf
from .pdf import merge_sorted, neus_upsample, sample_pdf
from .rays import (generate_rays, image_pixels, near_far_aabb, near_far_sphere, ndc_rays,
                   random_pixels, random_pixels_in_camera)
from .sampling import stratified_samples

__all__ = ["composite_density", "composite_sdf", "generate_rays", "image_pixels",
           "random_pixels", "random_pixels_in_camera", "ndc_rays", "near_far_sphere",
           "near_far_aabb", "stratified_samples", "sample_pdf", "merge_sorted", "neus_upsample"]
