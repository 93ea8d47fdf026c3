"""Where the kernel sources are: fastfield/_csrc in an installed package (setup.py copies csrc/
there), ../csrc in a source tree. The kernels build from them on first import when pip built
none, and the enumeration table (common/enums.def) is read from them."""
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def kernel_source_dir() -> Path:
    """The folder holding ops.cpp and the op families; ImportError when there is none."""
    for candidate in (PACKAGE_DIR / "_csrc", PACKAGE_DIR.parent / "csrc"):
        if (candidate / "ops.cpp").is_file():
            return candidate
    raise ImportError("fastfield: no kernel sources (looked in "
                      f"{PACKAGE_DIR / '_csrc'} and {PACKAGE_DIR.parent / 'csrc'}); "
                      "reinstall with: pip install --no-build-isolation .")
