"""What `pip install .` ships: setup.py lists packages with find_packages, which skips a folder
without an __init__.py; such a folder works from the source tree (a namespace package) and is
missing from the wheel, so the installed fastfield fails to import."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_python_folder_of_fastfield_is_a_package():
    package = ROOT / "fastfield"
    folders = {path.parent for path in package.rglob("*.py") if "__pycache__" not in path.parts}
    missing = sorted(str(folder.relative_to(ROOT)) for folder in folders
                     if not (folder / "__init__.py").is_file())
    assert not missing, f"add an __init__.py (setup.py's find_packages skips them): {missing}"
