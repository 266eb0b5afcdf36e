"""Figures for ASPP (DeepLab Sec. 3.2, Fig. 4): the head's diagram, each branch's field of view
over a photo, and each branch's score map before the sum."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle
from PIL import Image

from deeplab_ref.models.aspp import HEAD_RATES, branch_field_of_view


def sample_photo(size: int = 513) -> np.ndarray:
    """A real photo shipped with matplotlib (Grace Hopper), as a (size, size, 3) uint8 array."""
    from matplotlib import cbook

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as photo:
        side = min(photo.size)
        square = photo.crop((0, 0, side, side))  # her face is near the top
        return np.array(square.convert("RGB").resize((size, size), Image.BILINEAR))


def branch_taps(
    center: tuple[int, int], atrous_rate: int, kernel_size: int = 3, output_stride: int = 8
) -> np.ndarray:
    """(kernel_size**2, 2) image coordinates (row, col) that one branch's filter reads around
    ``center``: the taps are output_stride * rate image pixels apart."""
    step = output_stride * atrous_rate
    offsets = (np.arange(kernel_size) - (kernel_size - 1) / 2) * step
    rows, cols = np.meshgrid(center[0] + offsets, center[1] + offsets, indexing="ij")
    return np.stack([rows.ravel(), cols.ravel()], axis=1)


def aspp_fields_of_view_figure(
    atrous_rates: tuple[int, ...] = HEAD_RATES["aspp-l"], output_stride: int = 8
) -> Figure:
    """Each ASPP-L branch's 3x3 taps over a 513x513 photo at output stride 8."""
    photo = sample_photo(513)
    # A pale grey photo: the taps stand out and the figure file stays small.
    pale = photo.mean(axis=2).round(-1)
    center = (200, 256)
    colors = ("tab:red", "tab:orange", "tab:green", "tab:blue", "tab:purple", "tab:brown")
    figure = Figure(figsize=(3.2 * len(atrous_rates), 3.6))
    axes = figure.subplots(1, len(atrous_rates))
    for ax, rate, color in zip(np.atleast_1d(axes), atrous_rates, colors, strict=False):
        taps = branch_taps(center, rate, output_stride=output_stride)
        span = branch_field_of_view(rate, output_stride=output_stride)
        ax.imshow(pale, cmap="gray", vmin=-255, vmax=255)
        ax.add_patch(
            Rectangle(
                (center[1] - span / 2, center[0] - span / 2), span, span,
                fill=False, edgecolor=color, linestyle="--", linewidth=1.5,
            )
        )  # fmt: skip
        ax.scatter(taps[:, 1], taps[:, 0], s=36, color=color, edgecolor="white")
        ax.set_xlim(-0.5, photo.shape[1] - 0.5)
        ax.set_ylim(photo.shape[0] - 0.5, -0.5)
        ax.set_axis_off()
        ax.set_title(f"rate {rate}: taps {output_stride * rate} px apart,\nspan {span} px")
    figure.suptitle(
        f"ASPP branches over a {photo.shape[0]}x{photo.shape[1]} image at output stride "
        f"{output_stride}: one 3x3 filter each, the same 9 weights per channel"
    )
    return figure


def _box(ax, xy: tuple[float, float], text: str, width: float = 2.2, color: str = "0.9") -> None:
    ax.add_patch(Rectangle((xy[0] - width / 2, xy[1] - 0.35), width, 0.7, facecolor=color))
    ax.text(xy[0], xy[1], text, ha="center", va="center", fontsize=9)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color="0.3"))


def aspp_diagram_figure(
    atrous_rates: tuple[int, ...] = HEAD_RATES["aspp-l"], output_stride: int = 8
) -> Figure:
    """DeepLab-v2's ASPP: parallel atrous branches, each to class scores, summed (Fig. 4)."""
    figure = Figure(figsize=(10, 1.1 * len(atrous_rates) + 1))
    ax = figure.add_subplot()
    ys = np.linspace(len(atrous_rates) - 1, 0, len(atrous_rates)) * 1.1
    middle = float(ys.mean())
    _box(ax, (0.6, middle), f"features\noutput stride {output_stride}", width=1.8)
    for y, rate in zip(ys, atrous_rates, strict=True):
        span = branch_field_of_view(rate, output_stride=output_stride)
        _box(ax, (3.4, y), f"3x3 conv, rate {rate}\n(reach {span} px)", color="#dbe9f6")
        _box(ax, (6.2, y), "1x1 fc7 + fc8 (VGG)\nor none (ResNet)", color="#eeeeee")
        _arrow(ax, (1.5, middle), (2.3, y))
        _arrow(ax, (4.5, y), (5.1, y))
        _arrow(ax, (7.3, y), (8.05, middle))
    ax.add_patch(Rectangle((8.05, middle - 0.3), 0.6, 0.6, facecolor="#fde0c5"))
    ax.text(8.35, middle, "+", ha="center", va="center", fontsize=16)
    _arrow(ax, (8.65, middle), (9.2, middle))
    ax.text(9.25, middle, "class\nscores", va="center", fontsize=9)
    ax.set_xlim(-0.4, 10.2)
    ax.set_ylim(ys.min() - 0.6, ys.max() + 0.6)
    ax.set_axis_off()
    ax.set_title("DeepLab-v2 ASPP: each branch predicts class scores; the scores are summed")
    return figure


def branch_scores_figure(
    photo: np.ndarray, branch_maps: list[np.ndarray], atrous_rates: tuple[int, ...]
) -> Figure:
    """The photo, each branch's (h, w) score map for one class, and their sum."""
    panels = [*branch_maps, np.sum(branch_maps, axis=0)]
    titles = [f"branch rate {r}" for r in atrous_rates] + ["sum = ASPP output"]
    figure = Figure(figsize=(2.6 * (len(panels) + 1), 2.9))
    axes = figure.subplots(1, len(panels) + 1)
    axes[0].imshow(photo)
    axes[0].set_title("input")
    limit = max(float(np.abs(p).max()) for p in panels)
    for ax, panel, title in zip(axes[1:], panels, titles, strict=True):
        ax.imshow(panel, cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(title)
    for ax in axes:
        ax.set_axis_off()
    return figure
