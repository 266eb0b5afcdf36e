"""Test-time prediction, direct and padded as the released test networks pad (513, the mean, x8).

Oracles: a "pointwise" network whose score i is a function of pixel 8 i alone (so that the two
ways can only differ by their sampling grids), a row-index ramp whose exact upsampling is known,
a network that records the input it was given, confusion counts recomputed from the padded
predictions, and a spy on the padded sizes the command line asks for.
"""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from deeplab_ref import prediction
from deeplab_ref.cli import main
from deeplab_ref.evaluate import evaluate
from deeplab_ref.models import deeplab_v2
from deeplab_ref.prediction import (
    PaddedNetwork,
    padded_size,
    predict_probabilities,
    upsampled_scores,
)
from deeplab_ref.train import train

from small_setups import tiny_config


class EveryEighthPixel(nn.Module):
    """Scores (N, K, ceil(H / 8), ceil(W / 8)) from pixels 0, 8, 16, ... by a fixed 1x1 map."""

    def __init__(self, classes=4, seed=0):
        super().__init__()
        self.mix = nn.Conv2d(3, classes, 1)
        with torch.no_grad():
            self.mix.weight.copy_(
                torch.randn(classes, 3, 1, 1, generator=torch.Generator().manual_seed(seed))
            )
        self.seen = []

    def forward(self, x):
        self.seen.append(x.clone())
        return self.mix(x[:, :, ::8, ::8])


class Ramp(nn.Module):
    """Score 0 = the input's channel 0 at every 8th pixel: with a row-index image it is 8 i."""

    def forward(self, x):
        return x[:, :1, ::8, ::8]


def row_ramp(height, width):
    rows = torch.arange(height, dtype=torch.float64)[:, None].expand(height, width)
    return torch.stack([rows] * 3)[None]


@pytest.mark.parametrize(("height", "width"), [(33, 41), (321, 17), (1, 9), (513, 505)])
def test_padded_and_direct_agree_on_8k_plus_1_sizes(height, width):
    model = EveryEighthPixel()
    image = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(1))
    direct = upsampled_scores(model, image)
    padded = upsampled_scores(model, image, padding=513)
    assert direct.shape == padded.shape == (2, 4, height, width)
    torch.testing.assert_close(padded, direct, rtol=1e-5, atol=1e-5)  # float rounding only
    torch.testing.assert_close(
        predict_probabilities(model, image, padding=513), direct.softmax(dim=1)
    )


@pytest.mark.parametrize(("height", "offset"), [(320, 7), (500, 3), (375, 6), (41, 0), (40, 7)])
def test_off_the_8k_plus_1_grid_the_direct_resize_shifts_the_scores(height, offset):
    # The ramp's scores sit on rows 0, 8, ..., 8 (h - 1). Padded, the x8 interpolation gives back
    # every row index there exactly; directly resized to H rows, score h - 1 is stretched onto row
    # H - 1, so row j reads 8 (h - 1) j / (H - 1): |8 (h - 1) - (H - 1)| rows off at the far edge.
    image = row_ramp(height, 3)
    samples = -(-height // 8)
    last_sample_row = 8 * (samples - 1)
    rows = torch.arange(height, dtype=torch.float64)
    padded = upsampled_scores(Ramp(), image, padding=513)[0, 0, :, 0]
    direct = upsampled_scores(Ramp(), image)[0, 0, :, 0]
    torch.testing.assert_close(padded[: last_sample_row + 1], rows[: last_sample_row + 1])
    assert abs(last_sample_row - (height - 1)) == offset
    torch.testing.assert_close((direct - rows).abs().max().item(), float(offset))


def test_the_network_sees_the_image_padded_with_the_mean_at_the_bottom_right():
    model = EveryEighthPixel()
    image = torch.randn(1, 3, 100, 77)
    upsampled_scores(model, image, padding=513)
    (seen,) = model.seen
    assert seen.shape == (1, 3, 513, 513)
    torch.testing.assert_close(seen[..., :100, :77], image)
    assert (seen[..., 100:, :] == 0).all() and (seen[..., :, 77:] == 0).all()


def test_a_side_longer_than_the_padding_goes_to_the_next_8k_plus_1():
    assert [padded_size(s, 513) for s in (1, 500, 513, 514, 521, 522, 1000)] == [
        513,
        513,
        513,
        521,
        521,
        529,
        1001,
    ]
    model = EveryEighthPixel()
    scores = upsampled_scores(model, torch.randn(1, 3, 520, 600), padding=513)
    assert model.seen[0].shape[-2:] == (521, 601) and scores.shape[-2:] == (520, 600)


@pytest.mark.parametrize("padding", [0, -513, 2.5, True, "513"])
def test_a_bad_padding_is_named(padding):
    with pytest.raises(ValueError, match="padding"):
        upsampled_scores(EveryEighthPixel(), torch.zeros(1, 3, 9, 9), padding=padding)
    with pytest.raises(ValueError, match="image"):
        upsampled_scores(EveryEighthPixel(), torch.zeros(3, 9, 9), padding=513)


def test_a_deeplab_network_padded_and_direct():
    # A real network sees the padding near the bottom and right borders, so the two ways differ
    # there a little even at 8k + 1 sizes; the probabilities stay probabilities either way.
    torch.manual_seed(0)
    model = deeplab_v2("resnet101", num_classes=3, msc=True, blocks=(1, 1, 1, 1), width=4).eval()
    image = torch.randn(1, 3, 57, 41)
    direct = predict_probabilities(model, image)
    padded = predict_probabilities(model, image, padding=129)
    assert direct.shape == padded.shape == (1, 3, 57, 41)
    torch.testing.assert_close(padded.sum(dim=1), torch.ones(1, 57, 41))
    assert 0 < (padded - direct).abs().max() < 1


def test_the_padded_network_is_a_module_whose_scores_are_at_the_image_resolution():
    model = EveryEighthPixel()
    image = torch.randn(2, 3, 100, 77)
    padded = PaddedNetwork(model, 513)
    assert padded(image).shape == (2, 4, 100, 77)
    torch.testing.assert_close(
        predict_probabilities(padded, image), predict_probabilities(model, image, padding=513)
    )
    assert list(padded.state_dict()) == [f"network.{k}" for k in model.state_dict()]


# -- evaluation and the command line use the run's test protocol ---------------------------------


class Scenes(torch.utils.data.Dataset):
    """Normalised random images with labels, of the given sizes."""

    def __init__(self, sizes, classes=4):
        generator = torch.Generator().manual_seed(5)
        self.items = [
            (
                torch.randn(3, h, w, generator=generator),
                torch.randint(classes, (h, w), generator=generator),
            )
            for h, w in sizes
        ]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def test_evaluate_scores_the_padded_predictions():
    model = EveryEighthPixel()
    on_grid, off_grid = Scenes([(33, 41), (17, 9)]), Scenes([(40, 50), (37, 30)])
    for dataset in (on_grid, off_grid):
        padded = evaluate(model, dataset, 4, padding=513).confusion.matrix
        expected = sum(
            np.bincount(
                (label * 4 + predict_probabilities(model, image[None], 513)[0].argmax(0)).ravel(),
                minlength=16,
            ).reshape(4, 4)
            for image, label in dataset
        )
        np.testing.assert_array_equal(padded, expected)
        direct = evaluate(model, dataset, 4).confusion.matrix
        assert (dataset is on_grid) == np.array_equal(padded, direct)


@pytest.fixture(scope="module")
def padded_checkpoint(tmp_path_factory):
    run = tmp_path_factory.mktemp("padded")
    config = tiny_config(max_iter=2, checkpoint_every=2, eval_padding=65)
    train(config, run, progress=False)
    return run / "checkpoint.pt"


@pytest.mark.parametrize("crf", [False, True])
def test_the_command_line_evaluates_with_the_run_s_padding(padded_checkpoint, monkeypatch, crf):
    sides = []
    monkeypatch.setattr(prediction, "padded_size", lambda size, pad: sides.append(pad) or pad)
    args = ["evaluate", "--checkpoint", str(padded_checkpoint)] + (["--crf"] if crf else [])
    assert main(args) == 0
    assert sides and set(sides) == {65}


def test_the_command_line_predicts_with_the_run_s_padding(padded_checkpoint, tmp_path, monkeypatch):
    sides = []
    monkeypatch.setattr(prediction, "padded_size", lambda size, pad: sides.append(pad) or pad)
    image = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "photo.png")
    args = ["predict", str(tmp_path / "photo.png"), "--checkpoint", str(padded_checkpoint)]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    assert sides == [65, 65]
