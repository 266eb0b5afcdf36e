"""ASPP figures: the tap positions they draw, checked against the atrous arithmetic."""

import numpy as np
import pytest

from deeplab_ref.atrous import effective_kernel_size
from deeplab_ref.models import HEAD_RATES, branch_field_of_view
from deeplab_ref.viz import aspp as viz_aspp


@pytest.mark.parametrize("rate", HEAD_RATES["aspp-l"] + HEAD_RATES["aspp-s"])
def test_branch_taps_are_output_stride_times_rate_apart(rate):
    taps = viz_aspp.branch_taps((100, 120), rate, kernel_size=3, output_stride=8)
    rows, cols = np.unique(taps[:, 0]), np.unique(taps[:, 1])
    assert len(taps) == 9
    np.testing.assert_array_equal(np.diff(rows), [8 * rate] * 2)
    np.testing.assert_array_equal(cols, [120 - 8 * rate, 120, 120 + 8 * rate])
    # The span drawn: the outermost taps plus one pixel, i.e. 8 (effective kernel - 1) + 1.
    assert (
        cols[-1] - cols[0] + 1
        == branch_field_of_view(rate)
        == 8 * (effective_kernel_size(3, rate) - 1) + 1
    )


def test_figures_draw_one_panel_per_branch():
    assert len(viz_aspp.aspp_fields_of_view_figure((2, 4, 8)).axes) == 3
    assert len(viz_aspp.aspp_diagram_figure().axes) == 1


def test_branch_class_scores_figure_panels():
    rng = np.random.default_rng(0)
    scores = [rng.normal(size=(3, 5, 5)) for _ in range(2)]
    image, label = np.zeros((40, 40, 3), np.uint8), np.zeros((40, 40), np.int64)
    figure = viz_aspp.branch_class_scores_figure(image, label, scores, (6, 12), ("a", "b", "c"))
    # a header row and one row per class; columns: 2 branches, their colour bar, a spacer, the
    # sum and its colour bar
    assert len(figure.axes) == 4 * 6
    branch = figure.axes[1 * 6 + 1].get_images()[0].get_array()  # class "a", the rate-12 branch
    summed = figure.axes[1 * 6 + 4].get_images()[0].get_array()  # class "a", the sum
    np.testing.assert_allclose(branch, scores[1][0])
    np.testing.assert_allclose(summed, scores[0][0] + scores[1][0])
    with pytest.raises(ValueError, match="branches"):
        viz_aspp.branch_class_scores_figure(image, label, scores, (6,), ("a", "b", "c"))


def test_sample_photo_is_a_square_rgb_image():
    photo = viz_aspp.sample_photo(65)
    assert photo.shape == (65, 65, 3) and photo.dtype == np.uint8 and photo.std() > 10
