"""The one place where an op backend is chosen: fastfield's kernels or their pure-PyTorch twins.

Every other layer passes the backend's name ("kernels" or "reference") down to the renderer;
only ``backend_ops`` turns it into the namespace the pipelines call.
"""
import functools
from types import ModuleType

from ..fields.encoding import positional_encoding_kernels

BACKENDS = ("kernels", "reference")
DEFAULT_BACKEND = "kernels"


def uses_kernels(backend: str) -> bool:
    """Whether ``backend`` runs fastfield's compiled kernels (and so needs them for its device)."""
    return backend == "kernels"


def backend_ops(backend: str) -> ModuleType:
    """The op namespace of a backend: "kernels" (fastfield's fused kernels, fastfield.ops) or
    "reference" (the pure-PyTorch twins, written the way nerf-pytorch and NeuS are)."""
    if backend == "kernels":
        from .. import ops
        return ops
    if backend == "reference":
        from .. import reference
        return reference
    raise ValueError(f"backend must be {' or '.join(map(repr, BACKENDS))}, got {backend!r}")


def encodings_follow_backend(render_fn):
    """Decorates a renderer with a keyword argument ``backend``: while it runs, the fields'
    positional encodings use the fused op ("kernels") or plain PyTorch ("reference"), so that
    the reference pipeline stays plain PyTorch
    (fastfield.fields.encoding.positional_encoding_kernels)."""
    @functools.wraps(render_fn)
    def wrapper(*args, backend: str = DEFAULT_BACKEND, **kwargs):
        with positional_encoding_kernels(uses_kernels(backend)):
            return render_fn(*args, backend=backend, **kwargs)
    return wrapper
