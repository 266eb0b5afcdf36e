"""The CRF figures' helpers: the simulated stride-8 scores and the example photos."""

import numpy as np
import pytest

from deeplab_ref.viz import crf as viz_crf


def test_coarse_probs_are_probabilities_that_blur_only_boundaries():
    labels = np.zeros((40, 64), np.int64)
    labels[:, 29:] = 1  # a boundary inside an 8x8 block
    labels[0, 0] = viz_crf.IGNORE
    probs = viz_crf.coarse_probs(labels, 3, output_stride=8, confidence=0.9)
    assert probs.shape == (3, 40, 64) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, rtol=1e-6)
    far = np.abs(np.arange(64) - 29) > 12
    assert np.all(probs.argmax(0)[:, far] == labels[5:6, far])
    assert probs[1, 20, 40] == pytest.approx(0.9 + 0.1 / 3, rel=1e-5)
    assert 0.2 < probs[1, 20, 29] < 0.8


def test_examples_load_and_missing_files_are_named(tmp_path, monkeypatch):
    example = viz_crf.load_example(1)
    assert example["image"].shape == (240, 320, 3) and len(example["colours"]) == 2
    assert set(np.unique(example["annotation"])) == {0, 1, viz_crf.IGNORE}
    monkeypatch.setattr(viz_crf, "EXAMPLES", tmp_path)
    with pytest.raises(FileNotFoundError, match="anno1.png"):
        viz_crf.load_example(1)


def test_before_after_scores_the_band_with_the_trimap_meters_mean_iou():
    result = viz_crf.before_after(2, band=4)
    for stage in ("before", "after"):
        assert 0.0 < result[f"{stage}_band_mean_iou"] < result[f"{stage}_band_accuracy"] <= 1.0
    assert result["after_band_mean_iou"] > result["before_band_mean_iou"] + 0.1


def test_label_figures_name_their_classes():
    figure = viz_crf.crf_before_after_figure(2)
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == ["background", "bench"]
    assert "mIoU" in figure.axes[1].get_title()
    grid = viz_crf.parameter_grid_figure(2, {"pos_xy_std": [1.0, 3.0]})
    assert [t.get_text() for t in grid.legends[0].get_texts()] == ["background", "bench"]
    assert grid.axes[1].get_title() == "sigma_gamma (pos_xy_std) = 3"
    assert viz_crf.label_colours(1).shape == (2, 3)
