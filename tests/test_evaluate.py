"""Metrics against a hand-worked example and brute force; the trimap on a case with a known answer."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from deeplab_ref.crf_evaluation import evaluate_crf, search_crf_parameters
from deeplab_ref.evaluate import (
    ConfusionMatrix,
    TrimapMeter,
    evaluate,
    predict,
)

# Worked by hand. Labelled pixels (truth -> prediction): 0->0, 0->1, 1->1, 1->1, 2->0; one void.
TARGET = np.array([[0, 0, 1], [1, 2, 255]])
PRED = np.array([[0, 1, 1], [1, 0, 2]])


def test_hand_worked_example():
    confusion = ConfusionMatrix(3)
    confusion.update(PRED, TARGET)
    np.testing.assert_array_equal(confusion.matrix, [[1, 1, 0], [0, 2, 0], [1, 0, 0]])
    assert confusion.pixel_accuracy == pytest.approx(3 / 5)
    np.testing.assert_allclose(confusion.class_accuracy, [1 / 2, 1, 0])
    assert confusion.mean_accuracy == pytest.approx(1 / 2)
    # IoU: class 0 has TP 1, FP 1, FN 1; class 1 TP 2, FP 1; class 2 TP 0, FN 1.
    np.testing.assert_allclose(confusion.iou, [1 / 3, 2 / 3, 0])
    assert confusion.mean_iou == pytest.approx(1 / 3)


def test_absent_classes_are_left_out():
    confusion = ConfusionMatrix(5)
    confusion.update(PRED, TARGET)
    assert math.isnan(confusion.iou[3]) and math.isnan(confusion.class_accuracy[4])
    assert confusion.mean_iou == pytest.approx(1 / 3)
    assert confusion.mean_accuracy == pytest.approx(1 / 2)
    # A class only predicted (a false positive) is present: its IoU is 0 and counts.
    confusion.update(np.array([4]), np.array([0]))
    assert confusion.iou[4] == 0
    assert confusion.mean_iou == pytest.approx(np.mean([1 / 4, 2 / 3, 0, 0]))


def brute_force_scores(pred, target, num_classes):
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    for p, t in zip(pred.ravel(), target.ravel(), strict=True):
        if t != 255:
            matrix[t, p] += 1
    valid = target != 255
    ious = []
    for c in range(num_classes):
        union = (((pred == c) | (target == c)) & valid).sum()
        if union:
            ious.append(((pred == c) & (target == c)).sum() / union)
    accuracy = ((pred == target) & valid).sum() / valid.sum()
    return matrix, accuracy, np.mean(ious)


@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force_over_several_updates(seed):
    rng = np.random.default_rng(seed)
    num_classes = int(rng.integers(2, 8))
    confusion = ConfusionMatrix(num_classes)
    preds, targets = [], []
    for _ in range(3):
        shape = tuple(rng.integers(1, 12, size=2))
        target = rng.integers(0, num_classes, size=shape)
        target[rng.random(shape) < 0.2] = 255
        pred = rng.integers(0, num_classes, size=shape)
        # numpy and torch inputs alike
        confusion.update(torch.from_numpy(pred), target if seed % 2 else torch.from_numpy(target))
        preds.append(pred.ravel())
        targets.append(target.ravel())
    matrix, accuracy, mean_iou = brute_force_scores(
        np.concatenate(preds), np.concatenate(targets), num_classes
    )
    np.testing.assert_array_equal(confusion.matrix, matrix)
    assert confusion.pixel_accuracy == pytest.approx(accuracy)
    assert confusion.mean_iou == pytest.approx(mean_iou)


def test_matrices_add():
    first, second, both = ConfusionMatrix(3), ConfusionMatrix(3), ConfusionMatrix(3)
    first.update(PRED, TARGET)
    second.update(TARGET[:, :2], PRED[:, :2])
    both.update(PRED, TARGET)
    both.update(TARGET[:, :2], PRED[:, :2])
    first += second
    np.testing.assert_array_equal(first.matrix, both.matrix)
    with pytest.raises(ValueError, match="4-class"):
        first += ConfusionMatrix(4)
    first.reset()
    assert first.matrix.sum() == 0 and math.isnan(first.pixel_accuracy)


def test_bad_inputs_name_the_argument():
    confusion = ConfusionMatrix(3)
    with pytest.raises(ValueError, match=r"pred has values \[3\]"):
        confusion.update(np.array([0, 3]), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"target .*has values \[7\]"):
        confusion.update(np.array([0, 1]), np.array([7, 1]))
    with pytest.raises(ValueError, match=r"pred has values \[-1\]"):
        confusion.update(np.array([-1]), np.array([255]))
    with pytest.raises(ValueError, match="shape"):
        confusion.update(np.zeros((2, 2), dtype=int), np.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError, match="pred must hold integer"):
        confusion.update(np.zeros(2), np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match="num_classes"):
        ConfusionMatrix(0)
    with pytest.raises(ValueError, match="widths"):
        TrimapMeter(3, widths=[0, 1])


def test_trimap_on_a_shifted_edge():
    # Truth: class 0 in columns 0-9, class 1 in 10-19. Prediction: the edge 2 columns too far
    # left, so columns 8 and 9 are wrong. Within w pixels of the edge lie min(2w, 20) columns.
    target = np.zeros((20, 20), dtype=np.int64)
    target[:, 10:] = 1
    pred = np.zeros_like(target)
    pred[:, 8:] = 1
    widths = [1, 2, 3, 5, 10, 15]
    meter = TrimapMeter(2, widths)
    meter.update(pred, target)
    for width, accuracy, mean_iou in zip(widths, meter.pixel_accuracy, meter.mean_iou, strict=True):
        side, wrong = min(width, 10), min(width, 2)
        assert accuracy == pytest.approx(1 - wrong / (2 * side))
        expected_iou = ((side - wrong) / side + side / (side + wrong)) / 2
        assert mean_iou == pytest.approx(expected_iou)
    # The widest band holds the whole image, so it agrees with the plain matrix.
    full = ConfusionMatrix(2)
    full.update(pred, target)
    assert meter.pixel_accuracy[-1] == pytest.approx(full.pixel_accuracy)


def test_trimap_meters_add():
    target = np.kron(np.array([[0, 1], [1, 0]]), np.ones((4, 4), dtype=np.int64))
    pred = np.zeros_like(target)
    both, first, second = (TrimapMeter(2, [1, 2]) for _ in range(3))
    both.update(pred, target)
    both.update(1 - pred, target)
    first.update(pred, target)
    second.update(1 - pred, target)
    first += second
    for merged, direct in zip(first.matrices, both.matrices, strict=True):
        np.testing.assert_array_equal(merged.matrix, direct.matrix)
    with pytest.raises(ValueError, match="widths"):
        first += TrimapMeter(2, [1, 3])


def test_trimap_skips_void_and_counts_its_edge():
    # A void column between the classes: the boundary pixels are next to the void band.
    target = np.zeros((4, 7), dtype=np.int64)
    target[:, 3] = 255
    target[:, 4:] = 1
    pred = np.ones_like(target)
    meter = TrimapMeter(2, [1])
    meter.update(pred, target)
    # Columns 2 and 4 are within 1 pixel of the void column; column 2 is wrong.
    np.testing.assert_array_equal(meter.matrices[0].matrix, [[0, 4], [0, 4]])


class OneHotScores(nn.Module):
    """Reads the label off the image (channel c = 1 where the class is c) at stride 2."""

    def forward(self, image):
        return image[:, :, ::2, ::2]


def test_evaluate_a_model_at_the_original_resolution():
    rng = np.random.default_rng(0)
    labels = [
        np.kron(rng.integers(0, 3, (3, 5)), np.ones((4, 4), dtype=np.int64)) for _ in range(3)
    ]
    labels[0][0, 0] = 255
    dataset = [
        (torch.from_numpy(np.stack([label == c for c in range(3)]).astype(np.float32)), label)
        for label in labels
    ]
    assert predict(OneHotScores(), dataset[0][0][None]).shape == (1, 12, 20)
    scores = evaluate(nn.Identity(), dataset, 3, trimap_widths=[1, 40])
    assert scores.confusion.matrix.sum() == 3 * 12 * 20 - 1
    assert scores.confusion.mean_iou == 1.0 and list(scores.trimap.mean_iou) == [1.0, 1.0]
    # A stride-2 model upsampled bilinearly gets the block interiors right.
    scores = evaluate(OneHotScores(), dataset, 3)
    assert scores.trimap is None and scores.confusion.pixel_accuracy > 0.8


class ColouredBlocks:
    """Items: one-hot label planes as the 'image' and the label; ``load_raw`` gives an RGB image
    that shows each class in its own colour, with sharp edges for the CRF's bilateral kernel."""

    def __init__(self, count=3, seed=0):
        rng = np.random.default_rng(seed)
        self.labels = [
            np.kron(rng.integers(0, 3, (3, 4)), np.ones((8, 8), dtype=np.int64))
            for _ in range(count)
        ]
        self.colours = np.array([[20, 20, 20], [230, 40, 40], [40, 40, 230]], dtype=np.uint8)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        label = self.labels[index]
        planes = np.stack([label == c for c in range(3)]).astype(np.float32)
        return torch.from_numpy(planes), torch.from_numpy(label)

    def load_raw(self, index):
        return self.colours[self.labels[index]], self.labels[index]


class BlurryScores(nn.Module):
    """The label planes at stride 4: upsampled, their boundaries blur by a few pixels."""

    def forward(self, image):
        return 4 * nn.functional.avg_pool2d(image, 4)


def test_crf_without_pairwise_terms_keeps_the_network_answer():
    dataset = ColouredBlocks()
    off = {"bi_w": 0.0, "pos_w": 0.0}
    scores = evaluate_crf(BlurryScores(), dataset, 3, off, trimap_widths=[2], processes=1)
    np.testing.assert_array_equal(
        scores["crf"].confusion.matrix, scores["network"].confusion.matrix
    )
    np.testing.assert_array_equal(
        scores["network"].confusion.matrix, evaluate(BlurryScores(), dataset, 3).confusion.matrix
    )


def test_crf_sharpens_boundaries_in_parallel_as_in_one_process():
    dataset = ColouredBlocks()
    params = {"bi_w": 10.0, "bi_xy_std": 20.0, "bi_rgb_std": 10.0, "pos_w": 3.0, "pos_xy_std": 1.0}
    serial = evaluate_crf(BlurryScores(), dataset, 3, params, trimap_widths=[1, 3], processes=1)
    parallel = evaluate_crf(BlurryScores(), dataset, 3, params, trimap_widths=[1, 3], processes=2)
    for key in ("network", "crf"):
        np.testing.assert_array_equal(serial[key].confusion.matrix, parallel[key].confusion.matrix)
    # The colour edges coincide with the true boundaries: the CRF wins in the narrow bands.
    assert (serial["crf"].trimap.mean_iou > serial["network"].trimap.mean_iou).all()
    assert serial["crf"].confusion.mean_iou > serial["network"].confusion.mean_iou


def test_crf_parameter_search_table():
    best, table, network_mean_iou = search_crf_parameters(
        BlurryScores(),
        ColouredBlocks(2),
        3,
        bi_w=(0, 10),
        bi_xy_std=(20,),
        bi_rgb_std=(5, 10),
        refine=False,
        processes=1,
    )
    assert len(table) == 4
    assert all(row["pos_w"] == 3 and row["pos_xy_std"] == 3 for row in table)
    ious = [row["mean_iou"] for row in table]
    assert ious == sorted(ious, reverse=True)
    assert best == {k: v for k, v in table[0].items() if k != "mean_iou"}
    assert best["bi_w"] == 10 and table[0]["mean_iou"] > network_mean_iou
