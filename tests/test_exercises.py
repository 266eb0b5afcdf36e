"""The course's exercises as a teacher needs them: every check fails on its stub and on a wrong
answer, passes with the solution, and the student copies hold no solution.

An exercise is a stub cell (tag ``exercise``), a solution cell (tag ``solution``) and a check cell
(tag ``check``), in that order; see ``deeplab_ref.exercises``. The wrong answers live in
``tests/wrong_answers/<notebook>.py``.
"""

from __future__ import annotations

import ast
import json
import runpy
from dataclasses import dataclass
from pathlib import Path

import pytest

from deeplab_ref.exercises import ExerciseError
from deeplab_ref.exercises.student_copies import cell_tags, write_student_copies

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
WRONG_ANSWERS = Path(__file__).resolve().parent / "wrong_answers"
COURSE = sorted(p for p in NOTEBOOKS.glob("0[1-6]_*.ipynb"))


@dataclass
class Exercise:
    notebook: str
    stub: str
    solution: str
    check: str

    @property
    def function(self) -> str:
        names = [n.name for n in ast.parse(self.stub).body if isinstance(n, ast.FunctionDef)]
        assert len(names) == 1, f"{self.notebook}: a stub defines one function, got {names}"
        return names[0]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def exercises(path: Path) -> list[Exercise]:
    """The exercises of one notebook, each from its stub, solution and check cells."""
    found, pending = [], {}
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        tags = cell_tags(cell)
        for tag in ("exercise", "solution", "check"):
            if tag in tags:
                assert cell["cell_type"] == "code", f"{path.name}: a {tag} cell must be code"
                expected = {"exercise": set(), "solution": {"exercise"}}.get(
                    tag, {"exercise", "solution"}
                )
                assert set(pending) == expected, (
                    f"{path.name}: {tag} cell out of order: {_source(cell)[:80]!r}"
                )
                pending[tag] = _source(cell)
        if "check" in tags:
            found.append(
                Exercise(path.stem, pending["exercise"], pending["solution"], pending["check"])
            )
            pending = {}
    assert not pending, f"{path.name}: an exercise without its check cell"
    return found


# Every notebook's exercises are checked; the six main ones must have at least two each.
ALL = [exercise for path in sorted(NOTEBOOKS.glob("*.ipynb")) for exercise in exercises(path)]


def _run(*sources: str) -> None:
    namespace: dict = {}
    for source in sources:
        exec(compile(source, "<cell>", "exec"), namespace)  # noqa: S102 - the course's own cells


def test_the_course_has_its_exercises():
    per_notebook = {path.stem: sum(e.notebook == path.stem for e in ALL) for path in COURSE}
    assert len(COURSE) == 6, [p.name for p in COURSE]
    assert all(count >= 2 for count in per_notebook.values()), per_notebook
    assert len(ALL) >= 12, per_notebook


@pytest.mark.parametrize("exercise", ALL, ids=[f"{e.notebook}:{e.function}" for e in ALL])
def test_check_fails_on_the_stub_and_a_wrong_answer_and_passes_the_solution(exercise, capsys):
    assert "raise NotImplementedError" in exercise.stub
    assert "NotImplementedError" not in exercise.solution
    assert "deeplab_ref.exercises" in exercise.check, "a check calls the library's check"
    with pytest.raises(ExerciseError):
        _run(exercise.stub, exercise.check)
    wrong = runpy.run_path(str(WRONG_ANSWERS / f"{exercise.notebook}.py"))["WRONG_ANSWERS"]
    assert exercise.function in wrong, f"no wrong answer for {exercise.function}"
    with pytest.raises(ExerciseError):
        _run(wrong[exercise.function], exercise.check)
    _run(exercise.solution, exercise.check)
    assert "correct" in capsys.readouterr().out


def test_student_copies_hold_stubs_but_no_solution_or_output(tmp_path):
    written = write_student_copies(NOTEBOOKS, tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    for path in written:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        assert not any("solution" in cell_tags(c) for c in cells), path.name
        assert all(not c.get("outputs") for c in cells if c["cell_type"] == "code"), path.name
    solutions = [e.solution for e in ALL]
    copied = "".join(p.read_text(encoding="utf-8") for p in written)
    assert not any(json.dumps(s)[1:-1] in copied for s in solutions)
    assert copied.count('"exercise"') >= len(ALL), "every stub is in the student copies"


def test_student_copies_refuse_to_overwrite_the_course(tmp_path):
    with pytest.raises(ValueError, match="overwrite"):
        write_student_copies(NOTEBOOKS, NOTEBOOKS)
    with pytest.raises(ValueError, match="no notebooks"):
        write_student_copies(tmp_path, tmp_path / "out")
