"""Reporting evaluation results: the Markdown table the command line and the demo print, and
prediction samples for the figures.

The table gives, per method (the network alone, then with the CRF), the pixel accuracy, the mean
class accuracy and the mIoU over the split, and the trimap: the mean IoU within bands of a few
widths around the boundaries (the paper's metric in Fig. 10), with the pixel accuracy there
beside it; then the IoU of every class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from deeplab_ref.crf import dense_crf
from deeplab_ref.evaluate import SplitScores, predict_probabilities

# Band widths (pixels) the command line and the demo score; the table shows a few of them.
TRIMAP_WIDTHS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20)
TABLE_WIDTHS = (1, 3, 5, 10, 20)
METHOD_NAMES = {"network": "DeepLab", "crf": "DeepLab + CRF"}


def method_name(key: str) -> str:
    """How the table and the figures call a method's results ("network" -> "DeepLab")."""
    return METHOD_NAMES.get(key, key)


def results_table(results: dict[str, SplitScores], class_names: Sequence[str]) -> str:
    """A Markdown table: the summary metrics per method, then the per-class IoU."""
    lines = [
        "| method | pixel acc. | mean acc. | mIoU | trimap mIoU (band width) | trimap pixel acc. |",
        "|---|---|---|---|---|---|",
    ]
    for key, scores in results.items():
        confusion, trimap = scores.confusion, scores.trimap
        band_iou = band_accuracy = ""
        if trimap is not None:
            shown = [i for i, w in enumerate(trimap.widths) if w in TABLE_WIDTHS]
            band_iou = ", ".join(f"{trimap.widths[i]:g}px {trimap.mean_iou[i]:.3f}" for i in shown)
            band_accuracy = ", ".join(
                f"{trimap.widths[i]:g}px {trimap.pixel_accuracy[i]:.3f}" for i in shown
            )
        lines.append(
            f"| {method_name(key)} | {confusion.pixel_accuracy:.4f} | "
            f"{confusion.mean_accuracy:.4f} | {confusion.mean_iou:.4f} | {band_iou} "
            f"| {band_accuracy} |"
        )
    lines += ["", "| class | " + " | ".join(method_name(k) for k in results) + " |"]
    lines.append("|---" * (len(results) + 1) + "|")
    per_class = [scores.confusion.iou for scores in results.values()]
    for index, name in enumerate(class_names):
        lines.append(f"| {name} | " + " | ".join(f"{iou[index]:.4f}" for iou in per_class) + " |")
    return "\n".join(lines)


def prediction_samples(
    model: torch.nn.Module, dataset: Dataset, crf_params: dict[str, float], count: int
) -> list[tuple[np.ndarray, ...]]:
    """(image, truth, network prediction, CRF prediction) for the first ``count`` images of
    ``dataset`` (which must have ``load_raw``), for ``viz.training.predictions_figure``."""
    samples = []
    for index in range(count):
        raw_image, truth = dataset.load_raw(index)
        probs = predict_probabilities(model, dataset[index][0][None])[0].numpy()
        refined = dense_crf(raw_image, probs, **crf_params)
        samples.append((raw_image, truth, probs.argmax(0), refined.argmax(0)))
    return samples
