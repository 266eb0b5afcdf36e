"""Figures of a training run: the loss curve, predictions beside the truth with and without the
CRF, and the trimap curve of the paper's Fig. 10 (mean IoU within a band around the boundaries
against the band's width)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from deeplab_ref.viz.data import colorize_label


def loss_curve_figure(log: Sequence[dict]) -> Figure:
    """The training loss (summed over MSC outputs) and the poly learning rate per iteration."""
    iterations = [record["iteration"] for record in log]
    figure = Figure(figsize=(7, 3.2))
    loss_axis = figure.subplots()
    loss_axis.plot(iterations, [record["loss"] for record in log], color="C0")
    loss_axis.set_xlabel("iteration")
    loss_axis.set_ylabel("loss", color="C0")
    loss_axis.set_yscale("log")
    lr_axis = loss_axis.twinx()
    lr_axis.plot(iterations, [record["lr"] for record in log], color="C1")
    lr_axis.set_ylabel("learning rate (poly)", color="C1")
    figure.suptitle("Training loss and learning rate")
    return figure


def predictions_figure(
    samples: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
) -> Figure:
    """One row per (image, truth, network prediction, prediction after the CRF)."""
    titles = ("image", "truth (white: ignored)", "DeepLab", "DeepLab + CRF")
    figure = Figure(figsize=(10, 2.6 * len(samples)))
    axes = figure.subplots(len(samples), 4, squeeze=False)
    for row, sample in zip(axes, samples, strict=True):
        pictures = (sample[0], *(colorize_label(labels) for labels in sample[1:]))
        for ax, picture, title in zip(row, pictures, titles, strict=True):
            ax.imshow(picture, interpolation="nearest")
            ax.set_axis_off()
            ax.set_title(title, fontsize=9)
    return figure


def trimap_figure(
    widths: Sequence[float], curves: dict[str, Sequence[float]], metric: str = "mean IoU"
) -> Figure:
    """``metric`` (fractions, e.g. ``TrimapMeter.mean_iou``, the paper's Fig. 10, or its
    ``pixel_accuracy``) within ``width`` pixels of a boundary, one curve per method."""
    figure = Figure(figsize=(5.5, 3.5))
    ax = figure.subplots()
    for name, values in curves.items():
        ax.plot(widths, 100 * np.asarray(values), marker="o", ms=3, label=name)
    ax.set_xlabel("trimap band width (pixels)")
    ax.set_ylabel(f"{metric} within the band (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    figure.suptitle(f"{metric[0].upper()}{metric[1:]} near object boundaries")
    return figure
