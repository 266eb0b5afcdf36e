"""Training augmentation (the paper's random scaling, the released crops, padding, flips and
discrete scales): labels keep their values, crops pad with the mean and 255."""

import numpy as np
import pytest
import torch

from deeplab_ref.data.transforms import (
    CAFFE_BGR_MEAN,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomScale,
    RandomScaleChoice,
    eval_transform,
    resize_pair,
    to_tensor,
    train_transform,
)


def _scene(height=37, width=53, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    blocks = rng.choice([0, 3, 7, 255], size=(height // 4 + 1, width // 4 + 1))
    label = np.kron(blocks, np.ones((4, 4), dtype=np.int64))[:height, :width]
    return image, label


def test_to_tensor_layout_and_errors():
    image, label = _scene()
    image_tensor, label_tensor = to_tensor(image, label)
    assert image_tensor.dtype == torch.float32 and image_tensor.shape == (3, 37, 53)
    assert label_tensor.dtype == torch.int64
    np.testing.assert_array_equal(image_tensor[1].numpy(), image[:, :, 1])
    with pytest.raises(ValueError, match="image"):
        to_tensor(image.astype(np.float32), label)
    with pytest.raises(ValueError, match="image"):
        to_tensor(image[:, :, :2], label)
    with pytest.raises(ValueError, match="label"):
        to_tensor(image, label[:-1])
    with pytest.raises(ValueError, match="label"):
        to_tensor(image, label.astype(np.float32))


def test_normalisations():
    image = torch.tensor([255.0, 0.0, 51.0]).view(3, 1, 1)
    label = torch.zeros(1, 1, dtype=torch.int64)
    imagenet, _ = Normalize("imagenet")(image, label)
    expected = [
        (v / 255 - m) / s for v, m, s in zip((255, 0, 51), IMAGENET_MEAN, IMAGENET_STD, strict=True)
    ]
    np.testing.assert_allclose(imagenet.flatten().numpy(), expected, rtol=1e-6)
    caffe, _ = Normalize("caffe")(image, label)
    # Caffe order is BGR: the blue value (51) comes first.
    expected = [51 - CAFFE_BGR_MEAN[0], 0 - CAFFE_BGR_MEAN[1], 255 - CAFFE_BGR_MEAN[2]]
    np.testing.assert_allclose(caffe.flatten().numpy(), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="normalization"):
        Normalize("tf")


def test_resize_label_is_nearest_neighbour():
    image, label = _scene(8, 6)
    image_tensor, label_tensor = to_tensor(image, label)
    _, doubled = resize_pair(image_tensor, label_tensor, (16, 12))
    np.testing.assert_array_equal(doubled.numpy(), label.repeat(2, 0).repeat(2, 1))
    # A constant image stays constant under bilinear resampling.
    flat = torch.full((3, 8, 6), 7.0)
    resized, _ = resize_pair(flat, label_tensor, (13, 5))
    assert resized.shape == (3, 13, 5) and torch.allclose(resized, torch.tensor(7.0))


def test_labels_keep_their_values_through_every_transform():
    image, label = _scene()
    generator = torch.Generator().manual_seed(0)
    values = set(np.unique(label))
    pair = to_tensor(image, label)
    for transform in (
        RandomScale((0.5, 1.5), generator),
        RandomCrop(24, generator=generator),
        RandomHorizontalFlip(generator=generator),
    ):
        for _ in range(10):
            _, out = transform(*pair)
            assert out.dtype == torch.int64
            assert set(np.unique(out.numpy())) <= values
    for _ in range(10):
        out_image, out_label = train_transform(64, generator=generator)(image, label)
        assert out_image.shape == (3, 64, 64) and out_label.shape == (64, 64)
        assert set(np.unique(out_label.numpy())) <= values | {255}


def test_random_scale_range():
    image, label = _scene(40, 20)
    generator = torch.Generator().manual_seed(1)
    sizes = {
        RandomScale((0.5, 1.5), generator)(*to_tensor(image, label))[1].shape for _ in range(30)
    }
    heights = [h for h, _ in sizes]
    assert 20 <= min(heights) < 30 and 50 < max(heights) <= 60
    assert all(abs(w / h - 0.5) < 0.05 for h, w in sizes)
    with pytest.raises(ValueError, match="scale_range"):
        RandomScale((0.0, 1.0))


def test_crop_is_a_window_and_pads_with_mean_and_ignore():
    label = torch.arange(12 * 9).view(12, 9)
    image = torch.stack([label.float()] * 3)
    generator = torch.Generator().manual_seed(2)
    out_image, out_label = RandomCrop((5, 4), generator=generator)(image, label)
    top, left = divmod(int(out_label[0, 0]), 9)
    torch.testing.assert_close(out_label, label[top : top + 5, left : left + 4])
    torch.testing.assert_close(out_image[0], out_label.float())
    # Larger than the input: padded at the bottom and right, image with 0 (the mean after
    # normalisation), label with 255.
    out_image, out_label = RandomCrop(15, generator=generator)(image, label)
    assert out_label.shape == (15, 15)
    torch.testing.assert_close(out_label[:12, :9], label)
    assert (out_label[12:] == 255).all() and (out_label[:, 9:] == 255).all()
    assert (out_image[:, 12:] == 0).all() and (out_image[:, :, 9:] == 0).all()
    with pytest.raises(ValueError, match="crop_size"):
        RandomCrop(0)


def test_flip_mirrors_both():
    image, label = to_tensor(*_scene())
    flipped_image, flipped_label = RandomHorizontalFlip(p=1.0)(image, label)
    np.testing.assert_array_equal(flipped_label.numpy(), label.numpy()[:, ::-1])
    np.testing.assert_array_equal(flipped_image.numpy(), image.numpy()[:, :, ::-1])
    kept = RandomHorizontalFlip(p=0.0)(image, label)
    assert kept[0] is image and kept[1] is label


def test_train_transform_is_reproducible_with_a_generator():
    image, label = _scene()
    outputs = [
        train_transform(32, generator=torch.Generator().manual_seed(5))(image, label)
        for _ in range(2)
    ]
    torch.testing.assert_close(outputs[0], outputs[1])
    evaluated_image, evaluated_label = eval_transform()(image, label)
    assert evaluated_image.shape == (3, 37, 53)
    np.testing.assert_array_equal(evaluated_label.numpy(), label)


RELEASED_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5)


def _drawn_heights(transform, pair, draws):
    return [transform(*pair)[1].shape[0] for _ in range(draws)]


def test_discrete_scales_draw_only_the_listed_factors_each_about_as_often():
    pair = to_tensor(*_scene(40, 20))
    generator = torch.Generator().manual_seed(3)
    heights = _drawn_heights(RandomScaleChoice(RELEASED_SCALES, generator), pair, 500)
    allowed = {round(40 * s) for s in RELEASED_SCALES}  # 20, 30, 40, 50, 60
    assert set(heights) == allowed
    counts = np.bincount([sorted(allowed).index(h) for h in heights])
    assert counts.min() > 70  # uniform: 100 each expected, P(any < 70) ~ 1e-3
    for scales in ((), (0.5, 0.0), (-1.0,)):
        with pytest.raises(ValueError, match="scales"):
            RandomScaleChoice(scales)


def test_discrete_scales_same_seed_same_draws():
    pair = to_tensor(*_scene(40, 20))
    runs = [
        _drawn_heights(
            RandomScaleChoice(RELEASED_SCALES, torch.Generator().manual_seed(9)), pair, 50
        )
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    other = _drawn_heights(
        RandomScaleChoice(RELEASED_SCALES, torch.Generator().manual_seed(10)), pair, 50
    )
    assert other != runs[0]


def test_train_transform_scales_from_the_set_the_interval_or_not_at_all():
    image, label = _scene(40, 20)

    # A crop larger than any scaled scene starts at (0, 0): the labelled rows are the scene's.
    def labelled_rows(**scaling):
        generator = torch.Generator().manual_seed(4)
        transform = train_transform(128, generator=generator, **scaling)
        rows = set()
        for _ in range(40):
            _, out = transform(image, label)
            rows.add(int((out != 255).any(dim=1).nonzero().max()) + 1)
        return rows

    assert labelled_rows(scale_range=None, scales=(0.5, 1.5)) == {20, 60}
    assert labelled_rows(scale_range=None) == {40}
    assert len(labelled_rows(scale_range=(0.5, 1.5))) > 5
    outputs = [
        train_transform(
            32, None, generator=torch.Generator().manual_seed(5), scales=RELEASED_SCALES
        )(image, label)
        for _ in range(2)
    ]
    torch.testing.assert_close(outputs[0], outputs[1])
