"""Figures for atrous convolution (DeepLab Sec. 3.1, Eq. 1, Fig. 1 and 2): the holes of a dilated
filter, and where its taps land on a feature map with zero padding."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from deeplab_ref.atrous import effective_kernel_size
from deeplab_ref.receptive_field import atrous_footprint, valid_taps
from deeplab_ref.viz.widgets import live_figure

READ_COLOUR = "#2b6cb0"  # a pixel a filter weight reads
HOLE_COLOUR = "white"  # a pixel inside the dilated kernel that no weight reads


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
    figure = Figure(figsize=(3 * len(rates), 3.6))
    axes = figure.subplots(1, len(rates))
    two_colours = ListedColormap([HOLE_COLOUR, READ_COLOUR])
    for ax, rate in zip(axes, rates, strict=True):
        ax.imshow(footprint_on_grid(kernel, rate, grid), cmap=two_colours, vmin=0, vmax=1)
        ax.set_xticks(np.arange(-0.5, grid, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, grid, 1), minor=True)
        ax.grid(which="minor", color="0.85", linewidth=0.5)
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        size = effective_kernel_size(kernel, rate)
        ax.set_title(f"rate {rate}: {kernel * kernel} weights,\nfield of view {size}x{size}")
    figure.legend(
        handles=[
            Patch(facecolor=READ_COLOUR, label="pixel read by a weight"),
            Patch(facecolor=HOLE_COLOUR, edgecolor="0.6", label="pixel skipped (a hole)"),
        ],
        loc="lower center",
        ncols=2,
        frameon=False,
    )
    figure.suptitle("Atrous convolution: the same filter with holes (DeepLab Eq. 1)")
    figure.subplots_adjust(bottom=0.12, top=0.78)
    return figure


def taps_on_map(row: int, col: int, rate: int, kernel: int = 3) -> np.ndarray:
    """The (row, column) of every tap of one output of a kernel x kernel filter at ``rate`` with
    "same" padding (p = r (k - 1) / 2), in the feature map's coordinates: (kernel * kernel, 2)
    ints, row-major; a coordinate below 0 or past the map's last pixel is a padding zero."""
    effective_kernel_size(kernel, rate)  # checks kernel and rate
    if kernel % 2 == 0:
        raise ValueError(f"'same' padding needs an odd kernel, got {kernel}")
    offsets = rate * (np.arange(kernel) - kernel // 2)
    rows, cols = np.meshgrid(row + offsets, col + offsets, indexing="ij")
    return np.stack([rows.ravel(), cols.ravel()], axis=1)


# The outputs whose taps footprint_on_map_figure draws, as functions of the map size.
_OUTPUTS = {
    "centre": lambda size: (size // 2, size // 2),
    "edge": lambda size: (0, size // 2),
    "corner": lambda size: (0, 0),
}
_OUTPUT_COLOURS = {"centre": "tab:green", "edge": "tab:orange", "corner": "tab:red"}


def footprint_on_map_figure(rate: int = 24, size: int = 41, kernel: int = 3) -> Figure:
    """A kernel x kernel filter at ``rate`` on a size x size feature map with "same" zero padding.

    Left: the padded map and the taps of three outputs (the centre, the middle of the top edge,
    the top-left corner): a dot where the tap reads the map, a cross where it reads a padding
    zero. Right: how many taps land on the map at every output position (``valid_taps``).
    """
    counts = valid_taps(rate, size, kernel)
    pad = rate * (kernel // 2)
    figure = Figure(figsize=(11.5, 6), layout="constrained")
    left, right = figure.subplots(1, 2)

    # The padded input: the map's pixels and the padding around it.
    canvas = np.zeros((size + 2 * pad, size + 2 * pad))
    canvas[pad : pad + size, pad : pad + size] = 1
    extent = (-pad - 0.5, size + pad - 0.5, size + pad - 0.5, -pad - 0.5)
    margin = 1.5  # room for the markers on the padding's outer edge
    left.imshow(canvas, cmap=ListedColormap(["white", "0.82"]), vmin=0, vmax=1, extent=extent)
    handles: list[Any] = [
        Patch(facecolor="0.82", label=f"the {size}x{size} map"),
        Patch(facecolor="white", edgecolor="0.6", label=f"zero padding ({pad} pixels)"),
    ]
    for name, where in _OUTPUTS.items():
        row, col = where(size)
        taps = taps_on_map(row, col, rate, kernel)
        inside = ((taps >= 0) & (taps < size)).all(axis=1)
        colour = _OUTPUT_COLOURS[name]
        left.scatter(taps[inside, 1], taps[inside, 0], s=36, color=colour, zorder=3)
        left.scatter(taps[~inside, 1], taps[~inside, 0], s=36, marker="x", color=colour, zorder=3)
        left.plot(col, row, "s", mfc="none", mec=colour, ms=11, zorder=4)
        handles.append(
            Line2D(
                [], [], marker="o", linestyle="none", color=colour,
                label=f"{name} output ({row}, {col}): {int(inside.sum())} of {kernel**2} on the map",
            )
        )  # fmt: skip
    handles.append(
        Line2D([], [], marker="x", linestyle="none", color="0.3", label="tap on a padding zero")
    )
    left.set_xlim(extent[0] - margin, extent[1] + margin)
    left.set_ylim(extent[2] + margin, extent[3] - margin)
    left.set_xlabel("column (map pixels)")
    left.set_ylabel("row")
    left.legend(
        handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=2
    )
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.yaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_title(
        f"{kernel}x{kernel} filter, rate {rate}: it spans {effective_kernel_size(kernel, rate)} "
        "pixels",
        fontsize=10,
    )

    colours = colormaps["cividis"].resampled(kernel * kernel)
    norm = BoundaryNorm(np.arange(0.5, kernel * kernel + 1), colours.N)
    image = right.imshow(counts, cmap=colours, norm=norm)
    figure.colorbar(
        image, ax=right, ticks=range(1, kernel * kernel + 1), label="taps on the map", shrink=0.8
    )
    right.set_xlabel("output column")
    right.set_ylabel("output row")
    right.set_title(
        f"taps on the map per output: {counts.mean() / kernel**2:.0%} on average,\n"
        f"{(counts == 1).mean():.0%} of the outputs keep only the centre tap",
        fontsize=10,
    )
    return figure


def footprint_widget(rate: int = 24, size: int = 41) -> Any:
    """A slider for the atrous rate and one for the feature map's size above
    ``footprint_on_map_figure``, redrawn when one is let go (``viz.widgets.live_figure``)."""
    import ipywidgets

    controls = {
        "rate": ipywidgets.IntSlider(
            value=rate, min=1, max=64, description="atrous rate", continuous_update=False
        ),
        "size": ipywidgets.IntSlider(
            value=size, min=5, max=97, description="map size", continuous_update=False
        ),
    }
    return live_figure(footprint_on_map_figure, controls)
