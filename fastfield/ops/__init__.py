"""The fastfield operators: documented wrappers over torch.ops.fastfield with fake (meta)
functions and autograd registered. Pure-PyTorch twins are in fastfield.reference.

The wrapper modules load the kernels when they are imported, and they are imported on first
use of one of their names (``fastfield.ops.composite_density`` or ``fastfield.composite_density``),
so ``import fastfield`` and ``import fastfield.ops`` load nothing.
"""
import importlib

# Each public op and the wrapper module that holds it.
_MODULE_OF = {
    "composite_density": "composite", "composite_sdf": "composite",
    "march_rays": "marching",
    "sample_pdf": "pdf", "merge_sorted": "pdf", "neus_upsample": "pdf",
    "generate_rays": "rays", "image_pixels": "rays", "random_pixels": "rays",
    "random_pixels_in_camera": "rays", "ndc_rays": "rays", "near_far_sphere": "rays",
    "near_far_aabb": "rays",
    "stratified_samples": "sampling",
    "hash_encode": "encoding", "frequency_encode": "encoding",
}
__all__ = list(_MODULE_OF)


def __getattr__(name: str):
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
