"""Figures for the datasets: label maps in VOC's colours and samples of the synthetic scenes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from deeplab_ref.data.synthetic import SyntheticSegmentation
from deeplab_ref.data.voc import voc_colormap


def colorize_label(label: np.ndarray) -> np.ndarray:
    """Class indices (H, W) to VOC's colours, uint8 (H, W, 3); 255 (void) is cream."""
    label = np.asarray(label)
    if not np.issubdtype(label.dtype, np.integer) or label.min() < 0 or label.max() > 255:
        raise ValueError("label must hold integer class indices in 0..255")
    return voc_colormap()[label]


def overlay(image: np.ndarray, label: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend the coloured label over a uint8 (H, W, 3) image, leaving background (0) as it is."""
    coloured = colorize_label(label).astype(np.float64)
    blended = image.astype(np.float64)
    foreground = np.asarray(label) != 0
    blended[foreground] = (1 - alpha) * blended[foreground] + alpha * coloured[foreground]
    return np.rint(blended).astype(np.uint8)


def class_legend(class_names: Sequence[str]) -> list[Patch]:
    """Legend entries: each class in its VOC colour, then void."""
    colours = voc_colormap() / 255
    entries = [Patch(color=colours[k], label=name) for k, name in enumerate(class_names)]
    return entries + [Patch(color=colours[255], label="void (ignored)")]


def synthetic_samples_figure(num_samples: int = 6, seed: int = 0) -> Figure:
    """The first training scenes of the synthetic dataset above their labels."""
    dataset = SyntheticSegmentation("train", seed=seed)
    figure = Figure(figsize=(2.2 * num_samples, 5.2))
    axes = figure.subplots(2, num_samples, squeeze=False)
    for index in range(num_samples):
        image, label = dataset.load_raw(index)
        axes[0, index].imshow(image)
        axes[1, index].imshow(colorize_label(label))
        axes[0, index].set_title(f"train #{index}")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("image")
    axes[1, 0].set_ylabel("label")
    figure.legend(
        handles=class_legend(dataset.class_names),
        loc="lower center",
        ncol=len(dataset.class_names) + 1,
        frameon=False,
    )
    figure.suptitle(
        "Synthetic scenes: the class is the shape and texture, never the colour; "
        "objects span an 8x range of sizes; a void band on every boundary"
    )
    figure.subplots_adjust(bottom=0.1, top=0.86, wspace=0.05, hspace=0.05)
    return figure
