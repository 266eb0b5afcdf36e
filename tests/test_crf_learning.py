"""Learning the CRF layer on top of a fixed network, and scoring any refinement."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from test_evaluate import BlurryScores, ColouredBlocks

from deeplab_ref.crf import DenseCRFLayer
from deeplab_ref.crf_evaluation import evaluate_crf
from deeplab_ref.crf_learning import learn_crf, network_examples, score_refined
from deeplab_ref.evaluate import evaluate
from deeplab_ref.viz import crf_layer as viz

PARAMS = {"bi_w": 10.0, "bi_xy_std": 20.0, "bi_rgb_std": 10.0, "pos_w": 3.0, "pos_xy_std": 1.0}


def test_network_examples_and_scores_match_the_evaluation():
    dataset = ColouredBlocks(3)
    examples = network_examples(BlurryScores(), dataset, range(3))
    assert examples.images.shape == (3, 24, 32, 3) and examples.images.dtype == torch.uint8
    assert examples.scores.shape == (3, 3, 24, 32) and examples.labels.shape == (3, 24, 32)
    network = score_refined(lambda images, scores: scores, examples, 3, [2])
    expected = evaluate(BlurryScores(), dataset, 3, [2])
    np.testing.assert_array_equal(network.confusion.matrix, expected.confusion.matrix)
    # The layer at its initial (Potts) parameters is the fixed CRF.
    layer = DenseCRFLayer(3, iterations=10, **PARAMS)
    refined = score_refined(layer, examples, 3, batch_size=2)
    fixed = evaluate_crf(BlurryScores(), dataset, 3, PARAMS, processes=1)["crf"]
    np.testing.assert_array_equal(refined.confusion.matrix, fixed.confusion.matrix)


def test_learning_lowers_the_loss_and_keeps_a_history():
    examples = network_examples(BlurryScores(), ColouredBlocks(4), range(4))
    layer = DenseCRFLayer(3, iterations=3, bi_w=1.0, pos_w=1.0, bi_xy_std=20.0, bi_rgb_std=10.0)
    history = learn_crf(layer, examples, steps=12, batch_size=2, lr=0.05, seed=0)
    assert len(history) == 12 and set(history[0]) == {"loss", "bilateral_weight", "gaussian_weight"}
    first, last = (
        np.mean([h["loss"] for h in history[:3]]),
        np.mean([h["loss"] for h in history[-3:]]),
    )
    assert last < first
    assert history[-1]["bilateral_weight"] == layer.bilateral_weight.item() != 1.0
    assert not layer.training
    with pytest.raises(ValueError, match="steps must be"):
        learn_crf(layer, examples, steps=-1)


def test_figures():
    rng = np.random.default_rng(0)
    steps = [rng.random((3, 8, 9)) for _ in range(3)]
    image = rng.integers(0, 256, (8, 9, 3), dtype=np.uint8)
    figures = [
        viz.unrolled_steps_figure(image, steps[0].argmax(0), steps, [0, 2]),
        viz.learning_figure({0: [{"loss": 1.0, "bilateral_weight": 2.0, "gaussian_weight": 3.0}]}),
        viz.compatibility_figure(1 - np.eye(3), ["a", "b", "c"]),
        viz.seeds_figure({"mIoU": {"network": [0.5, 0.6], "CRF": [0.7, 0.72]}}),
    ]
    assert all(isinstance(figure, Figure) for figure in figures)
