"""Evaluation as in the paper (DeepLab Sec. 4): mean IoU over a split, and the boundary trimap.

One confusion matrix is accumulated over the whole split at each image's original resolution (the
network's scores are upsampled bilinearly to the image, directly or, with ``padding=513``, as the
released test network does: the image padded with the mean to 513 x 513, the scores interpolated
x8 and cropped back, see ``deeplab_ref.prediction``; labels are never resized), with 255 ignored. From it: pixel accuracy, mean class accuracy, IoU_c = TP / (TP + FP + FN) per class and
their mean, the mIoU, leaving out classes absent from both the predictions and the labels.

The trimap (Sec. 4.1, Fig. 10 of the paper; Kohli et al. 2009) scores only pixels near object
boundaries: those within ``width`` pixels (Euclidean) of a pixel with another label, void
included (``deeplab_ref.boundaries``). The paper plots the mean IoU within the band against the
width, which shows that the CRF's gain sits at the boundaries; ``TrimapMeter`` gives it and the
pixel accuracy there.

Scoring with the fully connected CRF (Sec. 3.3) and its parameter search are in
``deeplab_ref.crf_evaluation``. Under ``torchrun`` each process scores every world_size-th image
and the matrices are summed over the processes: integer counts, so the scores are exactly those
of one process.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from deeplab_ref import distributed
from deeplab_ref.boundaries import boundary_bands
from deeplab_ref.data.transforms import IGNORE_INDEX
from deeplab_ref.prediction import predict_probabilities


def _as_label_array(array: Any, name: str) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class indices, got dtype {array.dtype}")
    return array


class ConfusionMatrix:
    """Counts of (true class, predicted class) over every labelled pixel seen so far.

    ``matrix[t, p]`` is the number of pixels of class t predicted as p, int64 (C, C). ``update``
    takes predictions and labels of any equal shape, numpy or torch; label 255 is skipped.
    Matrices from parallel workers add with ``+=``.
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, pred: Any, target: Any) -> None:
        """Add predictions ``pred`` and labels ``target``, integer arrays of one shape."""
        pred = _as_label_array(pred, "pred")
        target = _as_label_array(target, "target")
        if pred.shape != target.shape:
            raise ValueError(f"pred has shape {pred.shape} but target has shape {target.shape}")
        labelled = target != self.ignore_index
        self._check_range(pred, "pred")
        self._check_range(
            target[labelled], f"target (besides the ignore value {self.ignore_index})"
        )
        pred, target = pred[labelled].astype(np.int64), target[labelled].astype(np.int64)
        counts = np.bincount(target * self.num_classes + pred, minlength=self.num_classes**2)
        self.matrix += counts.reshape(self.num_classes, self.num_classes)

    def _check_range(self, values: np.ndarray, name: str) -> None:
        outside = (values < 0) | (values >= self.num_classes)
        if outside.any():
            raise ValueError(
                f"{name} has values {np.unique(values[outside])[:10].tolist()} outside the "
                f"classes 0..{self.num_classes - 1}"
            )

    def reset(self) -> None:
        self.matrix[:] = 0

    def __iadd__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        if other.num_classes != self.num_classes:
            raise ValueError(
                f"cannot add a {other.num_classes}-class matrix to a {self.num_classes}-class one"
            )
        self.matrix += other.matrix
        return self

    @property
    def pixel_accuracy(self) -> float:
        """Correct pixels / labelled pixels (NaN before any pixel)."""
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else float("nan")

    @property
    def class_accuracy(self) -> np.ndarray:
        """Per class, the fraction of its pixels predicted right, (C,); NaN if never labelled."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.diag(self.matrix) / self.matrix.sum(axis=1)

    @property
    def mean_accuracy(self) -> float:
        """Mean of ``class_accuracy`` over the classes present in the labels."""
        return _nanmean(self.class_accuracy)

    @property
    def iou(self) -> np.ndarray:
        """Per class TP / (TP + FP + FN), (C,); NaN for classes absent from both."""
        true_positive = np.diag(self.matrix)
        union = self.matrix.sum(axis=0) + self.matrix.sum(axis=1) - true_positive
        with np.errstate(invalid="ignore", divide="ignore"):
            return true_positive / union

    @property
    def mean_iou(self) -> float:
        """Mean of ``iou`` over the classes present in the predictions or the labels."""
        return _nanmean(self.iou)


def _nanmean(values: np.ndarray) -> float:
    present = values[~np.isnan(values)]
    return float(present.mean()) if present.size else float("nan")


class TrimapMeter:
    """Confusion matrices restricted to bands around the true boundaries, one per width.

    A pixel counts for width w when it lies within w pixels of a pixel with another label
    (``boundaries.boundary_bands``), so the band is about 2w pixels wide across each boundary.
    ``pixel_accuracy`` and ``mean_iou`` (the paper's Fig. 10) are arrays over ``widths``.
    """

    def __init__(
        self,
        num_classes: int,
        widths: Iterable[float] = range(1, 41),
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        self.widths = np.asarray(list(widths), dtype=np.float64)
        if self.widths.size == 0 or (self.widths <= 0).any():
            raise ValueError(f"widths must be positive, got {self.widths.tolist()}")
        self.matrices = [ConfusionMatrix(num_classes, ignore_index) for _ in self.widths]

    def update(self, pred: Any, target: Any) -> None:
        """Add one image: ``pred`` and ``target`` integer (H, W)."""
        pred = _as_label_array(pred, "pred")
        target = _as_label_array(target, "target")
        if pred.shape != target.shape:
            raise ValueError(f"pred has shape {pred.shape} but target has shape {target.shape}")
        for band, matrix in zip(boundary_bands(target, self.widths), self.matrices, strict=True):
            matrix.update(pred[band], target[band])

    def __iadd__(self, other: TrimapMeter) -> TrimapMeter:
        if not np.array_equal(other.widths, self.widths):
            raise ValueError(f"cannot add a meter with widths {other.widths} to {self.widths}")
        for mine, theirs in zip(self.matrices, other.matrices, strict=True):
            mine += theirs
        return self

    @property
    def pixel_accuracy(self) -> np.ndarray:
        return np.array([m.pixel_accuracy for m in self.matrices])

    @property
    def mean_iou(self) -> np.ndarray:
        return np.array([m.mean_iou for m in self.matrices])


def predict(model: nn.Module, image: torch.Tensor, padding: int | None = None) -> torch.Tensor:
    """The class map of ``model`` for images (N, 3, H, W), int64 (N, H, W); ``padding`` as in
    ``prediction.predict_probabilities`` (None: direct resize; 513: the released test's)."""
    return predict_probabilities(model, image, padding).argmax(dim=1)


class SplitScores:
    """What evaluation accumulates over a split: the confusion matrix and, when
    ``trimap_widths`` is given, the trimap meter (else ``trimap`` is None)."""

    def __init__(self, num_classes: int, trimap_widths: Iterable[float] | None = None) -> None:
        self.confusion = ConfusionMatrix(num_classes)
        self.trimap = None if trimap_widths is None else TrimapMeter(num_classes, trimap_widths)

    def update(self, pred: Any, target: Any) -> None:
        """Add one image: ``pred`` and ``target`` integer (H, W)."""
        self.confusion.update(pred, target)
        if self.trimap is not None:
            self.trimap.update(pred, target)

    def __iadd__(self, other: SplitScores) -> SplitScores:
        self.confusion += other.confusion
        if self.trimap is not None:
            self.trimap += other.trimap
        return self

    def sum_over_processes(self) -> SplitScores:
        """Add up, in place, the counts of every process (no-op on one process)."""
        trimap = [] if self.trimap is None else [m.matrix for m in self.trimap.matrices]
        distributed.sum_over_processes([self.confusion.matrix, *trimap])
        return self


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    num_classes: int,
    trimap_widths: Iterable[float] | None = None,
    device: str | torch.device = "cpu",
    padding: int | None = None,
) -> SplitScores:
    """Score ``model`` (put in eval mode) over ``dataset``, whose items (image (3, H, W), label
    (H, W)) are at the original resolution, one image at a time, each padded to ``padding``
    (``TrainConfig.eval_padding``; None: run as it is). Under torchrun every process must call
    this; each scores its share and all return the whole split's scores."""
    model.eval()
    scores = SplitScores(num_classes, trimap_widths)
    for index in distributed.shard(range(len(dataset))):
        image, label = dataset[index]
        scores.update(predict(model, image[None].to(device), padding)[0].cpu(), label)
    return scores.sum_over_processes()
