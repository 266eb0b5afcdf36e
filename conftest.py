"""Shared pytest set-up for tests/ and the notebooks under nbval."""

import os

import matplotlib

# No screen in CI: draw off-screen, in the test process and in notebook kernels alike.
os.environ.setdefault("MPLBACKEND", "Agg")
matplotlib.use("Agg")


def pytest_collectstart(collector):
    # Progress bars and library warnings go to stderr and change between versions:
    # nbval compares only what a checked cell prints to stdout.
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)
