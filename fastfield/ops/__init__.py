"""The fastfield operators: documented wrappers over torch.ops.fastfield with fake (meta)
functions and autograd registered. Pure-PyTorch twins are in fastfield.reference."""
from .. import _backend  # noqa: F401  (loads the kernels before anything registers on them)
from .composite import composite_density
from .pdf import merge_sorted, neus_upsample, sample_pdf

__all__ = ["composite_density", "sample_pdf", "merge_sorted", "neus_upsample"]
