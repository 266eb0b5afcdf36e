"""environment.yml (for conda users) must ask for what pyproject.toml asks for."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI's
CONDA_NAMES = {"torch": "pytorch"}


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
