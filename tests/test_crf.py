"""The NumPy dense CRF against pydensecrf (Krähenbühl's C++ code), the independent oracle."""

import numpy as np
import pydensecrf.densecrf as dcrf
import pydensecrf.eigen as pd_eigen
import pydensecrf.utils as pd_utils
import pytest
from PIL import Image

from deeplab_ref.crf import DenseCRF, dense_crf, unary_from_labels, unary_from_probs
from deeplab_ref.crf.examples import example_path

# (pos_xy_std, pos_w, bi_xy_std, bi_rgb_std, bi_w)
PARAMETERS = {
    "deeplab_resnet": (1.0, 3.0, 67.0, 3.0, 4.0),
    "vgg16_quoted": (2.0, 2.0, 65.0, 3.0, 4.0),  # VGG-16 values quoted by third parties
    "readme": (3.0, 3.0, 80.0, 13.0, 10.0),
    "narrow": (0.5, 1.0, 5.0, 8.0, 2.0),
}


def photo(k: int) -> np.ndarray:
    return np.array(Image.open(example_path(f"im{k}.png")).convert("RGB"))


def pydensecrf_q(image, unary, iterations, pos_xy_std, pos_w, bi_xy_std, bi_rgb_std, bi_w):
    labels, height, width = unary.shape
    crf = dcrf.DenseCRF2D(width, height, labels)
    crf.setUnaryEnergy(np.ascontiguousarray(unary.reshape(labels, -1)))
    crf.addPairwiseGaussian(sxy=pos_xy_std, compat=pos_w)
    crf.addPairwiseBilateral(
        sxy=bi_xy_std, srgb=bi_rgb_std, rgbim=np.ascontiguousarray(image), compat=bi_w
    )
    return np.array(crf.inference(iterations)).reshape(labels, height, width)


def assert_agrees(ours, theirs, min_agreement=0.9999):
    agreement = (ours.argmax(0) == theirs.argmax(0)).mean()
    difference = np.abs(ours - theirs)
    assert agreement >= min_agreement, agreement
    assert difference.mean() <= 1e-4, difference.mean()
    assert difference.max() <= 1e-2, difference.max()


def random_probs(rng, labels, height, width, smooth):
    """Class probabilities: per-pixel noise, or scores on a stride-8 grid upsampled (smooth)."""
    if smooth:
        coarse = rng.normal(scale=3.0, size=(labels, height // 8 + 1, width // 8 + 1))
        scores = coarse.repeat(8, axis=1).repeat(8, axis=2)[:, :height, :width]
    else:
        scores = rng.normal(scale=2.0, size=(labels, height, width))
    probs = np.exp(scores - scores.max(axis=0))
    return (probs / probs.sum(axis=0)).astype(np.float32)


@pytest.mark.parametrize("name", PARAMETERS)
@pytest.mark.parametrize("smooth", [False, True])
def test_matches_pydensecrf_on_crops(name, smooth):
    rng = np.random.default_rng(len(name) + smooth)
    image = photo(1 + smooth)[40:130, 60:180]
    probs = random_probs(rng, 5, *image.shape[:2], smooth)
    params = PARAMETERS[name]
    names = ("pos_xy_std", "pos_w", "bi_xy_std", "bi_rgb_std", "bi_w")
    for iterations in (0, 1, 5, 10):
        ours = dense_crf(
            image, probs, iterations=iterations, **dict(zip(names, params, strict=True))
        )
        theirs = pydensecrf_q(image, unary_from_probs(probs), iterations, *params)
        assert ours.dtype == np.float32 and ours.shape == probs.shape
        assert_agrees(ours, theirs)


def test_matches_pydensecrf_on_random_image():
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, size=(64, 48, 3), dtype=np.uint8)
    probs = random_probs(rng, 4, 64, 48, smooth=False)
    theirs = pydensecrf_q(image, unary_from_probs(probs), 5, *PARAMETERS["deeplab_resnet"])
    assert_agrees(dense_crf(image, probs, iterations=5), theirs)


@pytest.mark.parametrize("k", [1, 2])
def test_matches_pydensecrf_on_full_photo_with_21_labels(k):
    image = photo(k)
    probs = random_probs(np.random.default_rng(k), 21, *image.shape[:2], smooth=True)
    theirs = pydensecrf_q(image, unary_from_probs(probs), 10, *PARAMETERS["deeplab_resnet"])
    assert_agrees(dense_crf(image, probs), theirs)


def annotation_labels(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Label map (255 = unknown) and colour table from annoK.png, black being "unknown"."""
    rgb = np.asarray(Image.open(example_path(f"anno{k}.png")).convert("RGB")).astype(np.uint32)
    packed = rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]
    colours, labels = np.unique(packed, return_inverse=True)
    labels = labels.reshape(packed.shape)
    if colours[0] == 0:  # black: drop it, shift the rest to 0-based
        colours = colours[1:]
        labels = np.where(labels == 0, 255, labels - 1)
    return labels, colours


def test_unary_from_labels_matches_pydensecrf():
    labels, colours = annotation_labels(1)
    theirs = pd_utils.unary_from_labels(
        np.where(labels == 255, 0, labels + 1), len(colours), gt_prob=0.7, zero_unsure=True
    )
    ours = unary_from_labels(labels, len(colours), gt_prob=0.7)
    np.testing.assert_array_equal(ours.reshape(len(colours), -1), theirs)


def test_unary_from_probs_matches_pydensecrf():
    probs = random_probs(np.random.default_rng(3), 6, 10, 12, smooth=False)
    probs[0, 0, 0], probs[1, 0, 0] = 0.0, probs[0, 0, 0] + probs[1, 0, 0]
    theirs = pd_utils.unary_from_softmax(probs)
    np.testing.assert_array_equal(unary_from_probs(probs).reshape(6, -1), theirs)


@pytest.mark.parametrize("k", [1, 2])
def test_reproduces_published_results(k):
    """pydensecrf's README example: its published outK.png from imK.png and annoK.png."""
    labels, colours = annotation_labels(k)
    crf = DenseCRF(unary_from_labels(labels, len(colours), gt_prob=0.7))
    crf.add_gaussian(xy_std=3.0, weight=3.0)
    crf.add_bilateral(photo(k), xy_std=80.0, rgb_std=13.0, weight=10.0)
    result = colours[crf.inference(5).argmax(axis=0)]
    published = np.asarray(Image.open(example_path(f"out{k}.png")).convert("RGB")).astype(np.uint32)
    published = published[..., 0] << 16 | published[..., 1] << 8 | published[..., 2]
    assert (result == published).mean() >= 0.998


@pytest.mark.parametrize(
    "normalization, code",
    [
        ("symmetric", "NORMALIZE_SYMMETRIC"),
        ("after", "NORMALIZE_AFTER"),
        ("before", "NORMALIZE_BEFORE"),
        ("none", "NO_NORMALIZATION"),
    ],
)
def test_generic_kernel_and_normalizations_match_pydensecrf(normalization, code):
    rng = np.random.default_rng(11)
    height, width, labels = 30, 40, 3
    features = rng.normal(size=(height * width, 3)).astype(np.float32) * 2
    unary = unary_from_probs(random_probs(rng, labels, height, width, smooth=False))
    ours = DenseCRF(unary)
    ours.add_kernel(features, weight=0.7, normalization=normalization)
    theirs = dcrf.DenseCRF(height * width, labels)
    theirs.setUnaryEnergy(np.ascontiguousarray(unary.reshape(labels, -1)))
    theirs.addPairwiseEnergy(
        np.ascontiguousarray(features.T), compat=0.7, normalization=getattr(dcrf, code)
    )
    q = np.array(theirs.inference(3)).reshape(labels, height, width)
    assert_agrees(ours.inference(3), q)


def test_repulsive_weight_matches_pydensecrf():
    """A negative weight pushes neighbours apart; softmax then needs each pixel's maximum."""
    rng = np.random.default_rng(12)
    image = photo(1)[:40, :50]
    unary = unary_from_probs(random_probs(rng, 3, 40, 50, smooth=True))
    ours = DenseCRF(unary)
    ours.add_gaussian(2.0, -30.0)
    ours.add_bilateral(image, 30.0, 10.0, 5.0)
    theirs = dcrf.DenseCRF2D(50, 40, 3)
    theirs.setUnaryEnergy(np.ascontiguousarray(unary.reshape(3, -1)))
    theirs.addPairwiseGaussian(sxy=2.0, compat=-30.0)
    theirs.addPairwiseBilateral(sxy=30.0, srgb=10.0, rgbim=np.ascontiguousarray(image), compat=5.0)
    assert_agrees(ours.inference(5), np.array(theirs.inference(5)).reshape(3, 40, 50))


def test_objective_matches_pydensecrf_kl_divergence():
    """pydensecrf's klDivergence counts the pairwise sum twice: halve its weights to compare."""
    image = photo(2)[:60, :80]
    unary = unary_from_probs(random_probs(np.random.default_rng(5), 4, 60, 80, smooth=True))
    ours = DenseCRF(unary)
    ours.add_gaussian(3.0, 3.0)
    ours.add_bilateral(image, 50.0, 10.0, 5.0)
    theirs = dcrf.DenseCRF2D(80, 60, 4)
    theirs.setUnaryEnergy(np.ascontiguousarray(unary.reshape(4, -1)))
    theirs.addPairwiseGaussian(sxy=3.0, compat=1.5)
    theirs.addPairwiseBilateral(sxy=50.0, srgb=10.0, rgbim=np.ascontiguousarray(image), compat=2.5)
    objectives = []
    for q in ours.iterate(4):
        objectives.append(ours.objective(q))
        expected = theirs.klDivergence(pd_eigen.matrixXf(np.ascontiguousarray(q.reshape(4, -1))))
        assert objectives[-1] == pytest.approx(expected, rel=1e-4)
    assert objectives[-1] < objectives[0]


def test_non_contiguous_inputs_work():
    rng = np.random.default_rng(2)
    image = photo(1)[::2, ::-2]
    probs = random_probs(rng, 3, *image.shape[:2], smooth=True)
    probs_view = np.ascontiguousarray(probs.transpose(1, 2, 0)).transpose(2, 0, 1)
    assert not image.flags.c_contiguous and not probs_view.flags.c_contiguous
    theirs = pydensecrf_q(image, unary_from_probs(probs), 3, *PARAMETERS["deeplab_resnet"])
    assert_agrees(dense_crf(image, probs_view, iterations=3), theirs)
