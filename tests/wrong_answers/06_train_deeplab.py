"""Plausible wrong answers to notebook 06's exercises (see README.md)."""

WRONG_ANSWERS = {
    # The power applied to the wrong quantity: 1 - (iteration / max_iter) ** power.
    "poly_lr": """
def poly_lr(base_lr, iteration, max_iter, power):
    return base_lr * (1 - (iteration / max_iter) ** power)
""",
    # Truncating the source positions instead of rounding them to the nearest pixel.
    "subsample_labels": """
import torch


def subsample_labels(labels, size):
    height, width = labels.shape[-2:]
    rows = (torch.arange(size[0]) * (height - 1) / (size[0] - 1)).long()
    cols = (torch.arange(size[1]) * (width - 1) / (size[1] - 1)).long()
    return labels[:, rows[:, None], cols[None, :]]
""",
    # Absent classes counted as an IoU of 0 instead of being left out.
    "mean_iou": """
import numpy as np


def mean_iou(confusion):
    confusion = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - tp
    return float(np.mean(np.divide(tp, union, out=np.zeros_like(tp), where=union > 0)))
""",
}
