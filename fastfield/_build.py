"""How fastfield's kernels are compiled: one answer for setup.py (pip) and for the build on
first import (``fastfield._backend``). Imports torch only inside functions, so setup.py can load
this file in an environment without torch.
"""
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Tuple

# Architectures compiled when no GPU is visible at build time (A100, A10/3090, H100 + PTX).
DEFAULT_CUDA_ARCHS = "8.0;8.6;9.0+PTX"

# -fno-trapping-math lets GCC if-convert the branch-free bulk passes and vectorise them; it
# changes no result (we never read floating-point exception flags). -fopenmp: at::parallel_for
# is an inline OpenMP loop (torch's CPU backend), serial unless the extension is built with it.
_OPENMP = ["-fopenmp"] if sys.platform.startswith("linux") else []
CXX_FLAGS = ["-O3", "-fno-trapping-math", *_OPENMP]
LINK_FLAGS = [*_OPENMP]
# --extended-lambda: the drivers hand the CUDA launcher `[=] __host__ __device__` lambdas
# (csrc/common/launch.h), as PyTorch's own gpu_kernel lambdas do. FASTFIELD_PTXAS_VERBOSE=1 makes
# ptxas print each kernel's registers, stack and spills (CI parses them: .ci/ptxas_report.py).
NVCC_FLAGS = ["-O3", "--extended-lambda",
              *(["-Xptxas=-v"] if os.environ.get("FASTFIELD_PTXAS_VERBOSE") == "1" else [])]


def kernel_sources(csrc: Path) -> Tuple[List[str], List[str]]:
    """(C++ sources, CUDA sources) under ``csrc``, sorted, as paths."""
    cpp = sorted(str(p) for p in csrc.rglob("*.cpp"))
    cu = sorted(str(p) for p in csrc.rglob("*.cu"))
    return cpp, cu


def _nvcc_version(cuda_home: str) -> Optional[str]:
    nvcc = Path(cuda_home) / "bin" / "nvcc"
    try:
        out = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    match = re.search(r"release (\d+\.\d+)", out)
    return match.group(1) if match else None


# Where torch looks last, and where we look when torch's guess holds no toolkit.
FALLBACK_CUDA_HOME = "/usr/local/cuda"


def _toolkit_complete(cuda_home: str) -> bool:
    """CUDA_HOME holds what a CUDA extension compiles and links against: the runtime's header
    and library (in include/ and lib64/ or lib/, or under targets/<arch>/ as conda lays them
    out). torch derives CUDA_HOME from the nvcc on PATH, so a wrapper script such as
    /usr/local/bin/nvcc makes it /usr/local, where nvcc runs but -lcudart fails to link."""
    root = Path(cuda_home)

    def found(*patterns: str) -> bool:
        return any(next(root.glob(pattern), None) is not None for pattern in patterns)

    return (found("include/cuda_runtime.h", "targets/*/include/cuda_runtime.h")
            and found("lib64/libcudart.so*", "lib/libcudart.so*", "targets/*/lib/libcudart.so*"))


def _locate_toolkit(cuda_home: str) -> Optional[str]:
    """A complete toolkit's root, or None: CUDA_HOME itself, or FALLBACK_CUDA_HOME when torch
    guessed CUDA_HOME (neither CUDA_HOME nor CUDA_PATH is set) and the guess is incomplete."""
    if _toolkit_complete(cuda_home):
        return cuda_home
    user_set = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if not user_set and _toolkit_complete(FALLBACK_CUDA_HOME):
        return FALLBACK_CUDA_HOME
    return None


def cuda_build_decision() -> Tuple[bool, str]:
    """(build CUDA kernels?, why) for the installed torch and toolkit.

    CUDA kernels are built when torch is a CUDA build, a complete toolkit is found (CUDA_HOME)
    and its nvcc has the major version torch was built with -- never gated on a visible GPU.
    FASTFIELD_NO_CUDA=1 forces a CPU-only build.
    """
    import torch
    from torch.utils import cpp_extension

    if os.environ.get("FASTFIELD_NO_CUDA") == "1":
        return False, "FASTFIELD_NO_CUDA=1"
    if torch.version.cuda is None:
        return False, f"torch {torch.__version__} is a CPU build"
    cuda_home = cpp_extension.CUDA_HOME
    if cuda_home is None:
        return False, (f"no CUDA toolkit found: set CUDA_HOME "
                       f"(e.g. CUDA_HOME={FALLBACK_CUDA_HOME})")
    guessed, cuda_home = cuda_home, _locate_toolkit(cuda_home)
    if cuda_home is None:
        return False, (f"CUDA_HOME={guessed} has no CUDA runtime (include/cuda_runtime.h, "
                       f"lib64/libcudart.so): set CUDA_HOME to the toolkit's root, e.g. "
                       f"CUDA_HOME={FALLBACK_CUDA_HOME}")
    nvcc = _nvcc_version(cuda_home)
    if nvcc is None:
        return False, f"no working nvcc under CUDA_HOME={cuda_home}"
    if nvcc.split(".")[0] != torch.version.cuda.split(".")[0]:
        return False, (f"nvcc {nvcc} (CUDA_HOME={cuda_home}) and torch's CUDA "
                       f"{torch.version.cuda} differ in major version, which torch refuses")
    why = f"nvcc {nvcc} for torch {torch.__version__} (CUDA {torch.version.cuda})"
    if cuda_home != guessed:
        # cpp_extension reads its CUDA_HOME when it builds: point it (and nvcc's children) here.
        os.environ["CUDA_HOME"] = cpp_extension.CUDA_HOME = cuda_home
        why += f"; CUDA_HOME={cuda_home}, since torch's guess {guessed} has no CUDA runtime"
    return True, why


def ensure_cuda_arch_list() -> str:
    """TORCH_CUDA_ARCH_LIST to compile for: the user's, torch's own choice for visible GPUs, or
    DEFAULT_CUDA_ARCHS when no GPU is visible (set in the environment and returned)."""
    import torch

    arch = os.environ.get("TORCH_CUDA_ARCH_LIST")
    if arch:
        return arch
    if torch.cuda.is_available():
        return "the visible GPUs' architectures"
    os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_CUDA_ARCHS
    return DEFAULT_CUDA_ARCHS
