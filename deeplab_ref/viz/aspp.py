"""Figures for ASPP (DeepLab Sec. 3.2, Fig. 4): the head's diagram, each branch's field of view
over a photo, and each branch's class-score maps before the sum."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle
from PIL import Image

from deeplab_ref.models.aspp import HEAD_RATES, branch_field_of_view
from deeplab_ref.viz.data import class_legend, colorize_label


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
        _box(ax, (3.4, y), f"3x3 conv, rate {rate}\n(span {span} px)", color="#dbe9f6")
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


def branch_class_scores_figure(
    image: np.ndarray,
    label: np.ndarray,
    branch_scores: list[np.ndarray],
    atrous_rates: tuple[int, ...],
    class_names: tuple[str, ...] | list[str],
) -> Figure:
    """Each branch's class scores and their sum, for one image (black: the label's outline of
    the row's class).

    Top row: the image (H, W, 3) uint8, its label (H, W) and the prediction (the arg max of the
    summed scores), in VOC's colours with a class legend. Below, one row per class: each
    branch's (h, w) score map for that class, on one colour scale (symmetric about 0, with its
    colour bar), and their sum (the head's output) on a scale of its own. ``branch_scores``: one
    (K, h, w) array per branch, in the order of ``atrous_rates``.
    """
    scores = np.stack([np.asarray(s, dtype=np.float64) for s in branch_scores])  # (B, K, h, w)
    total = scores.sum(axis=0)
    n_classes = total.shape[0]
    if len(class_names) != n_classes or len(atrous_rates) != len(scores):
        raise ValueError(
            f"got {len(scores)} branches for {len(atrous_rates)} rates and {n_classes} classes "
            f"for {len(class_names)} names"
        )
    n_branches = len(scores)
    # Branch maps, their colour bar, a spacer, the sum and its colour bar; a fixed grid (no layout
    # engine) keeps drawing quick.
    ratios = [1.0] * n_branches + [0.08, 0.3, 1.0, 0.08]
    figure = Figure(figsize=(2.2 * (n_branches + 1) + 1.6, 2.1 * (n_classes + 1) + 0.5))
    grid = figure.subplots(n_classes + 1, len(ratios), squeeze=False, width_ratios=ratios)
    figure.subplots_adjust(left=0.07, right=0.93, top=0.93, bottom=0.01, wspace=0.1, hspace=0.15)
    branch_bar, spacer, sum_column, sum_bar = n_branches, n_branches + 1, n_branches + 2, -1
    extent = (-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5)
    header = [
        (image, "validation image"),
        (colorize_label(np.asarray(label)), "its label"),
        (colorize_label(total.argmax(axis=0)), "prediction (arg max of the sum)"),
    ]
    for ax, (picture, title) in zip(grid[0], header, strict=False):
        ax.imshow(picture, extent=extent)
        ax.set_title(title, fontsize=9)
    for ax in [*grid[0, len(header) :], *grid[1:, spacer]]:
        ax.set_visible(False)
    for k in range(n_classes):
        row = grid[k + 1]
        limit = max(float(np.abs(scores[:, k]).max()), 1e-6)
        for b in range(n_branches):
            shown = row[b].imshow(
                scores[b, k], cmap="RdBu_r", vmin=-limit, vmax=limit, extent=extent
            )
        figure.colorbar(shown, cax=row[branch_bar], label="branch score")
        limit = max(float(np.abs(total[k]).max()), 1e-6)
        shown = row[sum_column].imshow(
            total[k], cmap="RdBu_r", vmin=-limit, vmax=limit, extent=extent
        )
        figure.colorbar(shown, cax=row[sum_bar], label="summed score")
        mask = np.asarray(label) == k
        if mask.any() and not mask.all():  # the label's outline of class k on each map
            rows, columns = np.arange(mask.shape[0]), np.arange(mask.shape[1])
            for ax in [*row[:n_branches], row[sum_column]]:
                ax.contour(columns, rows, mask.astype(float), levels=[0.5], colors="k",
                           linewidths=0.8)  # fmt: skip
        row[0].set_ylabel(f"score of\n{class_names[k]}", fontsize=9)
    titles = [f"branch, rate {r}" for r in atrous_rates] + ["sum = ASPP output"]
    for ax, title in zip([*grid[1, :n_branches], grid[1, sum_column]], titles, strict=True):
        ax.set_title(title, fontsize=9)
    for ax in [*grid[:, :n_branches].flat, *grid[:, sum_column]]:
        ax.set_xticks([])
        ax.set_yticks([])
    figure.legend(
        handles=class_legend(class_names), loc="upper center", ncol=n_classes + 1,
        frameon=False, fontsize=9,
    )  # fmt: skip
    return figure
