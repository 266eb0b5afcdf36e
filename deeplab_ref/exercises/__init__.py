"""The course's exercises: the checks a student's code is held to.

Each exercise in a notebook is three code cells, in this order (markdown may sit between them):

1. the **stub**, tagged ``exercise``: a function with its signature and docstring whose body is
   ``raise NotImplementedError``; the student writes the body;
2. the **solution**, tagged ``solution``: the same function, written out. Instructors' copies run
   it; ``make student`` removes it (see ``deeplab_ref.exercises.student_copies``);
3. the **check**, tagged ``check``: it imports a check from this package and calls it on the
   student's function, e.g. ``check_output_size(output_size)``. A check compares the function
   with the library or a brute-force oracle on several inputs, raises ``ExerciseError`` (an
   ``AssertionError``) with a message a student can act on, and prints one line when all is well.

Stub, solution and check cells are self-contained: each imports what it uses, so a test can run
any of them on its own (``tests/test_exercises.py`` runs every check against its stub, a
deliberately wrong answer and the solution).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ExerciseError(AssertionError):
    """A student's answer is not right yet; the message says what differs."""


def attempt(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the student's ``function``; a stub still raising NotImplementedError becomes an
    ExerciseError that says so, any other exception one that names it."""
    name = getattr(function, "__name__", repr(function))
    try:
        return function(*args, **kwargs)
    except NotImplementedError as error:
        raise ExerciseError(
            f"{name} is not written yet: replace `raise NotImplementedError`"
        ) from error
    except ExerciseError:
        raise
    except Exception as error:
        raise ExerciseError(f"{name} raised {type(error).__name__}: {error}") from error


def expect(condition: bool, message: str) -> None:
    """Raise ExerciseError(message) unless ``condition`` holds."""
    if not condition:
        raise ExerciseError(message)


def passed(name: str, detail: str = "") -> None:
    """Print the line a check prints when the answer is right."""
    print(f"correct: {name}" + (f" ({detail})" if detail else ""))
