"""The enumerations that travel to the kernels as ints (csrc/ops.cpp), read from their one
table, csrc/common/enums.def, which also defines the C++ enum classes and range checks
(csrc/common/enums.h): Python names and C++ values cannot drift apart.

Each table maps a Python name to its int: ``CAMERA_CONVENTIONS`` (generate_rays' convention),
``SPHERE_BOUNDS`` (near_far_sphere's mode), ``JITTERS`` (stratified_samples' jitter).
"""
import re
from typing import Dict

from .sources import kernel_source_dir

ENUMS_FILE = "common/enums.def"
_DEFINE = re.compile(r"^#define FF_ENUM_(\w+)\(X\)(.*)$", re.MULTILINE)
_VALUE = re.compile(r"X\(\s*(\w+)\s*,\s*(-?\d+)\s*,\s*(\w+)\s*\)")


def read_tables(text: str) -> Dict[str, Dict[str, int]]:
    """{C++ enum type: {Python name: value}} from the text of enums.def."""
    text = re.sub(r"\\\n", " ", text)  # join continued lines
    tables = {}
    for define in _DEFINE.finditer(text):
        tables[define.group(1)] = {python: int(value)
                                   for _, value, python in _VALUE.findall(define.group(2))}
    return tables


def _load() -> Dict[str, Dict[str, int]]:
    path = kernel_source_dir() / ENUMS_FILE
    try:
        tables = read_tables(path.read_text())
    except OSError as error:
        raise ImportError(f"fastfield: cannot read the enumeration table {path}: {error}") from None
    missing = {"CameraConvention", "SphereBounds", "Jitter"} - set(tables)
    if missing:
        raise ImportError(f"fastfield: {path} lacks FF_ENUM_{sorted(missing)[0]}")
    return tables


TABLES = _load()
CAMERA_CONVENTIONS: Dict[str, int] = TABLES["CameraConvention"]
SPHERE_BOUNDS: Dict[str, int] = TABLES["SphereBounds"]
JITTERS: Dict[str, int] = TABLES["Jitter"]


def enum_value(op: str, name: str, value: str, table: Dict[str, int]) -> int:
    """The int of ``value`` in ``table``; else a ValueError naming the op, argument and choices."""
    try:
        return table[value]
    except (KeyError, TypeError):
        choices = ", ".join(repr(k) for k in table)
        message = f"fastfield.{op}: {name} must be one of {choices}, got {value!r}"
        raise ValueError(message) from None
