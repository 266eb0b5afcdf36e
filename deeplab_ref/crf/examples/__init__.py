"""pydensecrf's example photos, coarse annotations and published CRF results (MIT licence:
LICENSE.pydensecrf and README.md in this folder).

They ship inside the package, declared as package data in pyproject.toml, so that the CRF
figures, notebook 05, the tests and the benchmark find them in an installed copy as well as in
the source tree. Read them through ``example_path``.
"""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parent


def example_path(name: str, folder: Path = FOLDER) -> Path:
    """The path of example file ``name`` (e.g. ``"im1.png"``) in ``folder``, by default the
    package's own copy. Raises FileNotFoundError naming the file when it is not there, e.g. in
    an installed copy built without its package data."""
    path = Path(folder) / name
    if not path.is_file():
        raise FileNotFoundError(f"CRF example {name!r} is missing: no file {path}")
    return path
