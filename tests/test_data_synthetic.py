"""The synthetic dataset: determinism, the item contract, shapes, textures and the void band."""

import numpy as np
import pytest
import torch

from deeplab_ref.data import SyntheticSegmentation
from deeplab_ref.data.synthetic import (
    CLASS_SETS,
    SHAPES,
    class_names,
    ignore_boundaries,
    shape_mask,
    texture_pattern,
)
from deeplab_ref.data.transforms import IMAGENET_MEAN, IMAGENET_STD


def test_same_seed_same_images_in_any_order():
    first = SyntheticSegmentation("train", seed=3, length=20)
    second = SyntheticSegmentation("train", seed=3, length=20)
    for index in (7, 0, 19, 7):
        image_a, label_a = first.load_raw(index)
        image_b, label_b = second.load_raw(index)
        np.testing.assert_array_equal(image_a, image_b)
        np.testing.assert_array_equal(label_a, label_b)
    np.testing.assert_array_equal(first.load_raw(-1)[0], first.load_raw(19)[0])


def test_seeds_and_splits_give_different_images():
    images = [
        SyntheticSegmentation(split, seed=seed, length=1).load_raw(0)[0]
        for split, seed in (("train", 0), ("train", 1), ("val", 0))
    ]
    assert not np.array_equal(images[0], images[1])
    assert not np.array_equal(images[0], images[2])


def test_item_contract_and_normalisation():
    dataset = SyntheticSegmentation("val", length=3, image_size=64)
    assert dataset.num_classes == len(dataset.class_names) == 5
    image, label = dataset[1]
    raw_image, raw_label = dataset.load_raw(1)
    assert image.dtype == torch.float32 and image.shape == (3, 64, 64)
    assert label.dtype == torch.int64 and label.shape == (64, 64)
    assert raw_image.dtype == np.uint8 and raw_image.shape == (64, 64, 3)
    mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    expected = (raw_image / 255.0 - mean) / std
    np.testing.assert_allclose(image.permute(1, 2, 0).numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(label.numpy(), raw_label)
    with pytest.raises(IndexError):
        dataset.load_raw(3)


@pytest.mark.parametrize("class_set", CLASS_SETS)
def test_every_class_appears_and_the_void_band_is_thin(class_set):
    dataset = SyntheticSegmentation("train", class_set=class_set, length=40)
    assert dataset.class_names == class_names(class_set)
    assert dataset.num_classes == len(CLASS_SETS[class_set]) + 1
    counts = sum(np.bincount(dataset.load_raw(i)[1].ravel(), minlength=256) for i in range(40))
    assert set(np.flatnonzero(counts)) == set(range(dataset.num_classes)) | {255}
    void_fraction = counts[255] / counts.sum()
    assert 0.02 < void_fraction < 0.15
    # Object classes are roughly balanced: none rarer than a third of the average.
    objects = counts[1 : dataset.num_classes]
    assert objects.min() > objects.mean() / 3


def test_the_cache_returns_the_same_scenes():
    cached = SyntheticSegmentation("val", length=4, cache=True)
    plain = SyntheticSegmentation("val", length=4)
    for _ in range(2):
        image, label = cached.load_raw(2)
        np.testing.assert_array_equal(image, plain.load_raw(2)[0])
        np.testing.assert_array_equal(label, plain.load_raw(2)[1])
        assert label.dtype == np.int64
        label[:] = 0  # callers may edit what they get without touching the cache
    assert list(cached.cache) == [2]


def test_ignore_boundaries_matches_brute_force():
    rng = np.random.default_rng(0)
    label = np.kron(rng.integers(0, 3, size=(4, 5)), np.ones((3, 3), dtype=np.int64))
    for radius in (1, 2):
        expected = label.copy()
        height, width = label.shape
        for y in range(height):
            for x in range(width):
                window = label[
                    max(y - radius, 0) : y + radius + 1, max(x - radius, 0) : x + radius + 1
                ]
                if (window != label[y, x]).any():
                    expected[y, x] = 255
        np.testing.assert_array_equal(ignore_boundaries(label, radius), expected)
    np.testing.assert_array_equal(ignore_boundaries(label, 0), label)


@pytest.mark.parametrize("shape", SHAPES)
def test_shapes_have_the_area_of_the_disc(shape):
    # Sampled on a fine grid, every shape covers pi * size^2 / 4 whatever its rotation.
    size, step = 40.0, 0.25
    v, u = np.mgrid[-30:30:step, -30:30:step]
    angle = 0.3
    u, v = u * np.cos(angle) + v * np.sin(angle), -u * np.sin(angle) + v * np.cos(angle)
    area = shape_mask(shape, u, v, size).sum() * step * step
    assert area == pytest.approx(np.pi * size**2 / 4, rel=0.01)


def test_shapes_differ():
    v, u = np.mgrid[-30:30, -30:30].astype(float)
    masks = [shape_mask(shape, u, v, 40.0) for shape in SHAPES]
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            assert (masks[i] != masks[j]).sum() > 50


def test_textures():
    v, u = np.mgrid[0:12, 0:12].astype(float)
    stripes = texture_pattern("striped", u, v, period=4.0)
    checks = texture_pattern("checked", u, v, period=4.0)
    dots = texture_pattern("dotted", u + 2, v + 2, period=4.0)
    assert not texture_pattern("plain", u, v, period=4.0).any()
    # Dots of radius 0.3 * 4 = 1.2 pixels centred on multiples of 4: a pixel and its 4 neighbours.
    cell = [[1, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]]
    np.testing.assert_array_equal(dots, np.tile(cell, (3, 3)))
    # Stripes of width 2 across u, constant along v; checks flip along both axes.
    np.testing.assert_array_equal(stripes[0], [0, 0, 1, 1] * 3)
    assert (stripes == stripes[0]).all()
    np.testing.assert_array_equal(checks[:, 0], [0, 0, 1, 1] * 3)
    np.testing.assert_array_equal(checks[2], 1 - checks[0])
    with pytest.raises(ValueError, match="texture"):
        texture_pattern("wavy", u, v, 4.0)
    with pytest.raises(ValueError, match="shape"):
        shape_mask("star", u, v, 4.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "test"}, "split"),
        ({"class_set": "all"}, "class_set"),
        ({"object_size": (20.0, 10.0)}, "object_size"),
        ({"num_objects": (0, 3)}, "num_objects"),
        ({"image_size": 4}, "image_size"),
        ({"length": -1}, "length"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SyntheticSegmentation(**kwargs)
