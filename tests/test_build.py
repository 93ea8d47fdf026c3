"""How fastfield decides what to compile (fastfield/_build.py) and what the loaded library holds
(fastfield/_backend.py): the CUDA decision for every combination of torch build, toolkit and
nvcc version, the default architectures without a GPU, and the rebuild hint for CUDA tensors
reaching a build without CUDA kernels."""
import os
import types

import pytest
import torch
from torch.utils import cpp_extension

import fastfield
from fastfield import _backend, _build


@pytest.fixture
def toolkit(monkeypatch):
    """Set what cuda_build_decision sees: torch's CUDA version, its CUDA_HOME (a guess: the
    CUDA_HOME and CUDA_PATH variables are unset unless a test sets them), nvcc's release, and
    which roots hold a complete toolkit (by default CUDA_HOME itself)."""
    for name in ("FASTFIELD_NO_CUDA", "CUDA_HOME", "CUDA_PATH"):
        monkeypatch.setenv(name, "")  # so that monkeypatch restores whatever the build writes
        monkeypatch.delenv(name)

    def configure(torch_cuda, cuda_home, nvcc, complete=None):
        complete = {cuda_home} if complete is None else set(complete)
        monkeypatch.setattr(torch.version, "cuda", torch_cuda)
        monkeypatch.setattr(cpp_extension, "CUDA_HOME", cuda_home)
        monkeypatch.setattr(_build, "_nvcc_version", lambda home: nvcc)
        monkeypatch.setattr(_build, "_toolkit_complete", lambda home: home in complete)
    return configure


def test_cuda_is_built_when_torch_toolkit_and_nvcc_major_agree(toolkit):
    toolkit("13.0", "/usr/local/cuda", "13.0")
    with_cuda, why = _build.cuda_build_decision()
    assert with_cuda and "nvcc 13.0" in why


@pytest.mark.parametrize("torch_cuda, cuda_home, nvcc, fragment", [
    (None, "/usr/local/cuda", "13.0", "is a CPU build"),
    ("13.0", None, None, "set CUDA_HOME"),
    ("13.0", "/opt/broken", None, "no working nvcc under CUDA_HOME=/opt/broken"),
    ("12.8", "/usr/local/cuda", "13.0", "differ in major version"),
])
def test_cpu_only_build_says_why(toolkit, torch_cuda, cuda_home, nvcc, fragment):
    toolkit(torch_cuda, cuda_home, nvcc)
    with_cuda, why = _build.cuda_build_decision()
    assert not with_cuda and fragment in why


def test_an_incomplete_guessed_cuda_home_falls_back_to_the_usual_toolkit(toolkit):
    # An nvcc wrapper script in /usr/local/bin makes torch guess CUDA_HOME=/usr/local, which
    # holds no CUDA runtime to link against; /usr/local/cuda does.
    toolkit("13.0", "/usr/local", "13.0", complete={_build.FALLBACK_CUDA_HOME})
    with_cuda, why = _build.cuda_build_decision()
    assert with_cuda and "since torch's guess /usr/local has no CUDA runtime" in why
    assert cpp_extension.CUDA_HOME == os.environ["CUDA_HOME"] == _build.FALLBACK_CUDA_HOME


@pytest.mark.parametrize("user_variable", [None, "CUDA_HOME", "CUDA_PATH"])
def test_an_incomplete_cuda_home_without_fallback_builds_cpu_only(toolkit, monkeypatch,
                                                                 user_variable):
    # A CUDA_HOME the user chose is never overridden; nor is a guess when nothing is complete.
    complete = () if user_variable is None else {_build.FALLBACK_CUDA_HOME}
    toolkit("13.0", "/opt/partial", "13.0", complete=complete)
    if user_variable:
        monkeypatch.setenv(user_variable, "/opt/partial")
    with_cuda, why = _build.cuda_build_decision()
    assert not with_cuda and "CUDA_HOME=/opt/partial has no CUDA runtime" in why
    assert cpp_extension.CUDA_HOME == "/opt/partial"
    assert os.environ.get("CUDA_HOME") in (None, "/opt/partial")


@pytest.mark.parametrize("files, complete", [
    ((), False),
    (("include/cuda_runtime.h",), False),
    (("lib64/libcudart.so.13",), False),
    (("include/cuda_runtime.h", "lib64/libcudart.so.13"), True),
    (("include/cuda_runtime.h", "lib/libcudart.so"), True),
    (("targets/x86_64-linux/include/cuda_runtime.h", "targets/x86_64-linux/lib/libcudart.so"),
     True),
])
def test_a_toolkit_is_complete_with_the_runtime_header_and_library(tmp_path, files, complete):
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert _build._toolkit_complete(str(tmp_path)) is complete


def test_fastfield_no_cuda_forces_a_cpu_build(toolkit, monkeypatch):
    toolkit("13.0", "/usr/local/cuda", "13.0")
    monkeypatch.setenv("FASTFIELD_NO_CUDA", "1")
    assert _build.cuda_build_decision() == (False, "FASTFIELD_NO_CUDA=1")


def test_default_architectures_without_a_gpu(monkeypatch):
    # setenv first so that monkeypatch restores the variable's original state afterwards,
    # whatever ensure_cuda_arch_list writes into os.environ.
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "")
    monkeypatch.delenv("TORCH_CUDA_ARCH_LIST")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _build.ensure_cuda_arch_list() == _build.DEFAULT_CUDA_ARCHS == "8.0;8.6;9.0+PTX"
    assert os.environ["TORCH_CUDA_ARCH_LIST"] == "8.0;8.6;9.0+PTX"
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "9.0")
    assert _build.ensure_cuda_arch_list() == "9.0"  # the user's choice wins


def test_kernel_sources_are_every_cpp_and_cu_file():
    cpp, cu = _build.kernel_sources(_backend._source_dir())
    assert any(p.endswith("ops.cpp") for p in cpp) and all(p.endswith(".cpp") for p in cpp)
    assert cu and all(p.endswith(".cu") for p in cu)


def test_every_op_has_a_cpu_kernel_and_built_with_cuda_matches_the_dispatcher():
    table = _backend.ops()
    assert {"fastfield::composite_density_fwd", "fastfield::composite_sdf_bwd",
            "fastfield::generate_rays", "fastfield::sample_pdf",
            "fastfield::merge_sorted", "fastfield::frequency_encode_fwd",
            "fastfield::frequency_encode_bwd", "fastfield::frequency_encode_bwd_bwd"} <= set(table)
    assert all(keys["CPU"] for keys in table.values())
    assert fastfield.built_with_cuda() == all(keys["CUDA"] for keys in table.values())
    if torch.version.cuda is None:  # a CPU torch cannot have built CUDA kernels
        assert not fastfield.built_with_cuda()


def test_cuda_tensors_without_cuda_kernels_get_the_rebuild_command(monkeypatch):
    monkeypatch.setitem(_backend._CUDA_KERNELS, "fastfield::composite_density_fwd", False)
    on_cuda = types.SimpleNamespace(device=torch.device("cuda"))
    with pytest.raises(RuntimeError, match="has no CUDA kernels") as error:
        _backend.require_device_kernel("composite_density_fwd", on_cuda)
    assert _backend.REBUILD_HINT in str(error.value)
    # CPU tensors pass, and so do CUDA tensors once the kernel is registered.
    _backend.require_device_kernel("composite_density_fwd", torch.zeros(1))
    monkeypatch.setitem(_backend._CUDA_KERNELS, "fastfield::composite_density_fwd", True)
    _backend.require_device_kernel("composite_density_fwd", on_cuda)
