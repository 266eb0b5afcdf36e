"""Figures that open the mean-field black box of the fully connected CRF (DeepLab Sec. 3.3):
the label probabilities Q after each update (as in the paper's Fig. 5, which shows them for an
aeroplane), the 1-D splat / blur / slice that the permutohedral lattice generalises
(``deeplab_ref.grid_filter``), and the mean-field objective step by step."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from deeplab_ref import grid_filter


def mean_field_steps_figure(
    image: np.ndarray,
    steps: Sequence[np.ndarray],
    reference: np.ndarray | None = None,
    label: int = 1,
    label_name: str = "label 1",
    shown: Sequence[int] = (0, 1, 2, 5),
) -> Figure:
    """The crop image (H, W, 3), optionally the reference labels (H, W), and Q(label) (H, W)
    after each of the mean-field steps ``shown`` (indices into steps, each Q (C, H, W); step 0
    is the network's probabilities), on one colour scale from 0 to 1 with its colour bar."""
    panels = 1 + (reference is not None) + len(shown)
    figure = Figure(figsize=(2.6 * panels + 0.8, 2.6), layout="constrained")
    axes = figure.subplots(1, panels)
    axes[0].imshow(image)
    axes[0].set_title("crop")
    first = 1
    if reference is not None:
        axes[1].imshow(reference == label, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
        axes[1].set_title(f"reference: {label_name}")
        first = 2
    picture = None
    for ax, k in zip(axes[first:], shown, strict=True):
        picture = ax.imshow(steps[k][label], cmap="magma", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title("network (step 0)" if k == 0 else f"after step {k}")
    for ax in axes:
        ax.set_axis_off()
    figure.colorbar(picture, ax=axes[first:], shrink=0.9, label=f"Q({label_name})")
    return figure


def grid_filter_steps(
    positions: np.ndarray, values: np.ndarray, spacing: float = grid_filter.LATTICE_SPACING
) -> dict[str, np.ndarray]:
    """Splat, blur and slice of values (N,) at positions (N,) on the 1-D grid, each step kept:
    ``nodes`` (M,), ``splatted`` and ``blurred`` (M,), and per point ``sliced``, ``grid`` (the
    normalised result, sliced / the slice of ones) and ``exact`` (the exact Gaussian filter,
    normalised the same way)."""
    splat = grid_filter.splat_matrix(positions, spacing)
    blur = grid_filter.blur_matrix(len(splat))
    splatted = splat @ values
    blurred = blur @ splatted
    sliced = grid_filter.LATTICE_SCALE * (splat.T @ blurred)
    ones = np.ones_like(values, dtype=np.float64)
    return {
        "nodes": grid_filter.grid_nodes(positions, spacing),
        "splatted": splatted,
        "blurred": blurred,
        "sliced": sliced,
        "grid": sliced / grid_filter.grid_filter(positions, ones, spacing),
        "exact": grid_filter.exact_filter(positions, values)
        / grid_filter.exact_filter(positions, ones),
    }


def grid_filter_figure(
    positions: np.ndarray, values: np.ndarray, spacing: float = grid_filter.LATTICE_SPACING
) -> Figure:
    """Left, top to bottom: the values at positions (in standard deviations) and what the splat
    puts on each node, the nodes after the blur, and the slice read back at the points
    (normalised by the slice of ones, as the CRF does) against the exact Gaussian filter
    normalised the same way. Right: the kernel the grid stands in for exp(-x^2 / 2), for a
    point on a node and one halfway between two nodes, with the area under each (the exact
    kernel's is sqrt(2 pi))."""
    steps = grid_filter_steps(positions, values, spacing)
    nodes = steps["nodes"]
    figure = Figure(figsize=(13, 5.2), layout="constrained")
    left, right = figure.subfigures(1, 2, width_ratios=[1.5, 1])
    splat_ax, blur_ax, slice_ax = left.subplots(3, 1, sharex=True)
    width = 0.35 * spacing
    splat_ax.bar(nodes, steps["splatted"], width=width, color="C0", label="node values")
    splat_ax.stem(positions, values, linefmt="k-", markerfmt="ko", basefmt=" ", label="points")
    splat_ax.set_title("1. splat: each point's value to its two nodes, by linear weights")
    blur_ax.bar(nodes, steps["blurred"], width=width, color="C1", label="node values")
    blur_ax.set_title("2. blur: [1/2, 1, 1/2] along the line, twice")
    slice_ax.plot(positions, steps["grid"], "C2s-", ms=4, label="grid (slice / slice of ones)")
    slice_ax.plot(positions, steps["exact"], "C3x--", ms=7, label="exact Gaussian (normalised)")
    slice_ax.plot(positions, values, "ko", ms=3, label="values")
    slice_ax.set_title("3. slice: each point reads its two nodes back")
    slice_ax.set_xlabel(f"position (standard deviations); nodes every {spacing:.3f}")
    for ax in (splat_ax, blur_ax, slice_ax):
        ax.set_xticks(nodes, [f"{n:.2f}" for n in nodes], fontsize=7)
        ax.grid(axis="x", alpha=0.4)
        ax.legend(fontsize=7, loc="upper right")
    ax = right.subplots()
    distance = np.linspace(-4.0, 4.0, 801)
    exact = np.exp(-0.5 * distance**2)
    ax.plot(distance, exact, "k-", lw=2, label=f"exact, area {np.trapezoid(exact, distance):.2f}")
    for origin, name in [(0.0, "point on a node"), (0.5 * spacing, "point halfway")]:
        kernel = grid_filter.grid_kernel(distance, spacing, origin=origin)
        area = np.trapezoid(kernel, distance)
        ax.plot(distance, kernel, label=f"grid, {name}, area {area:.2f}")
    ax.set_xlabel("distance (standard deviations)")
    ax.set_ylabel("weight")
    ax.set_title("the kernel the grid applies")
    ax.legend(fontsize=8)
    return figure


def objective_figure(objective: Sequence[float]) -> Figure:
    """The mean-field free energy (``DenseCRF.objective``) after each step."""
    figure = Figure(figsize=(5, 3), layout="constrained")
    ax = figure.subplots()
    ax.plot(np.arange(len(objective)), objective, "o-")
    ax.set_xlabel("mean-field step (0: the network's probabilities)")
    ax.set_ylabel("free energy")
    ax.set_title("free energy F(Q), self term kept")
    return figure
