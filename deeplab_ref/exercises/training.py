"""Checks for the exercises of notebook 06 (training DeepLab-v2, Sec. 4 and 4.1 of the paper).

* ``check_poly_lr``: the "poly" learning rate base_lr (1 - iteration / max_iter) ** power,
  against ``train.poly_learning_rate`` over whole schedules;
* ``check_subsample_labels``: labels (N, H, W) brought to the score grid (N, h, w) by nearest
  neighbour with the corners aligned, against ``loss.downsample_labels``;
* ``check_mean_iou``: the mean IoU of a confusion matrix (classes absent from both the labels
  and the predictions left out), against ``evaluate.ConfusionMatrix``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from deeplab_ref.evaluate import ConfusionMatrix
from deeplab_ref.exercises import attempt, expect, passed
from deeplab_ref.loss import downsample_labels
from deeplab_ref.train import poly_learning_rate


def check_poly_lr(poly_lr: Callable) -> None:
    """poly_lr(base_lr, iteration, max_iter, power) -> float against ``poly_learning_rate``."""
    name = "poly_lr"
    for base_lr, max_iter, power in [(2.5e-4, 20_000, 0.9), (1e-2, 5000, 0.9), (1e-3, 10, 2.0)]:
        for iteration in sorted({0, 1, max_iter // 4, max_iter // 2, max_iter - 1, max_iter}):
            got = attempt(poly_lr, base_lr, iteration, max_iter, power)
            want = poly_learning_rate(base_lr, iteration, max_iter, power)
            case = f"base_lr={base_lr:g}, iteration={iteration}, max_iter={max_iter}, power={power}"
            expect(
                isinstance(got, int | float | np.floating),
                f"for {case} expected a number, got {type(got).__name__}",
            )
            if np.isclose(got, want, rtol=1e-9, atol=1e-15):
                continue
            linear = base_lr * (1 - iteration / max_iter)
            hint = (
                "it is the linear schedule: raise (1 - iteration / max_iter) to the power"
                if np.isclose(got, linear, rtol=1e-9) and power != 1
                else "the rate is base_lr times (1 - iteration / max_iter) ** power: base_lr at "
                "iteration 0 and 0 at max_iter"
            )
            expect(False, f"for {case} got {got:.8g}, expected {want:.8g}: {hint}")
    passed(name, "3 schedules, against train.poly_learning_rate")


def _labels(shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 21, shape, generator=generator)
    labels[:, : shape[1] // 3, : shape[2] // 4] = 255  # a void corner: 255 must survive
    return labels


def check_subsample_labels(subsample_labels: Callable) -> None:
    """subsample_labels(labels, size) -> (N, h, w) against ``loss.downsample_labels``."""
    name = "subsample_labels"
    # (N, H, W) -> (h, w): the 321 -> 41 crop (every 8th label), the 0.5 scale's 21x21 maps,
    # the CPU preset's 81 -> 11, and the 96x96 scenes' 12x12 grid, where the step is 95 / 11.
    cases = [((2, 321, 321), (41, 41)), ((1, 321, 321), (21, 21)), ((3, 81, 81), (11, 11))]
    cases += [((1, 96, 96), (12, 12)), ((2, 60, 75), (8, 10))]
    for seed, (shape, size) in enumerate(cases):
        labels = _labels(shape, seed)
        got = attempt(subsample_labels, labels.clone(), size)
        want = downsample_labels(labels, size)
        case = f"labels of shape {shape} to size {size}"
        expect(
            isinstance(got, torch.Tensor),
            f"for {case} expected a torch.Tensor, got {type(got).__name__}",
        )
        expect(
            tuple(got.shape) == tuple(want.shape),
            f"for {case} expected shape {tuple(want.shape)}, got {tuple(got.shape)}",
        )
        expect(
            not got.is_floating_point(),
            f"for {case} labels must stay integer class indices, got dtype {got.dtype}",
        )
        if torch.equal(got.long(), want):
            continue
        wrong = (got.long() != want).float().mean().item()
        expect(
            False,
            f"for {case}, {100 * wrong:.0f}% of the labels differ from the library's: score i "
            "sits over pixel i (H - 1) / (h - 1); take the label at the nearest whole pixel "
            "(round, do not truncate), rows and columns alike",
        )
    passed(name, f"{len(cases)} label maps, against loss.downsample_labels")


def _confusions() -> list[tuple[str, np.ndarray, float]]:
    """(description, (C, C) matrix, the library's mIoU) for a few predictions and labels."""
    rng = np.random.default_rng(6)
    found = []
    for classes, pixels, absent in [(5, 400, None), (4, 60, 2), (21, 1000, 7), (3, 50, None)]:
        target = rng.integers(0, classes, size=pixels)
        pred = np.where(rng.random(pixels) < 0.6, target, rng.integers(0, classes, size=pixels))
        if absent is not None:  # a class neither in the labels nor in the predictions
            target[target == absent] = (absent + 1) % classes
            pred[pred == absent] = (absent + 1) % classes
        matrix = ConfusionMatrix(classes)
        matrix.update(pred, target)
        detail = f", class {absent} in neither" if absent is not None else ""
        found.append((f"a {classes}-class matrix of {pixels} pixels{detail}", matrix))
    return [(text, m.matrix.copy(), m.mean_iou) for text, m in found]


def check_mean_iou(mean_iou: Callable) -> None:
    """mean_iou(confusion) -> float against ``ConfusionMatrix.mean_iou``."""
    name = "mean_iou"
    for case, matrix, want in _confusions():
        got = attempt(mean_iou, matrix.copy())
        expect(
            isinstance(got, int | float | np.floating),
            f"for {case} expected a number, got {type(got).__name__}",
        )
        if np.isclose(got, want, rtol=1e-9, atol=1e-12):
            continue
        tp = np.diag(matrix).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = tp / matrix.sum(axis=1)
            iou = tp / (matrix.sum(axis=0) + matrix.sum(axis=1) - tp)
        hints = [
            (
                np.nanmean(recall),
                "that is the mean class accuracy TP / (TP + FN): the IoU's denominator also "
                "counts the false positives, TP + FP + FN",
            ),
            (
                np.nan_to_num(iou).mean(),
                "a class absent from both the labels and the predictions has no IoU (0 / 0): "
                "leave it out of the mean instead of counting it as 0",
            ),
        ]
        hint = next(
            (text for value, text in hints if np.isclose(got, value, rtol=1e-9)),
            "IoU of class c = matrix[c, c] / (row c's sum + column c's sum - matrix[c, c]); "
            "rows are the labels, columns the predictions",
        )
        expect(False, f"for {case} got {got:.6g}, expected {want:.6g}: {hint}")
    passed(name, "4 confusion matrices, against evaluate.ConfusionMatrix")
