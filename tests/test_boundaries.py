"""The trimap band: distances against brute force, and bands on a case with a known answer."""

import numpy as np
import pytest

from deeplab_ref.boundaries import boundary_band, boundary_bands, distance_to_other_label


def brute_force_distance(labels):
    expected = np.full(labels.shape, np.inf)
    ys, xs = np.indices(labels.shape)
    for y, x in np.ndindex(labels.shape):
        other = labels != labels[y, x]
        if other.any():
            expected[y, x] = np.hypot(ys[other] - y, xs[other] - x).min()
    return expected


def test_distance_to_other_label_matches_brute_force():
    rng = np.random.default_rng(0)
    blocks = np.kron(rng.choice([0, 1, 255], size=(4, 3)), np.ones((3, 4), dtype=np.int64))
    # A few isolated pixels: most pixels' nearest other label lies off the axes.
    seeds = np.zeros((12, 13), np.int64)
    seeds.flat[rng.choice(seeds.size, 5, replace=False)] = [1, 255, 1, 2, 255]
    for labels in (blocks, seeds):
        np.testing.assert_allclose(distance_to_other_label(labels), brute_force_distance(labels))
    assert np.isinf(distance_to_other_label(np.zeros((3, 3), dtype=int))).all()


def test_band_of_width_w_is_w_columns_on_each_side_of_a_straight_edge():
    labels = np.zeros((10, 20), np.int64)
    labels[:, 10:] = 1
    for width in (1, 3, 4.5):
        inside = np.abs(np.arange(20) - 9.5) < width  # columns 10 - w .. 9 + w
        np.testing.assert_array_equal(boundary_band(labels, width), np.tile(inside, (10, 1)))
    assert not boundary_band(labels, 0.5).any()


def test_band_is_euclidean_round_a_corner():
    labels = np.zeros((9, 9), np.int64)
    labels[4, 4] = 1
    band = boundary_band(labels, 2)
    # (2, 2) is sqrt(8) > 2 from the odd pixel, (2, 4) and (3, 3) within 2
    assert band[2, 4] and band[3, 3] and not band[2, 2] and band[4, 4]
    assert band.sum() == 13  # the pixels within 2 of the centre, the centre included


def test_bands_stack_one_per_width():
    labels = np.kron(np.random.default_rng(1).integers(0, 3, (3, 4)), np.ones((5, 5), np.int64))
    bands = boundary_bands(labels, [1, 2, 7])
    assert bands.shape == (3, 15, 20) and bands.dtype == bool
    for band, width in zip(bands, [1, 2, 7], strict=True):
        np.testing.assert_array_equal(band, boundary_band(labels, width))
    assert (bands[0] <= bands[1]).all() and (bands[1] <= bands[2]).all()


def test_bad_labels_are_named():
    with pytest.raises(ValueError, match="labels must be integer"):
        boundary_band(np.zeros((3, 3)), 1)
    with pytest.raises(ValueError, match="labels must be integer"):
        distance_to_other_label(np.zeros((2, 3, 3), int))
