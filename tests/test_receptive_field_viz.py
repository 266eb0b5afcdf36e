"""The numbers behind the receptive-field figures, against torch and the traced models."""

import matplotlib
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deeplab_ref.models import deeplab_v2
from deeplab_ref.receptive_field import atrous_footprint, receptive_field
from deeplab_ref.viz import receptive_field as viz

matplotlib.use("Agg")


def test_vertical_gaussian_derivative_responds_to_horizontal_edges():
    kernel = viz.vertical_gaussian_derivative()
    assert kernel.sum() == pytest.approx(0, abs=1e-12)
    np.testing.assert_allclose(kernel, -kernel[::-1], atol=1e-15)  # odd in y
    np.testing.assert_allclose(kernel, kernel[:, ::-1], atol=1e-15)  # even in x
    rows = np.arange(5.0)[:, None] * np.ones((1, 5))
    assert np.sum(kernel * rows) != 0 and np.sum(kernel * rows.T) == pytest.approx(0, abs=1e-12)


def test_upsample_linear_keeps_samples_and_interpolates_midpoints():
    low = np.arange(12.0).reshape(3, 4) ** 2
    up = viz.upsample_linear(low, 2, (6, 8))
    np.testing.assert_array_equal(up[::2, ::2], low)
    np.testing.assert_allclose(up[1:-1:2, ::2], (low[:-1] + low[1:]) / 2)
    np.testing.assert_array_equal(up[-1, ::2], low[-1])  # past the last sample: repeated


def test_sparse_and_dense_against_torch():
    rng = np.random.default_rng(0)
    image, kernel = rng.normal(size=(30, 34)), viz.vertical_gaussian_derivative()
    sparse, dense = viz.sparse_and_dense(image, kernel, rate=2)
    weight = torch.from_numpy(kernel)[None, None]
    expected = F.conv2d(torch.from_numpy(image)[None, None], weight, padding=4, dilation=2)
    np.testing.assert_allclose(dense, expected[0, 0].numpy(), atol=1e-12)
    np.testing.assert_allclose(sparse[::2, ::2], dense[::2, ::2], atol=1e-12)
    assert np.abs(sparse - dense).max() > 0.1  # off the grid the interpolation differs


def test_field_of_view_by_rate_against_traced_models():
    rates = np.array([1, 6, 12])
    curves = viz.field_of_view_by_rate(rates)
    np.testing.assert_array_equal(curves["one 3x3 layer"], 2 * rates + 1)
    np.testing.assert_array_equal(curves["three 3x3 layers"], 6 * rates + 1)
    with torch.device("meta"):
        models = [deeplab_v2("vgg16", atrous_rates=(int(r),)) for r in rates]
    traced = [receptive_field(m, (3, 321, 321)).field_of_view[0] for m in models]
    np.testing.assert_array_equal(curves["DeepLab-VGG-16, fc6 at this rate"], traced)


@pytest.mark.parametrize(
    ("name", "n_axes"),
    [
        ("sparse_vs_dense_figure", 5),  # three panels, two colour bars
        ("field_of_view_vs_rate_figure", 2),
        ("gridding_figure", 5),  # four stacks and their colour bar
        ("effective_field_figure", 4),  # three rates and their colour bar
    ],
)
def test_figures_draw(name, n_axes):
    assert len(getattr(viz, name)().axes) == n_axes


@pytest.mark.parametrize("rates", [[2, 2], [1, 5], [3, 4], [1, 2, 5], [1, 2, 4, 8], [5, 2, 1], [1]])
def test_footprint_summary_counts_the_holes(rates):
    summary = viz.footprint_summary(rates)
    footprint = atrous_footprint(rates)
    assert summary["span"] == footprint.shape[0] == 2 * sum(rates) + 1
    assert summary["read"] + summary["holes"] == footprint.size
    assert summary["holes"] == int((footprint == 0).sum())
    assert summary["hdc"] == (summary["holes"] == 0)
    assert len(viz.footprint_figure(rates).axes) == 3  # map, its colour bar, the centre row


def test_parse_rates():
    assert viz.parse_rates("1, 2, 5") == [1, 2, 5]
    assert viz.parse_rates(" 3 4 ") == [3, 4]
    for text, message in [("", "one or more"), ("1, two", "whole numbers"), ("0 1", "positive"),
                          ("1 " * 9, "at most"), ("1 100", "at most")]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            viz.parse_rates(text)


def test_effective_fields_numbers():
    fields = viz.effective_fields((1, 2), size=33)
    assert fields[1]["read"] == 1.0  # a rate-1 stack reads every pixel of its field
    assert 0 < fields[2]["read"] < 0.5  # rate 2 reads a grid: odd offsets get no gradient
    for result in fields.values():
        assert 0 < result["half_mass_radius"] < result["field"].field_of_view[0] // 2
        assert result["erf"].shape == (33, 33)


def test_rates_widget_redraws():
    ipywidgets = pytest.importorskip("ipywidgets")
    rates = viz.rates_widget("1, 2, 5")
    box = next(c for c in rates.children if isinstance(c, ipywidgets.Text))
    (picture,) = [c for c in rates.children if isinstance(c, ipywidgets.Output)]
    assert "image/png" in picture.outputs[0]["data"]
    box.value = "3, 4"
    assert "image/png" in picture.outputs[0]["data"]
    box.value = "not rates"  # shows the reason instead of raising
    assert "rates" in picture.outputs[0]["text"]
