"""Label colouring, overlays and the synthetic samples figure."""

import numpy as np
import pytest

from deeplab_ref.figures import FIGURES
from deeplab_ref.viz.data import colorize_label, overlay, synthetic_samples_figure


def test_colorize_uses_voc_colours():
    label = np.array([[0, 1], [15, 255]])
    coloured = colorize_label(label)
    assert coloured.dtype == np.uint8 and coloured.shape == (2, 2, 3)
    assert coloured.reshape(4, 3).tolist() == [
        [0, 0, 0],
        [128, 0, 0],
        [192, 128, 128],
        [224, 224, 192],
    ]
    with pytest.raises(ValueError, match="label"):
        colorize_label(np.array([[256]]))


def test_overlay_keeps_background_and_blends_objects():
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    label = np.array([[0, 1], [0, 0]])
    blended = overlay(image, label, alpha=0.5)
    assert blended[0, 0].tolist() == [100, 100, 100]
    assert blended[0, 1].tolist() == [114, 50, 50]  # halfway to (128, 0, 0)


def test_samples_figure_is_registered():
    assert FIGURES["synthetic_samples.png"] is synthetic_samples_figure
    figure = synthetic_samples_figure(num_samples=2)
    assert len(figure.axes) == 4
