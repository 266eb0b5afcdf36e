"""Bad input to the dense CRF gets a ValueError that names the argument at fault."""

import numpy as np
import pytest

from deeplab_ref.crf import DenseCRF, PermutohedralLattice, dense_crf, unary_from_labels


def good_inputs(height=12, width=16, labels=3):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    probs = rng.random((labels, height, width)).astype(np.float32)
    return image, probs / probs.sum(axis=0)


def test_good_inputs_give_probabilities():
    image, probs = good_inputs()
    q = dense_crf(image, probs, iterations=2)
    assert q.shape == probs.shape and q.dtype == np.float32
    np.testing.assert_allclose(q.sum(axis=0), 1.0, atol=1e-5)


def test_zero_iterations_return_the_clipped_input():
    image, probs = good_inputs()
    q = dense_crf(image, probs, iterations=0)
    clipped = np.clip(probs, 1e-5, 1.0)
    np.testing.assert_allclose(q, clipped / clipped.sum(axis=0), atol=1e-6)


def broken(name):
    image, probs = good_inputs()
    if name == "image dtype":
        return image.astype(np.float32), probs
    if name == "image channels":
        return image[..., :2], probs
    if name == "image size":
        return image[:10], probs
    if name == "probs dtype":
        return image, (probs > 0.3).astype(np.int64)
    if name == "probs ndim":
        return image, probs[0]
    if name == "probs NaN":
        probs[0, 1, 2] = np.nan
        return image, probs
    if name == "probs negative":
        probs[0, 1, 2], probs[1, 1, 2] = -0.1, probs[1, 1, 2] + 0.1 + probs[0, 1, 2]
        return image, probs
    if name == "probs sum":
        return image, probs * 0.9
    raise AssertionError(name)


@pytest.mark.parametrize(
    "case, message",
    [
        ("image dtype", "image must be a uint8"),
        ("image channels", r"image must be RGB \(H, W, 3\)"),
        ("image size", "probs is .* pixels but image is"),
        ("probs dtype", "probs must be a float"),
        ("probs ndim", r"probs must be \(C, H, W\)"),
        ("probs NaN", "probs contains NaN"),
        ("probs negative", "probs must be >= 0"),
        ("probs sum", "probs must sum to 1"),
    ],
)
def test_bad_arrays(case, message):
    image, probs = broken(case)
    with pytest.raises(ValueError, match=message):
        dense_crf(image, probs)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"iterations": -1}, "iterations must be >= 0"),
        ({"iterations": 2.5}, "iterations must be an integer"),
        ({"pos_xy_std": 0.0}, "xy_std must be a positive"),
        ({"bi_xy_std": -3.0}, "xy_std must be a positive"),
        ({"bi_rgb_std": float("nan")}, "rgb_std must be a positive"),
        ({"bi_w": float("inf")}, "bi_w must be a finite"),
        ({"pos_w": float("nan")}, "pos_w must be a finite"),
    ],
)
def test_bad_parameters(options, message):
    with pytest.raises(ValueError, match=message):
        dense_crf(*good_inputs(), **options)


def test_bad_lower_level_arguments():
    with pytest.raises(ValueError, match="unary must be a float"):
        DenseCRF(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="unary must be finite"):
        DenseCRF(np.full((2, 3, 4), np.inf, np.float32))
    crf = DenseCRF(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="features must be"):
        crf.add_kernel(np.zeros((11, 2)), weight=1.0)
    with pytest.raises(ValueError, match="weight must be a finite"):
        crf.add_gaussian(1.0, weight=float("nan"))
    with pytest.raises(ValueError, match="normalization must be one of"):
        crf.add_kernel(np.zeros((12, 2)), weight=1.0, normalization="both")
    with pytest.raises(ValueError, match="image is"):
        crf.add_bilateral(np.zeros((4, 3, 3), np.uint8), 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="features must be finite"):
        PermutohedralLattice(np.full((4, 2), np.nan))
    with pytest.raises(ValueError, match="features too large"):
        PermutohedralLattice(np.array([[0.0, 0.0], [2e4, 1.0]]))
    with pytest.raises(ValueError, match="gt_prob"):
        unary_from_labels(np.zeros((3, 4), int), 2, gt_prob=1.0)
    with pytest.raises(ValueError, match="labels must be"):
        unary_from_labels(np.full((3, 4), 7), 2, gt_prob=0.5)
