"""The layers import only downward (ARCHITECTURE.md): every import between fastfield's top-level
parts follows the table below, checked statically for every module (lazy imports inside
functions included) and by importing each layer in a fresh interpreter; the pure-PyTorch layers
load no compiled code, and the kernels load on first use."""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fastfield"

# Top-level part of fastfield -> its layer. A new top-level module or package must be added
# here (and to ARCHITECTURE.md) with the layer it belongs to.
LAYER_OF = {
    "core": "core",
    "_build": "kernels", "_backend": "kernels", "ops": "kernels", "_C": "kernels",
    "reference": "reference",
    "fields": "fields",
    "render": "render",
    "occupancy": "fields",  # the grid is model state (a NeRF with sampler="occupancy" owns one)
    "mesh": "mesh",
    "data": "data",
    "capture": "capture",
    "config": "train", "train": "train",
    "app": "app", "__main__": "app",
}
# Layer -> the other layers its modules may import.
MAY_IMPORT = {
    "core": set(),
    "kernels": {"core"},
    "reference": {"core"},
    "fields": {"core", "kernels", "reference"},
    "render": {"core", "kernels", "reference", "fields"},
    "mesh": {"core"},
    "data": {"core", "reference"},
    "capture": {"core", "reference", "data"},
    "train": {"core", "kernels", "reference", "fields", "render", "mesh", "data"},
    "app": {"core", "kernels", "reference", "fields", "render", "mesh", "data", "capture",
            "train"},
}
# Layers that must load no compiled code when imported (every submodule of them).
KERNEL_FREE = ("core", "reference", "data")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path):
    """The fastfield modules ``path`` imports, relative imports resolved, with line numbers."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # `from . import x` may import a submodule x: count each name as prefix.x too.
            targets = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target == "fastfield" or target.startswith("fastfield."):
                yield target, node.lineno


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _top_level_parts():
    return sorted({p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
                   if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").is_file()))
                   and p.name != "__init__.py"})


def test_every_top_level_part_has_a_layer():
    unknown = [part for part in _top_level_parts() if part not in LAYER_OF]
    assert not unknown, f"add these to LAYER_OF (and ARCHITECTURE.md): {unknown}"


def test_imports_go_only_downward():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _module_name(path)
        if source == "fastfield":  # the package root re-exports lazily from every layer
            continue
        layer = LAYER_OF.get(_top(source))
        for target, line in _imported_modules(path):
            target_top = _top(target)
            if target_top not in LAYER_OF:  # `from fastfield import x`: x names a part below
                continue
            target_layer = LAYER_OF[target_top]
            if target_layer != layer and target_layer not in MAY_IMPORT[layer]:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {layer} imports {target} "
                             f"({target_layer})")
    assert not wrong, "\n".join(wrong)


_PROBE = r"""
import importlib, json, pkgutil, sys
import fastfield
baseline = sorted(m for m in sys.modules if m == "fastfield" or m.startswith("fastfield."))
for name in sys.argv[1:]:
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(getattr(package, "__path__", []), name + "."):
        importlib.import_module(info.name)
backend = sys.modules.get("fastfield._backend")
print(json.dumps({
    "baseline": baseline,
    "loaded": sorted(m for m in sys.modules if m == "fastfield" or m.startswith("fastfield.")),
    "kernels": None if backend is None else backend._LOADED,
}))
"""


def _probe(*modules):
    result = subprocess.run([sys.executable, "-c", _PROBE, *modules], capture_output=True,
                            text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("layer", sorted(MAY_IMPORT))
def test_a_layer_imported_alone_loads_only_what_it_may(layer):
    parts = [f"fastfield.{part}" for part in _top_level_parts()
             if LAYER_OF.get(part) == layer and part != "__main__"]
    if not parts:
        pytest.skip(f"no {layer} modules in this tree")
    probe = _probe(*parts)
    extra = set(probe["loaded"]) - set(probe["baseline"])
    allowed = MAY_IMPORT[layer] | {layer}
    wrong = sorted(m for m in extra if LAYER_OF.get(_top(m)) not in allowed)
    assert not wrong, f"importing the {layer} layer loaded {wrong}"
    if layer in KERNEL_FREE:
        assert probe["kernels"] is None, probe["kernels"]
        assert "fastfield._C" not in probe["loaded"]


def test_import_fastfield_loads_no_layer_and_no_kernels():
    probe = _probe()
    assert probe["kernels"] is None and "fastfield._C" not in probe["baseline"]
    assert {_top(m) for m in probe["baseline"]} <= {"", "core", "ops"}, probe["baseline"]
    assert "fastfield.ops.composite" not in probe["baseline"]  # wrappers load on first use


def test_kernels_load_on_first_op_use_and_the_op_list_works():
    code = r"""
import json, sys, torch
import fastfield
before = fastfield._backend._LOADED if "fastfield._backend" in sys.modules else None
cuda = fastfield.built_with_cuda()
table = fastfield._backend.ops()
out = fastfield.composite_density(torch.rand(2, 3), torch.rand(2, 3, 3), torch.full((2, 3), 0.1))
print(json.dumps({"before": before, "after": fastfield._backend._LOADED, "cuda": cuda,
                  "ops": sorted(table), "rgb": list(out.rgb.shape),
                  "callable_render": callable(fastfield.render)}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["before"] is None and probe["after"]
    assert isinstance(probe["cuda"], bool) and probe["rgb"] == [2, 3]
    assert "fastfield::composite_density_fwd" in probe["ops"]
    assert probe["callable_render"]
