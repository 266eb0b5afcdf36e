"""environment.yml (for conda users) must ask for what pyproject.toml asks for, and the Python
minimum that pyproject.toml declares must run the code (this file itself needs 3.11's tomllib)."""

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI's
CONDA_NAMES = {"torch": "pytorch"}
# Standard-library modules that not every Python 3 has, with the release that added them. Add one
# here when the code starts importing it.
NEW_STDLIB = {"tomllib": (3, 11)}


def parse_requirement(text: str) -> tuple[str, str]:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", text)
    assert match, f"cannot parse requirement {text!r}"
    return match.group(1).lower(), match.group(2).replace(" ", "")


def environment_requirements() -> dict[str, str]:
    """Requirements listed in environment.yml, conda and pip sections alike, by PyPI name."""
    pypi_names = {conda: pypi for pypi, conda in CONDA_NAMES.items()}
    found = {}
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("\ndependencies:\n", 1)[1].splitlines():
        item = re.fullmatch(r"\s*-\s+(\S[^#]*?)\s*", line)
        if not item or item.group(1).startswith("-e") or item.group(1).endswith(":"):
            continue
        name, spec = parse_requirement(item.group(1))
        found[pypi_names.get(name, name)] = spec
    return found


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    wanted = dict(parse_requirement(text) for text in wanted)
    found = environment_requirements()
    found.pop("pip")
    python = found.pop("python")
    assert python == project["requires-python"]
    assert found == wanted


def imported_modules(*folders: str) -> set[str]:
    """Top-level names of the modules imported by the .py files under ``folders``."""
    names = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names.add(node.module.split(".")[0])
    return names


def test_requires_python_has_the_stdlib_the_code_imports():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = pyproject["project"]["requires-python"]
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)", declared)
    assert match, f"requires-python {declared!r} is not a plain lower bound >=X.Y"
    minimum = (int(match.group(1)), int(match.group(2)))
    used = imported_modules("deeplab_ref", "tests", "benchmarks") & NEW_STDLIB.keys()
    too_new = {name: NEW_STDLIB[name] for name in used if NEW_STDLIB[name] > minimum}
    assert not too_new, f"requires-python {declared!r}, but the code imports {too_new}"
    # ruff's pyupgrade rules and the declared minimum speak of the same Python
    assert pyproject["tool"]["ruff"]["target-version"] == f"py{minimum[0]}{minimum[1]}"
