"""Builds fastfield and its kernels (fastfield._C) against the torch installed in this
environment: C++ CPU kernels always; CUDA kernels when torch is a CUDA build, CUDA_HOME resolves
and nvcc's major version matches torch's (see fastfield/_build.py). Install with

    pip install --no-build-isolation .        (or -e . for development)

Plain ``pip install .`` builds in an isolated environment without torch; the kernels are then
compiled on first import and cached (fastfield/_backend.py).
"""
import importlib.util
import shutil
import sys
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def _load_build_rules():
    spec = importlib.util.spec_from_file_location("fastfield_build", ROOT / "fastfield" / "_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithSources(build_py):
    """Ships csrc/ inside the package (fastfield/_csrc) so that an installed fastfield can
    compile its kernels on first import when pip built it without torch."""

    def run(self):
        super().run()
        shutil.copytree(ROOT / "csrc", Path(self.build_lib) / "fastfield" / "_csrc",
                        dirs_exist_ok=True)


def _extensions():
    try:
        import torch  # noqa: F401
        from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension
    except ImportError:
        print("fastfield: torch is not importable in this build environment (pip build "
              "isolation); the kernels will compile on first import. To build them now: "
              "pip install --no-build-isolation .", file=sys.stderr)
        return [], {}
    rules = _load_build_rules()
    cpp, cu = rules.kernel_sources(Path("csrc"))
    with_cuda, why = rules.cuda_build_decision()
    args = {"cxx": rules.CXX_FLAGS}
    if with_cuda:
        archs = rules.ensure_cuda_arch_list()
        print(f"fastfield: building CPU and CUDA kernels ({why}; architectures {archs})",
              file=sys.stderr)
        ext = CUDAExtension("fastfield._C", cpp + cu,
                            extra_compile_args={**args, "nvcc": rules.NVCC_FLAGS},
                            extra_link_args=rules.LINK_FLAGS)
    else:
        print(f"fastfield: building CPU kernels only ({why})", file=sys.stderr)
        ext = CppExtension("fastfield._C", cpp, extra_compile_args=args,
                           extra_link_args=rules.LINK_FLAGS)
    return [ext], {"build_ext": BuildExtension.with_options(use_ninja=True)}


ext_modules, cmdclass = _extensions()
# Plots, MP4 video and marching cubes; the tests exercise all three.
FULL_EXTRAS = ["matplotlib", "imageio-ffmpeg", "scikit-image"]
# `fastfield process` (structure from motion on your own photos): COLMAP's Python bindings,
# imported by that command only; video frames come through imageio-ffmpeg (in [full]).
CAPTURE_EXTRAS = ["pycolmap"]

setup(
    name="fastfield",
    version="0.1.0",
    description="NeRF and NeuS radiance fields on fused C++/CUDA kernels",
    python_requires=">=3.9",
    packages=find_packages(include=["fastfield", "fastfield.*"]),
    install_requires=["torch>=2.4", "numpy", "imageio", "tqdm"],
    extras_require={
        "full": FULL_EXTRAS,
        "capture": CAPTURE_EXTRAS,
        "test": ["pytest", "pytest-benchmark", "pytest-xdist", *FULL_EXTRAS],
    },
    entry_points={"console_scripts": ["fastfield = fastfield.app.cli:main"]},
    ext_modules=ext_modules,
    cmdclass={**cmdclass, "build_py": BuildPyWithSources},
)
