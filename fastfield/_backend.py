"""Loads fastfield's compiled kernels and answers questions about them.

Nothing loads at ``import fastfield``: the first op call (the import of a wrapper module in
fastfield.ops), ``built_with_cuda()`` or ``ops()`` does, once per process (``load``). Order: the extension pip built (``fastfield._C``); if it is missing (plain ``pip install .``
builds without torch) or was built for another torch (ImportError), the kernels are compiled
on first import with torch.utils.cpp_extension and cached per torch/Python version under
``$FASTFIELD_CACHE`` (default ``~/.cache/fastfield``). ``FASTFIELD_FORCE_JIT=1`` skips the
extension, e.g. to build a private copy while another process rebuilds the shared one.
"""
import contextlib
import hashlib
import os
import sys
import threading
from pathlib import Path
from typing import Dict, Iterator, Optional

import torch

from . import _build
from .core.sources import kernel_source_dir

REBUILD_HINT = (f"CUDA_HOME={_build.FALLBACK_CUDA_HOME} pip install --no-build-isolation "
                "--no-deps --force-reinstall .   (in the fastfield source folder, with a CUDA "
                "build of torch)")


def _source_dir() -> Path:
    return kernel_source_dir()  # ImportError naming where it looked


def _cache_dir(source: Path, with_cuda: bool) -> Path:
    root = Path(os.environ.get("FASTFIELD_CACHE", Path.home() / ".cache" / "fastfield"))
    key = hashlib.sha1(str(source).encode()).hexdigest()[:10]
    flavour = f"cu{torch.version.cuda}" if with_cuda else "cpu"
    py = f"py{sys.version_info[0]}{sys.version_info[1]}"
    return root / "kernels" / f"torch{torch.__version__}-{flavour}-{py}-{key}"


def _build_on_first_import(reason: str) -> str:
    from torch.utils import cpp_extension

    source = _source_dir()
    cpp, cu = _build.kernel_sources(source)
    with_cuda, why = _build.cuda_build_decision()
    build_dir = _cache_dir(source, with_cuda)
    build_dir.mkdir(parents=True, exist_ok=True)
    if not any(build_dir.glob("*.so")):
        print(f"fastfield: compiling kernels for torch {torch.__version__} "
              f"({'CPU + CUDA' if with_cuda else 'CPU only'}: {why}) into {build_dir}; "
              f"first import only ({reason})", file=sys.stderr)
    if with_cuda:
        _build.ensure_cuda_arch_list()
    cpp_extension.load(name="fastfield_kernels", sources=cpp + (cu if with_cuda else []),
                       extra_cflags=_build.CXX_FLAGS, extra_cuda_cflags=_build.NVCC_FLAGS,
                       extra_ldflags=_build.LINK_FLAGS,
                       build_directory=str(build_dir), with_cuda=with_cuda,
                       is_python_module=False, verbose=False)
    return f"compiled on import in {build_dir}"


def _load() -> str:
    if os.environ.get("FASTFIELD_FORCE_JIT") == "1":
        return _build_on_first_import("FASTFIELD_FORCE_JIT=1")
    try:
        from . import _C  # noqa: F401  (registers the operators)
        return f"extension {_C.__file__}"
    except ImportError as error:
        return _build_on_first_import(f"no usable fastfield._C: {error}")


_LOCK = threading.Lock()
_LOADED: Optional[str] = None            # what load() loaded, once it has
_CUDA_TABLE: Dict[str, bool] = {}        # 'fastfield::op' -> has a CUDA kernel, filled by load()


def load() -> str:
    """Load the kernels (registering every fastfield operator) unless already loaded; returns
    where they came from (also ``fastfield._backend.KERNELS``)."""
    global _LOADED
    if _LOADED is not None:
        return _LOADED
    with _LOCK:
        if _LOADED is None:
            loaded = _load()
            _CUDA_TABLE.update({name: keys["CUDA"] for name, keys in _dispatcher_table().items()})
            _LOADED = loaded
    return _LOADED


def __getattr__(name: str):
    # KERNELS and _CUDA_KERNELS read as module attributes, loading the kernels first.
    if name == "KERNELS":
        return load()
    if name == "_CUDA_KERNELS":
        load()
        return _CUDA_TABLE
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _dispatcher_table() -> Dict[str, Dict[str, bool]]:
    names = sorted(n for n in torch._C._dispatch_get_all_op_names() if n.startswith("fastfield::"))
    return {name: {key: torch._C._dispatch_has_kernel_for_dispatch_key(name, key)
                   for key in ("CPU", "CUDA")}
            for name in names if not name.startswith("fastfield::_")}


def ops() -> Dict[str, Dict[str, bool]]:
    """{'fastfield::op': {'CPU': has a CPU kernel, 'CUDA': has a CUDA kernel}} from the dispatcher."""
    load()
    return _dispatcher_table()


def built_with_cuda() -> bool:
    """True when the loaded library holds nvcc-compiled kernels (every op has a CUDA kernel)."""
    load()
    return bool(_CUDA_TABLE) and all(_CUDA_TABLE.values())


def require_device_kernel(op: str, tensor: torch.Tensor) -> None:
    """Raise a RuntimeError with the rebuild command when ``op`` has no kernel for the device of
    ``tensor`` (CUDA tensors with a CPU-only build). Called by the wrappers of fastfield.ops,
    whose import has loaded the kernels."""
    if tensor.device.type == "cuda" and not _CUDA_TABLE.get(f"fastfield::{op}", False):
        raise RuntimeError(
            f"fastfield.{op}: got CUDA tensors, but this fastfield build has no CUDA kernels "
            f"(loaded: {_LOADED}). Rebuild with: {REBUILD_HINT}")


def set_value_checks(mode: int) -> int:
    """Set when checks that read tensor data run; returns the previous mode.

    0 (default): on CPU tensors. 1 (or FASTFIELD_DEBUG=1): on every device, costing a device
    synchronisation per call on CUDA. -1: never -- for tests that feed invalid input to the
    kernels to show their index guards hold.
    """
    load()
    return torch.ops.fastfield._set_value_checks(mode)


@contextlib.contextmanager
def value_checks(mode: int) -> Iterator[None]:
    previous = set_value_checks(mode)
    try:
        yield
    finally:
        set_value_checks(previous)


def set_cpu_tile_emulation(width: int) -> int:
    """Test-only: run the CPU ops through the CUDA kernels' tile code, emulated on the CPU with
    ``width`` lanes in lock-step (1, 8 or 32; 0 switches back to the production CPU kernels).
    Returns the previous width.

    The CUDA kernels walk each ray with a tile of warp lanes (shuffle scans with a carried
    prefix, csrc/common/tile.h); the emulation runs that same code with each lane an array
    entry, so GPU-less tests execute the GPU's scans, carries and index guards (and
    stratified_samples' one thread per sample). It is slow (one item after the other) and
    process-wide: use ``cpu_tile_emulation`` in tests.
    """
    load()
    return torch.ops.fastfield._set_cpu_tile_emulation(width)


@contextlib.contextmanager
def cpu_tile_emulation(width: int) -> Iterator[None]:
    previous = set_cpu_tile_emulation(width)
    try:
        yield
    finally:
        set_cpu_tile_emulation(previous)


def set_cuda_tile_width(width: int) -> int:
    """For benchmarks: the lanes per ray of the CUDA kernels' tiles, 8 or 32 for every call, or
    0 (the default) for the choice by the rays' average length (csrc/common/tile.h). Returns the
    previous setting."""
    load()
    return torch.ops.fastfield._set_cuda_tile_width(width)
