"""The fastfield operators: documented wrappers over torch.ops.fastfield with fake (meta)
functions and autograd registered. Pure-PyTorch twins are in fastfield.reference."""
from .. import _backend  # noqa: F401  (loads the kernels before anything registers on them)
from .composite import composite_density, composite_sdf

__all__ = ["composite_density", "composite_sdf"]
