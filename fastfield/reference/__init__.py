"""Pure-PyTorch twins of every fastfield op.

Same argument names and return types as the kernels in ``fastfield.ops``. They are written the
way nerf-pytorch and NeuS write them (vectorised tensor code, autograd for gradients), so they
serve three purposes: the independent reference the tests compare against (evaluate them in
float64: they are then the more accurate side), the baseline the benchmarks time, and a
readable statement of what each kernel computes.
"""
from .composite import composite_density, composite_sdf
from .encoding import frequency_encode, hash_encode
from .marching import march_rays
from .pdf import merge_sorted, neus_upsample, neus_upsample_weights, sample_pdf
from .rays import generate_rays, near_far_aabb, near_far_sphere, ndc_rays
from .sampling import stratified_samples

__all__ = [
    "generate_rays", "ndc_rays", "near_far_sphere", "near_far_aabb", "stratified_samples",
    "sample_pdf", "merge_sorted", "composite_density", "composite_sdf", "neus_upsample",
    "march_rays", "hash_encode", "frequency_encode",
]

