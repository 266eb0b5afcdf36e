"""The installed package is complete: a wheel built from the sources, installed on its own away
from the source tree, still runs the CRF example on pydensecrf's photos (package data)."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from deeplab_ref.crf.examples import FOLDER, example_path

ROOT = Path(__file__).resolve().parents[1]
# What the build reads: a copy of these keeps stale build/ or *.egg-info folders of the work tree
# out of the wheel, and the build's own outputs out of the work tree.
SOURCES = ["pyproject.toml", "README.md", "deeplab_ref"]
EXAMPLE_FILES = sorted(path.name for path in FOLDER.iterdir() if path.is_file())

# Run by the installed copy: where it was imported from, and the CRF on example 1's stride-8 scores.
CRF_EXAMPLE = """
import json, sys
import deeplab_ref
from deeplab_ref.viz.crf import before_after
result = before_after(1)
print(json.dumps({
    "file": deeplab_ref.__file__,
    "shape": list(result["after"].shape),
    **{key: value for key, value in result.items() if key.endswith("accuracy")},
}))
"""


def pip(*args: str, cwd: Path) -> None:
    """Run this interpreter's pip offline; fail with its output when it fails."""
    command = [sys.executable, "-m", "pip", *args, "--no-index", "--disable-pip-version-check"]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built, without build isolation, from a clean copy of the sources."""
    tmp = tmp_path_factory.mktemp("package")
    source = tmp / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    pip(
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--wheel-dir",
        str(tmp / "dist"),
        ".",
        cwd=source,
    )
    (built,) = (tmp / "dist").glob("deeplab_ref-*.whl")
    return built


def test_wheel_holds_the_crf_examples(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    missing = [n for n in EXAMPLE_FILES if f"deeplab_ref/crf/examples/{n}" not in names]
    assert not missing, f"{wheel.name} lacks the package data {missing}"


def test_installed_wheel_runs_the_crf_example(wheel, tmp_path):
    site = tmp_path / "site"
    pip("install", "--no-deps", "--target", str(site), str(wheel), cwd=tmp_path)
    # Only the installed copy on the path: cwd outside the repo, PYTHONPATH the target alone;
    # torch, numpy and the rest come from this interpreter's own site-packages.
    env = {**os.environ, "PYTHONPATH": str(site), "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-c", CRF_EXAMPLE],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert Path(result["file"]).resolve().is_relative_to(site.resolve()), result["file"]
    assert result["shape"] == [240, 320]
    # The CRF sharpens the blocky stride-8 labels: better overall and near the boundaries.
    assert result["after_accuracy"] > result["before_accuracy"] > 0.9
    assert result["after_band_accuracy"] > result["before_band_accuracy"] + 0.02


def test_a_missing_example_is_named(tmp_path):
    assert example_path("im1.png") == FOLDER / "im1.png"
    with pytest.raises(FileNotFoundError, match="im3.png"):
        example_path("im3.png")
    with pytest.raises(FileNotFoundError, match="anno1.png"):
        example_path("anno1.png", tmp_path)
