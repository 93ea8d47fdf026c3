"""The README's Python snippets run as written (so they cannot rot), and its two commands are the
ones CI runs."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_python_snippets_run(capsys):
    blocks = python_blocks()
    assert blocks, "README.md has no python snippet"
    namespace = {}
    for code in blocks:
        exec(compile(code, str(README), "exec"), namespace)
    assert "torch.Size([4096, 3])" in capsys.readouterr().out


def test_readme_has_the_two_ci_commands():
    text = README.read_text()
    for marker, must_contain in (("ci:main", "fastfield demo"), ("ci:tests", "pytest")):
        match = re.search(rf"<!-- {marker} -->\s*```bash\n(.+?)\n", text)
        assert match, f"README.md lacks the {marker} command"
        assert must_contain in match.group(1)
        assert "python3 -m venv" in match.group(1)
