"""The stride-8-to-image figure: its numbers are the library's upsampling and argmax, and it
draws what it says (five panels, one colour bar, a class legend)."""

import numpy as np
import pytest
import torch

from deeplab_ref.models import deeplab_v2, upsample_scores
from deeplab_ref.viz.upsampling import upsampling_example, upsampling_figure

NAMES = ("background", "a", "b")


@pytest.fixture(scope="module")
def example():
    torch.manual_seed(0)
    model = deeplab_v2("small", "aspp-l", num_classes=3, width=4)
    image = torch.randn(3, 41, 41)
    return model, image, upsampling_example(model, image, class_index=1)


def test_the_numbers_are_the_upsampled_scores_and_their_argmax(example):
    model, image, numbers = example
    with torch.no_grad():
        scores = model.eval()(image[None])
    upsampled = upsample_scores(scores, (41, 41))[0].numpy()
    assert numbers["scores"].shape == (3, 6, 6)
    np.testing.assert_array_equal(numbers["scores"], scores[0].numpy())
    np.testing.assert_array_equal(numbers["upsampled"], upsampled)
    np.testing.assert_array_equal(numbers["labels"], upsampled.argmax(0))
    np.testing.assert_array_equal(numbers["coarse_labels"], scores[0].numpy().argmax(0))
    # 41 = 8 * 5 + 1: every 8th upsampled pixel is a score of the stride-8 grid
    np.testing.assert_allclose(numbers["upsampled"][:, ::8, ::8], numbers["scores"], atol=1e-6)


def test_the_figure_has_its_panels_colour_bar_and_legend(example):
    _, _, numbers = example
    raw = np.zeros((41, 41, 3), dtype=np.uint8)
    figure = upsampling_figure(raw, numbers, NAMES)
    panels = [ax for ax in figure.axes if ax.images and ax.get_label() != "<colorbar>"]
    assert len(panels) == 5
    assert len(figure.axes) == 6  # the five panels and the colour bar
    assert [t.get_text() for t in figure.legends[0].get_texts()] == list(NAMES)


def test_a_bad_class_or_image_is_refused(example):
    model, image, _ = example
    with pytest.raises(ValueError, match="class_index"):
        upsampling_example(model, image, class_index=3)
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        upsampling_example(model, image[None], class_index=0)
