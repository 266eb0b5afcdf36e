"""From stride-8 scores to a label map (Sec. 3.1): the network's class scores come out on a grid 8
times coarser than the image, are interpolated bilinearly to the image's size (corners aligned,
``models.upsample_scores``, as evaluation does) and the argmax over the classes is the
prediction. The figure shows one class's scores before and after the interpolation and the
labels each gives."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from deeplab_ref.models import upsample_scores
from deeplab_ref.viz.data import class_legend, colorize_label


@torch.no_grad()
def upsampling_example(
    model: torch.nn.Module, image: torch.Tensor, class_index: int
) -> dict[str, np.ndarray]:
    """The scores of ``model`` (put in eval mode) for one normalised image (3, H, W).

    Returns ``scores`` (K, h, w) at output stride 8, ``upsampled`` (K, H, W) (bilinear, corners
    aligned), ``coarse_labels`` (h, w) and ``labels`` (H, W), the argmax of each, and
    ``class_index``, the class whose scores the figure draws.
    """
    if image.ndim != 3:
        raise ValueError(f"image must be (3, H, W), got shape {tuple(image.shape)}")
    model.eval()
    scores = model(image[None])
    if not 0 <= class_index < scores.shape[1]:
        raise ValueError(f"class_index must be in 0..{scores.shape[1] - 1}, got {class_index}")
    upsampled = upsample_scores(scores, tuple(image.shape[-2:]))
    return {
        "scores": scores[0].numpy(),
        "upsampled": upsampled[0].numpy(),
        "coarse_labels": scores[0].argmax(0).numpy(),
        "labels": upsampled[0].argmax(0).numpy(),
        "class_index": np.array(class_index),
    }


def upsampling_figure(
    raw_image: np.ndarray, example: dict[str, np.ndarray], class_names: Sequence[str]
) -> Figure:
    """Five panels: the image; one class's stride-8 scores and the same upsampled (one colour
    bar for both); the argmax of the stride-8 scores and of the upsampled ones (a class legend).

    Args:
        raw_image: uint8 (H, W, 3), the image the scores are of.
        example: from ``upsampling_example``.
        class_names: one name per class, background first.
    """
    scores, upsampled = example["scores"], example["upsampled"]
    k = int(example["class_index"])
    (height, width), (h, w) = upsampled.shape[1:], scores.shape[1:]
    low = min(scores[k].min(), upsampled[k].min())
    high = max(scores[k].max(), upsampled[k].max())
    figure = Figure(figsize=(14, 3.6), layout="constrained")
    axes = figure.subplots(1, 5)
    axes[0].imshow(raw_image)
    axes[0].set_title(f"image {height}x{width}", fontsize=9)
    shown = None
    for ax, values, title in [
        (axes[1], scores[k], f"'{class_names[k]}' scores, {h}x{w} (stride 8)"),
        (axes[2], upsampled[k], f"the same, bilinear to {height}x{width}"),
    ]:
        shown = ax.imshow(values, cmap="viridis", vmin=low, vmax=high, interpolation="nearest")
        ax.set_title(title, fontsize=9)
    figure.colorbar(shown, ax=axes[1:3], shrink=0.8, label=f"score of '{class_names[k]}'")
    axes[3].imshow(colorize_label(example["coarse_labels"]), interpolation="nearest")
    axes[3].set_title(f"argmax of the {h}x{w} scores", fontsize=9)
    axes[4].imshow(colorize_label(example["labels"]), interpolation="nearest")
    axes[4].set_title(f"argmax after upsampling ({height}x{width})", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    figure.legend(
        handles=class_legend(class_names)[:-1], loc="outside lower center", ncol=len(class_names)
    )
    return figure
