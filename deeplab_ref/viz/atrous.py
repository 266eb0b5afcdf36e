"""Figures for atrous convolution (DeepLab Sec. 3.1, Fig. 1 and 2)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from deeplab_ref.atrous import effective_kernel_size
from deeplab_ref.receptive_field import atrous_footprint


def footprint_on_grid(kernel: int, rate: int, grid: int) -> np.ndarray:
    """The input pixels one output of a kernel x kernel filter at ``rate`` reads, centred in a
    grid x grid canvas (1 = read, 0 = skipped). grid must hold the dilated kernel."""
    taps = atrous_footprint([rate], kernel)
    size = len(taps)
    if size > grid:
        raise ValueError(f"grid={grid} cannot hold a {size}x{size} dilated kernel")
    canvas = np.zeros((grid, grid))
    start = (grid - size) // 2
    canvas[start : start + size, start : start + size] = taps
    return canvas


def atrous_rates_figure(rates: tuple[int, ...] = (1, 2, 4, 8), kernel: int = 3) -> Figure:
    """One 3x3 filter at several rates: same 9 weights, a field of view of r (k - 1) + 1 pixels."""
    grid = effective_kernel_size(kernel, max(rates)) + 2
    figure = Figure(figsize=(3 * len(rates), 3.3))
    axes = figure.subplots(1, len(rates))
    for ax, rate in zip(axes, rates, strict=True):
        ax.imshow(footprint_on_grid(kernel, rate, grid), cmap="Blues", vmin=0, vmax=1.3)
        ax.set_xticks(np.arange(-0.5, grid, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, grid, 1), minor=True)
        ax.grid(which="minor", color="0.85", linewidth=0.5)
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        size = effective_kernel_size(kernel, rate)
        ax.set_title(f"rate {rate}: {kernel * kernel} weights,\nfield of view {size}x{size}")
    figure.suptitle("Atrous convolution: the same filter with holes (DeepLab Eq. 1)")
    return figure
