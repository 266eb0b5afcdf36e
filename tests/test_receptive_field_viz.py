"""The numbers behind the receptive-field figures, against torch and the traced models."""

import matplotlib
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deeplab_ref.models import deeplab_v2
from deeplab_ref.receptive_field import receptive_field
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
        ("sparse_vs_dense_figure", 3),
        ("field_of_view_vs_rate_figure", 2),
        ("gridding_figure", 3),
        ("effective_field_figure", 3),
    ],
)
def test_figures_draw(name, n_axes):
    assert len(getattr(viz, name)().axes) == n_axes
