"""Student copies of the course: the notebooks without their solutions and outputs.

``python -m deeplab_ref.exercises.student_copies notebooks student`` (``make student``) writes,
for every notebook of the first folder, a copy into the second with the cells tagged
``solution`` removed and every output, execution count and run-time metadata cleared, so a
student starts from the stubs and runs each check cell on their own answer.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SOLUTION_TAG = "solution"


def cell_tags(cell: dict) -> list[str]:
    """The tags of a notebook cell (a dict as stored in the .ipynb JSON)."""
    return list(cell.get("metadata", {}).get("tags", []))


def student_copy(notebook: dict) -> dict:
    """``notebook`` (the .ipynb JSON) without solution cells, outputs or execution records."""
    cells = []
    for cell in notebook["cells"]:
        if SOLUTION_TAG in cell_tags(cell):
            continue
        cell = {**cell, "metadata": {k: v for k, v in cell["metadata"].items() if k != "execution"}}
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cells.append(cell)
    metadata = {k: v for k, v in notebook.get("metadata", {}).items() if k != "widgets"}
    return {**notebook, "cells": cells, "metadata": metadata}


def write_student_copies(source: Path, destination: Path) -> list[Path]:
    """Write a student copy of every ``source/*.ipynb`` into ``destination``; returns the paths."""
    source, destination = Path(source), Path(destination)
    notebooks = sorted(source.glob("*.ipynb"))
    if not notebooks:
        raise ValueError(f"no notebooks (*.ipynb) in {source}")
    if destination.resolve() == source.resolve():
        raise ValueError(f"the student copies would overwrite the notebooks in {source}")
    destination.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        copy = student_copy(json.loads(path.read_text(encoding="utf-8")))
        target = destination / path.name
        target.write_text(json.dumps(copy, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deeplab_ref.exercises.student_copies", description=__doc__.split("\n")[0]
    )
    parser.add_argument("source", type=Path, help="folder of the course's notebooks")
    parser.add_argument("destination", type=Path, help="folder for the student copies")
    args = parser.parse_args(argv)
    try:
        for path in write_student_copies(args.source, args.destination):
            print(f"wrote {path}")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
