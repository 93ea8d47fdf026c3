#!/usr/bin/env bash
# AddressSanitizer run of the CPU kernels: builds a private copy of the kernels with
# -fsanitize=address (compiled on import into a scratch cache; the installed extension is left
# alone) and runs the kernel tests, among them those that switch the value checks off so that
# bad offsets, camera ids and unsorted inputs reach the in-kernel index guards that protect the
# CUDA kernels. Any out-of-bounds read or write aborts the run with an ASan report.
#   bash tests/sanitize.sh [pytest -k expression]     (default: every kernel test)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python}"
LIBASAN="$(g++ -print-file-name=libasan.so)"
[ -f "$LIBASAN" ] || { echo "no libasan.so for g++ ($LIBASAN)" >&2; exit 2; }
# libstdc++ preloaded too: ASan intercepts __cxa_throw at start-up, and without the real one
# present then, the first C++ exception (every TORCH_CHECK error) aborts the interpreter.
LIBSTDCXX="$(g++ -print-file-name=libstdc++.so)"
export FASTFIELD_FORCE_JIT=1
export FASTFIELD_CACHE="${FASTFIELD_ASAN_CACHE:-$ROOT/build/asan-cache}"
# Python's allocator and torch are not instrumented: leaks and allocator mismatches there are
# not ours to report; out-of-bounds accesses in our kernels still abort.
export ASAN_OPTIONS="detect_leaks=0:alloc_dealloc_mismatch=0:abort_on_error=1"
LD_PRELOAD="$LIBASAN $LIBSTDCXX" "$PYTHON" - "${1:-}" <<'EOF'
import importlib.util, sys
from pathlib import Path
# Sanitizer flags for the build on import: fastfield._build is loaded (and patched) before the
# package, so the package's `from . import _build` finds this module.
spec = importlib.util.spec_from_file_location("fastfield._build", Path("fastfield/_build.py"))
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)
build.CXX_FLAGS = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address",
                   "-fno-trapping-math", *build._OPENMP]
build.LINK_FLAGS = ["-fsanitize=address", *build._OPENMP]
sys.modules["fastfield._build"] = build
import fastfield
print("kernels:", fastfield._backend.KERNELS, flush=True)
assert "compiled on import" in fastfield._backend.KERNELS
import pytest
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "tests/test_composite_density.py",
                      "tests/test_composite_sdf.py", "tests/test_pdf.py", "tests/test_rays.py",
                      "tests/test_sampling.py", "tests/test_enums.py", "-k", sys.argv[1]]))
EOF
