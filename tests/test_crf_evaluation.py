"""Scoring with the CRF where the model runs (the PyTorch CRF batched on a GPU, the NumPy one
over worker processes otherwise) and the paper's coarse-to-fine parameter search."""

import numpy as np
import pytest
import torch
from test_evaluate import BlurryScores, ColouredBlocks

from deeplab_ref import crf_evaluation
from deeplab_ref.crf_evaluation import (
    PAPER_GRID,
    evaluate_crf,
    finer_values,
    search_crf_parameters,
)

PARAMS = {"bi_w": 10.0, "bi_xy_std": 20.0, "bi_rgb_std": 10.0, "pos_w": 3.0, "pos_xy_std": 1.0}


class RawSubset(torch.utils.data.Subset):
    """A subset that also gives the raw images."""

    def load_raw(self, index):
        return self.dataset.load_raw(self.indices[index])


def test_the_default_grid_is_the_papers():
    assert PAPER_GRID["bi_w"] == (3, 4, 5, 6) and PAPER_GRID["bi_rgb_std"] == (3, 4, 5, 6)
    assert PAPER_GRID["bi_xy_std"] == (30, 40, 50, 60, 70, 80, 90, 100)
    assert crf_evaluation.SEARCH_IMAGES == 100


def test_finer_values_halve_the_coarse_step_around_the_best():
    assert finer_values([30, 40, 50], 40) == [35.0, 40, 45.0]
    assert finer_values([3, 4, 5, 6], 3) == [2.5, 3, 3.5]
    assert finer_values([0, 1], 0) == [0.5]
    assert finer_values([20], 20) == [20]


def test_search_refines_around_the_best_on_the_first_images(monkeypatch):
    monkeypatch.setattr(crf_evaluation, "SEARCH_IMAGES", 2)
    dataset = ColouredBlocks(3)
    best, table, network_mean_iou = search_crf_parameters(
        BlurryScores(), dataset, 3, bi_w=(0, 10), bi_xy_std=(20,), bi_rgb_std=(5, 10), processes=1
    )
    coarse = {(w, 20, rgb) for w in (0, 10) for rgb in (5, 10)}
    settings = [(row["bi_w"], row["bi_xy_std"], row["bi_rgb_std"]) for row in table]
    assert len(settings) == len(set(settings)) and coarse < set(settings)
    finer = set(settings) - coarse
    assert finer and all(
        w in (5.0, 10, 15.0) and rgb in (2.5, 5, 7.5, 10, 12.5) for w, _, rgb in finer
    )
    ious = [row["mean_iou"] for row in table]
    assert ious == sorted(ious, reverse=True) and table[0]["mean_iou"] > network_mean_iou
    assert best == {k: v for k, v in table[0].items() if k != "mean_iou"}
    # The first two images only: the network's scores are those of a two-image split.
    two = evaluate_crf(BlurryScores(), RawSubset(dataset, [0, 1]), 3, processes=1)
    assert network_mean_iou == two["network"].confusion.mean_iou


def test_batched_torch_path_scores_like_the_numpy_path(monkeypatch):
    """The branch a CUDA model takes, run here on the CPU: the same confusion matrices."""
    dataset = ColouredBlocks(3)
    numpy_scores = evaluate_crf(BlurryScores(), dataset, 3, PARAMS, [1, 3], processes=1)
    monkeypatch.setattr(crf_evaluation, "_crf_on_gpu", lambda device: True)
    monkeypatch.setattr(crf_evaluation, "GPU_BATCH", 2)  # a full batch and a partial one
    torch_scores = evaluate_crf(BlurryScores(), dataset, 3, PARAMS, [1, 3])
    for key in ("network", "crf"):
        np.testing.assert_array_equal(
            torch_scores[key].confusion.matrix, numpy_scores[key].confusion.matrix
        )
        for ours, theirs in zip(
            torch_scores[key].trimap.matrices,
            numpy_scores[key].trimap.matrices,
            strict=True,
        ):
            np.testing.assert_array_equal(ours.matrix, theirs.matrix)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_a_cuda_model_gets_the_cuda_crf():
    dataset = ColouredBlocks(3)
    cpu = evaluate_crf(BlurryScores(), dataset, 3, PARAMS, processes=1)
    cuda = evaluate_crf(BlurryScores().cuda(), dataset, 3, PARAMS, device="cuda")
    for key in ("network", "crf"):
        np.testing.assert_array_equal(cuda[key].confusion.matrix, cpu[key].confusion.matrix)
