"""CI check, run against a CUDA build of fastfield (torch==2.14.1, CUDA_HOME=/usr/local/cuda) on a
machine without a GPU: the library loads, was built with nvcc, and every fastfield operator has a
CUDA kernel registered with the dispatcher, compiled from a .cu file (no host-side stand-ins)."""
import re
import subprocess
import sys
from pathlib import Path

import torch

import fastfield
from fastfield import _backend


def main() -> int:
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}); fastfield kernels: {_backend.KERNELS}")
    library = Path(fastfield._C.__file__) if hasattr(fastfield, "_C") else None
    if library is None or "site-packages" not in str(library):
        print("FAIL: fastfield._C was not loaded from the installed package")
        return 1
    sections = subprocess.run(["readelf", "-S", "-W", str(library)], capture_output=True,
                              text=True, check=True).stdout
    fatbin = re.search(r"\.nv_fatbin\s+PROGBITS\s+\S+\s+\S+\s+([0-9a-f]+)", sections)
    if not fatbin or int(fatbin.group(1), 16) == 0:
        print(f"FAIL: {library.name} has no (or an empty) .nv_fatbin section: no device code")
        return 1
    print(f"device code: .nv_fatbin of {int(fatbin.group(1), 16)} bytes in {library.name}")
    table = _backend.ops()
    missing = [name for name, keys in table.items() if not (keys["CPU"] and keys["CUDA"])]
    for name, keys in table.items():
        print(f"  {name:40s} CPU={keys['CPU']} CUDA={keys['CUDA']}")
    if missing or not fastfield.built_with_cuda():
        print(f"FAIL: operators without a CPU or CUDA kernel: {missing}")
        return 1
    # CUDA registrations may only come from nvcc-compiled sources.
    csrc = Path(__file__).resolve().parents[1] / "csrc"
    host_side = [str(p) for p in csrc.rglob("*.cpp")
                 if re.search(r"TORCH_LIBRARY_IMPL\(\s*fastfield\s*,\s*CUDA", p.read_text())]
    if host_side:
        print(f"FAIL: CUDA kernels registered from host-compiled files: {host_side}")
        return 1
    print(f"OK: {len(table)} operators, each with CPU and CUDA kernels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
