"""The permutohedral lattice and the exact mean field against brute-force oracles."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from scipy.spatial.distance import cdist

from deeplab_ref.crf import (
    DenseCRF,
    ExactGaussianFilter,
    PermutohedralLattice,
    bilateral_features,
    gaussian_features,
    unary_from_probs,
)
from deeplab_ref.crf.examples import example_path
from deeplab_ref.crf.mean_field_filters import (
    ExactScaledFilter,
    LatticeFilter,
    accumulate_product,
)
from deeplab_ref.crf.permutohedral import _unique_inverse, elevate


def crop(k=1, rows=slice(100, 150), cols=slice(100, 160)):
    return np.array(Image.open(example_path(f"im{k}.png")).convert("RGB"))[rows, cols]


def test_exact_filter_is_the_gaussian_sum():
    rng = np.random.default_rng(0)
    features, values = rng.normal(size=(50, 3)), rng.normal(size=(50, 2))
    kernel = np.exp(-0.5 * cdist(features, features, "sqeuclidean"))
    for cache_limit in (0, 2500):  # blockwise, and the whole kernel kept
        exact = ExactGaussianFilter(features, block=7, cache_limit=cache_limit)
        np.testing.assert_allclose(exact.filter(values), kernel @ values)
    without_self = ExactGaussianFilter(features, include_self=False).filter(values)
    np.testing.assert_allclose(without_self, (kernel - np.eye(50)) @ values, atol=1e-12)


@given(
    st.integers(1, 6),
    st.integers(1, 60),
    st.floats(0.05, 20.0),
    st.integers(0, 2**31),
)
def test_barycentric_weights_are_a_partition_of_unity(dim, n, spread, seed):
    """Each point splats weights >= 0 summing to 1 onto d + 1 distinct lattice points, one of
    each remainder mod d + 1, and those weights put the corners' centre at the point itself."""
    features = np.random.default_rng(seed).normal(scale=spread, size=(n, dim))
    lattice = PermutohedralLattice(features)
    np.testing.assert_allclose(lattice.barycentric.sum(axis=1), 1.0, atol=1e-5)
    assert lattice.barycentric.min() >= -1e-6
    corners = lattice.lattice_points()[lattice.vertex]  # (N, d + 1 corners, d + 1 coordinates)
    assert np.all(corners.sum(axis=2) == 0)
    remainders = corners % (dim + 1)
    assert np.all(remainders == remainders[:, :, :1])
    assert all(sorted(row) == list(range(dim + 1)) for row in remainders[:, :, 0])
    centre = (lattice.barycentric[:, :, None] * corners).sum(axis=1)
    elevated = elevate(features.T.astype(np.float32)).T
    np.testing.assert_allclose(centre, elevated, atol=1e-4 * (1 + np.abs(elevated).max()))


def test_lattice_on_a_pixel_grid_approximates_the_gaussian():
    """2-D positions: the lattice's kernel keeps 75-91% of the true Gaussian's mass (the known
    underestimate of Adams et al.'s blur), and once normalised by K(1), as the CRF uses it, it
    is within 0.02 of the exact normalised filter."""
    features = gaussian_features(50, 60, xy_std=3.0)
    values = np.random.default_rng(1).random((len(features), 3))
    exact, lattice = ExactGaussianFilter(features), PermutohedralLattice(features)
    ratio = lattice.filter(values) / exact.filter(values)
    assert 0.75 <= ratio.min() and ratio.max() <= 0.91
    ones = np.ones(len(features))
    normalised_error = (
        lattice.filter(values) / lattice.filter(ones)[:, None]
        - exact.filter(values) / exact.filter(ones)[:, None]
    )
    assert np.abs(normalised_error).max() < 0.02


def test_lattice_on_colour_features_approximates_the_normalised_gaussian():
    """5-D (position and colour): far coarser (the lattice keeps only 5-105% of the mass, as a
    sparse lattice loses what it blurs into missing points), but normalised it is still close:
    median error < 0.005, max < 0.1."""
    features = bilateral_features(crop(), xy_std=80.0, rgb_std=13.0)
    values = np.random.default_rng(2).random((len(features), 3))
    exact, lattice = ExactGaussianFilter(features), PermutohedralLattice(features)
    ratio = lattice.filter(values) / exact.filter(values)
    assert 0.05 <= ratio.min() and ratio.max() <= 1.05
    ones = np.ones(len(features))
    normalised_error = np.abs(
        lattice.filter(values) / lattice.filter(ones)[:, None]
        - exact.filter(values) / exact.filter(ones)[:, None]
    )
    assert np.median(normalised_error) < 0.005 and normalised_error.max() < 0.1


@pytest.mark.parametrize("exact", [False, True])
def test_mean_field_filter_is_the_filter_with_folded_scales(exact):
    features = bilateral_features(crop(rows=slice(100, 130)), xy_std=20.0, rgb_std=10.0)
    rng = np.random.default_rng(5)
    values = rng.random((len(features), 4), dtype=np.float32)
    before, after = rng.random(len(features), dtype=np.float32), rng.random(len(features))
    gaussian = ExactGaussianFilter(features) if exact else PermutohedralLattice(features)
    build = ExactScaledFilter if exact else LatticeFilter
    kernel = build(gaussian, before, after.astype(np.float32))
    once = np.zeros_like(values)
    kernel(values, once)
    expected = after[:, None] * gaussian.filter(before[:, None] * values)
    np.testing.assert_allclose(once, expected, rtol=1e-5)
    out = np.ones_like(values)
    kernel(values, out)
    kernel(values, out)  # buffers are reused: a second call adds the same again
    np.testing.assert_allclose(out, 1 + 2 * expected, rtol=1e-5)
    # spread once, then gather block by block: what mean field does, the same numbers
    blocks = np.zeros_like(values)
    spread = kernel.spread(values)
    for start in range(0, len(values), 700):
        kernel.gather(spread, blocks, slice(start, start + 700))
    np.testing.assert_array_equal(blocks, once)


def test_lattice_filter_of_a_constant_grows_with_density():
    sparse = PermutohedralLattice(gaussian_features(10, 10, xy_std=0.2)).filter(np.ones(100))
    dense = PermutohedralLattice(gaussian_features(10, 10, xy_std=5.0)).filter(np.ones(100))
    assert sparse.max() < 1.5 and dense.min() > 10


@pytest.mark.parametrize("key_bits", [12, 30, 62])  # a table, pairs sorted, np.unique
def test_unique_inverse_is_numpy_unique(key_bits):
    keys = np.random.default_rng(key_bits).integers(0, 2**key_bits, size=300).repeat(3)
    unique_keys, inverse, table = _unique_inverse(keys, key_bits)
    assert (table is not None) == (key_bits == 12)
    if table is not None:
        np.testing.assert_array_equal(table[unique_keys], np.arange(len(unique_keys)))
        assert np.sum(table >= 0) == len(unique_keys)
    expected_keys, expected_inverse = np.unique(keys, return_inverse=True)
    np.testing.assert_array_equal(unique_keys, expected_keys)
    np.testing.assert_array_equal(inverse, expected_inverse)


def test_accumulate_product_adds_the_sparse_product():
    rng = np.random.default_rng(3)
    matrix = sp.random(40, 30, density=0.2, format="csr", random_state=4, dtype=np.float32)
    x = rng.random((30, 5), dtype=np.float32)
    for form in (matrix, matrix.tocsc()):
        out = np.ones((40, 5), np.float32)
        accumulate_product(form, x, out)
        np.testing.assert_allclose(out, 1 + matrix @ x, rtol=1e-6)
    out = np.ones((40, 5), np.float32)
    accumulate_product(matrix, x, out, slice(10, 25))
    expected = np.ones((40, 5), np.float32)
    expected[10:25] += (matrix @ x)[10:25]
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="CSR matrices only"):
        accumulate_product(matrix.tocsc(), x, out, slice(0, 5))
    with pytest.raises(ValueError, match="C-contiguous"):
        accumulate_product(matrix, np.asfortranarray(x), np.ones((40, 5), np.float32))


def small_crf(exact, include_self=True):
    image = crop(2, slice(60, 100), slice(100, 150))
    coarse = np.random.default_rng(6).normal(scale=2.0, size=(3, 6, 8))
    scores = coarse.repeat(8, axis=1).repeat(8, axis=2)[:, :40, :50]
    probs = np.exp(scores) / np.exp(scores).sum(axis=0)
    crf = DenseCRF(unary_from_probs(probs))
    crf.add_gaussian(3.0, 3.0, exact=exact, include_self=include_self)
    crf.add_bilateral(image, 20.0, 13.0, 5.0, exact=exact, include_self=include_self)
    return crf


def test_exact_mean_field_agrees_with_pydensecrf():
    """The lattice is an approximation, so the exact CRF and pydensecrf differ on some labels."""
    import pydensecrf.densecrf as dcrf  # a dev dependency: missing, this test fails

    crf = small_crf(exact=True)
    theirs = dcrf.DenseCRF2D(50, 40, 3)
    theirs.setUnaryEnergy(np.ascontiguousarray(-crf.neg_unary.T))  # softmax-equivalent unary
    theirs.addPairwiseGaussian(sxy=3.0, compat=3.0)
    image = np.ascontiguousarray(crop(2, slice(60, 100), slice(100, 150)))
    theirs.addPairwiseBilateral(sxy=20.0, srgb=13.0, rgbim=image, compat=5.0)
    q_theirs = np.array(theirs.inference(10)).reshape(3, 40, 50)
    agreement = (crf.inference(10).argmax(0) == q_theirs.argmax(0)).mean()
    assert agreement >= 0.93


def test_exact_mean_field_with_and_without_self_term():
    with_self = small_crf(exact=True).inference(10)
    without_self = small_crf(exact=True, include_self=False).inference(10)
    assert not np.allclose(with_self, without_self)
    assert (with_self.argmax(0) == without_self.argmax(0)).mean() > 0.9
