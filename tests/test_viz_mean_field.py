"""Notebook 05's figures and widget: the mean-field steps, the 1-D grid filter, the objective,
the example photos' scores against the reference and the annotation, and the parameter sliders."""

import inspect

import numpy as np
import pytest
from matplotlib.figure import Figure

from deeplab_ref import grid_filter
from deeplab_ref.crf import dense_crf
from deeplab_ref.viz import crf as viz_crf
from deeplab_ref.viz import crf_explorer
from deeplab_ref.viz import mean_field as viz_mf


def test_mean_field_steps_figure_has_one_colour_bar_for_every_q_panel():
    rng = np.random.default_rng(0)
    steps = [rng.dirichlet([1, 1], size=(6, 8)).transpose(2, 0, 1) for _ in range(6)]
    image = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    figure = viz_mf.mean_field_steps_figure(image, steps, steps[0].argmax(0), shown=(0, 5))
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 1 + 1 + 2 + 1  # crop, reference, two steps, the colour bar
    assert figure.axes[-1].get_ylabel() == "Q(label 1)"


def test_grid_filter_steps_are_the_library_filter():
    positions = np.sort(np.random.default_rng(1).uniform(0.0, 5.0, 14))
    values = (np.sin(positions) > 0).astype(float)
    steps = viz_mf.grid_filter_steps(positions, values)
    np.testing.assert_allclose(steps["sliced"], grid_filter.grid_filter(positions, values))
    assert steps["splatted"].sum() == pytest.approx(values.sum())
    assert np.abs(steps["grid"] - steps["exact"]).max() < 0.05
    assert isinstance(viz_mf.grid_filter_figure(positions, values), Figure)
    assert isinstance(viz_mf.objective_figure([3.0, 2.0, 1.5]), Figure)


def test_parameters_are_dense_crfs_defaults():
    defaults = {
        name: p.default
        for name, p in inspect.signature(dense_crf).parameters.items()
        if name in crf_explorer.PARAMETERS
    }
    assert defaults == {name: v for name, (_, v) in crf_explorer.PARAMETERS.items()}


def test_refine_example_is_the_before_after_result_and_names_unknown_parameters():
    np.testing.assert_array_equal(crf_explorer.refine_example(2), viz_crf.before_after(2)["after"])
    with pytest.raises(ValueError, match="bi_weight"):
        crf_explorer.refine_example(2, bi_weight=3.0)


def test_scores_against_both_targets():
    result = crf_explorer.crf_scores(2, widths=[2, 8])
    scores = result["scores"]
    assert set(scores) == {"reference", "annotation"} and 0.9 < result["labelled"] < 1.0
    for target in scores:
        for stage in ("before", "after"):
            assert scores[target][stage]["band_mean_iou"].shape == (2,)
            assert 0.0 < scores[target][stage]["mean_iou"] <= 1.0
    before, after = scores["reference"]["before"], scores["reference"]["after"]
    assert np.all(after["band_mean_iou"] > before["band_mean_iou"] + 0.1)
    # The band's mean IoU is TrimapMeter's, not the accuracy.
    assert not np.allclose(after["band_mean_iou"], after["band_accuracy"])


def test_figures_have_class_legends():
    example, probs = crf_explorer.example_input(2)
    labels = probs.argmax(0)
    figure = crf_explorer.crf_labels_figure(2, example, probs, labels)
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == ["background", "bench"]
    legends = crf_explorer.examples_figure((1,)).subfigs[0].legends
    assert [t.get_text() for t in legends[0].get_texts()] == ["goose", "water", "unknown"]
    results = {2: crf_explorer.crf_scores(2, widths=[2, 8])}
    assert isinstance(crf_explorer.trimap_figure(results), Figure)


def test_widget_has_the_five_sliders_and_redraws():
    ipywidgets = pytest.importorskip("ipywidgets")
    widget = crf_explorer.crf_parameter_widget(2)
    sliders = [c for c in widget.children if isinstance(c, ipywidgets.FloatSlider)]
    (picture,) = [c for c in widget.children if isinstance(c, ipywidgets.Output)]
    assert [s.value for s in sliders] == [v for _, v in crf_explorer.PARAMETERS.values()]
    assert all(not s.continuous_update for s in sliders)
    first = picture.outputs[0]["data"]["image/png"]
    sliders[0].value = 0.0  # w1 = 0: dense_crf reruns and the picture changes
    (output,) = picture.outputs
    assert output["output_type"] == "display_data" and output["data"]["image/png"] != first
