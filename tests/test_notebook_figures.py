"""Every figure a notebook makes is shown and stored: a cell that draws one must keep an
``image/png`` output (nbval compares text only, so a figure that never rendered would pass it),
and the README's figures exist.

A cell draws a figure when it calls a ``*_figure(`` function, ``plt.subplots``/``plt.figure`` or
``Figure(``. Exercise stubs are left out (a student's cell has no output yet).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
DRAWS = re.compile(r"\w+_figure\(|plt\.subplots\(|plt\.figure\(|\bFigure\(")
# A figure returned with ";" (or assigned and never displayed) shows nothing in Jupyter.
HIDDEN = re.compile(r"_figure\([^\n]*\);\s*$", re.MULTILINE)


def _figure_cells(path: Path) -> list[tuple[int, str, dict]]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [
        (index, "".join(cell["source"]), cell)
        for index, cell in enumerate(cells)
        if cell["cell_type"] == "code"
        and "exercise" not in cell.get("metadata", {}).get("tags", [])
        and DRAWS.search("".join(cell["source"]))
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_cell_that_draws_stores_its_picture(path):
    missing = []
    for index, source, cell in _figure_cells(path):
        pictures = [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        if not pictures or HIDDEN.search(source):
            missing.append(f"cell {index}: {source.strip().splitlines()[0][:70]}")
    assert not missing, f"{path.name}: figures drawn but not stored: {missing}"


def test_the_course_draws_figures():
    assert sum(len(_figure_cells(p)) for p in NOTEBOOKS) >= 20


def test_readme_figures_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert images, "the README shows figures"
    missing = [name for name in images if not (ROOT / name).is_file()]
    assert not missing, f"README.md shows figures that are not in the repository: {missing}"
