"""Regenerate every figure in ``figures/`` from the library: ``python -m deeplab_ref.figures``.

Each entry maps a file name to a function that returns a matplotlib figure. The functions live in
``deeplab_ref.viz`` and draw numbers the library computes, so the numbers can be tested.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from deeplab_ref.viz import aspp as viz_aspp  # noqa: E402
from deeplab_ref.viz import atrous as viz_atrous  # noqa: E402
from deeplab_ref.viz import crf as viz_crf  # noqa: E402
from deeplab_ref.viz import data as viz_data  # noqa: E402
from deeplab_ref.viz import receptive_field as viz_receptive_field  # noqa: E402

FIGURES: dict[str, Callable[[], Figure]] = {
    "atrous_rates.png": viz_atrous.atrous_rates_figure,
    "synthetic_samples.png": viz_data.synthetic_samples_figure,
    "aspp_diagram.png": viz_aspp.aspp_diagram_figure,
    "aspp_fields_of_view.png": viz_aspp.aspp_fields_of_view_figure,
    "crf_before_after.png": viz_crf.crf_before_after_figure,
    "crf_lattice.png": viz_crf.lattice_diagram_figure,
    "sparse_vs_dense.png": viz_receptive_field.sparse_vs_dense_figure,
    "field_of_view_vs_rate.png": viz_receptive_field.field_of_view_vs_rate_figure,
    "gridding.png": viz_receptive_field.gridding_figure,
    "effective_receptive_field.png": viz_receptive_field.effective_field_figure,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deeplab_ref.figures", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("figures"), help="output folder")
    parser.add_argument(
        "names", nargs="*", help=f"figures to make (default: all of {list(FIGURES)})"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(FIGURES))
    if unknown:
        parser.error(f"unknown figure(s) {unknown}; choose from {list(FIGURES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.names or FIGURES:
        figure = FIGURES[name]()
        figure.savefig(args.out / name, dpi=120, bbox_inches="tight")
        print(f"wrote {args.out / name}")


if __name__ == "__main__":
    main()
