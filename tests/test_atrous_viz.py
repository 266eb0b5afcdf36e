"""The atrous figures and widget: what they draw, checked against the convolution itself."""

import matplotlib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from deeplab_ref.receptive_field import valid_taps
from deeplab_ref.viz import atrous as viz

matplotlib.use("Agg")


@pytest.mark.parametrize(("rate", "grid"), [(1, 3), (2, 7), (4, 11), (8, 19)])
def test_footprint_on_grid_is_the_impulse_response(rate, grid):
    # An output changes with an input pixel exactly when its window reads that pixel.
    impulse = torch.zeros(1, 1, grid, grid, dtype=torch.float64)
    impulse[0, 0, grid // 2, grid // 2] = 1
    response = F.conv2d(impulse, torch.ones(1, 1, 3, 3, dtype=torch.float64), padding=rate,
                        dilation=rate)  # fmt: skip
    np.testing.assert_array_equal(viz.footprint_on_grid(3, rate, grid), response[0, 0].numpy())
    with pytest.raises(ValueError, match="cannot hold"):
        viz.footprint_on_grid(3, rate, 2 * rate)


@pytest.mark.parametrize(("rate", "size"), [(1, 5), (3, 7), (12, 41), (24, 41), (40, 41)])
def test_taps_on_map_are_what_a_same_padded_convolution_reads(rate, size):
    counts = valid_taps(rate, size)
    for row, col in [(0, 0), (0, size // 2), (size // 2, size // 2), (size - 1, 2)]:
        taps = viz.taps_on_map(row, col, rate)
        inside = ((taps >= 0) & (taps < size)).all(axis=1)
        assert inside.sum() == counts[row, col]
        # The convolution's own answer: the gradient of that output marks the pixels it reads.
        x = torch.zeros(1, 1, size, size, dtype=torch.float64, requires_grad=True)
        y = F.conv2d(x, torch.ones(1, 1, 3, 3, dtype=torch.float64), padding=rate,
                     dilation=rate)  # fmt: skip
        y[0, 0, row, col].backward()
        read = {tuple(p) for p in np.argwhere(x.grad[0, 0].numpy() > 0)}
        assert read == {tuple(int(v) for v in t) for t in taps[inside]}
    with pytest.raises(ValueError, match="odd"):
        viz.taps_on_map(0, 0, 2, kernel=4)


def test_figures_draw_with_legends_and_colour_bar():
    rates = viz.atrous_rates_figure()
    assert len(rates.axes) == 4 and len(rates.legends) == 1
    figure = viz.footprint_on_map_figure(24, 41)
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 3  # the padded map, the counts and their colour bar
    taps = valid_taps(24, 41)
    assert f"{taps.mean() / 9:.0%} on average" in figure.axes[1].get_title()
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert "centre output (20, 20): 1 of 9 on the map" in labels
    assert "corner output (0, 0): 4 of 9 on the map" in labels


def test_widget_has_two_sliders_and_redraws():
    ipywidgets = pytest.importorskip("ipywidgets")
    widget = viz.footprint_widget(12, 41)
    sliders = [c for c in widget.children if isinstance(c, ipywidgets.IntSlider)]
    assert [s.value for s in sliders] == [12, 41]
    assert all(not s.continuous_update for s in sliders)
    (picture,) = [c for c in widget.children if isinstance(c, ipywidgets.Output)]
    first = picture.outputs[0]["data"]["image/png"]
    sliders[0].value, sliders[1].value = 40, 9  # redraws
    assert picture.outputs[0]["data"]["image/png"] != first
