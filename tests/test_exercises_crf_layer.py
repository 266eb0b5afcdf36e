"""Notebook 08's exercises held to the course's rule: each check fails on its stub and on a wrong
answer and passes the solution (``tests/test_exercises.py`` covers notebooks 01-06)."""

from pathlib import Path

import pytest
from test_exercises import NOTEBOOKS, exercises
from test_exercises import (
    test_check_fails_on_the_stub_and_a_wrong_answer_and_passes_the_solution as check_exercise,
)

NOTEBOOK = NOTEBOOKS / "08_crf_as_a_layer.ipynb"
EXERCISES = exercises(Path(NOTEBOOK))


def test_the_notebook_has_its_exercises():
    assert [e.function for e in EXERCISES] == ["crf_rnn_step", "adjoint_gap"]


@pytest.mark.parametrize("exercise", EXERCISES, ids=[e.function for e in EXERCISES])
def test_exercise(exercise, capsys):
    check_exercise(exercise, capsys)
