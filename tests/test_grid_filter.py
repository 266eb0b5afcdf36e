"""The 1-D splat / blur / slice filter: its matrices, the kernel it stands in for, and the
permutohedral lattice given 1-D features, which computes exactly the same."""

import numpy as np
import pytest

from deeplab_ref import grid_filter
from deeplab_ref.crf import PermutohedralLattice


def test_splat_weights_interpolate_linearly_between_the_two_nodes():
    positions = np.array([-1.3, 0.0, 0.25, 2.9])
    splat = grid_filter.splat_matrix(positions, 0.5)
    nodes = grid_filter.grid_nodes(positions, 0.5)
    assert splat.shape == (len(nodes), 4) and nodes[0] == -1.5 and nodes[-1] == 3.0
    np.testing.assert_allclose(splat.sum(axis=0), 1.0)
    np.testing.assert_allclose(nodes @ splat, positions)  # linear interpolation reproduces x
    assert np.count_nonzero(splat, axis=0).max() <= 2
    assert splat[list(nodes).index(0.0), 1] == 1.0  # a point on a node puts all on it


def test_two_blur_passes_are_the_kernel_1_4_6_4_1_over_4():
    blur = grid_filter.blur_matrix(9, passes=2)
    np.testing.assert_allclose(blur[4, 2:7], [0.25, 1.0, 1.5, 1.0, 0.25])
    np.testing.assert_allclose(blur, blur.T)
    assert blur[0, :3].tolist() == [1.25, 1.0, 0.25]  # a missing neighbour counts as zero


def test_the_1d_lattice_is_this_grid():
    rng = np.random.default_rng(0)
    positions = np.sort(rng.uniform(-4.0, 9.0, 300))
    values = rng.random((300, 3))
    lattice = PermutohedralLattice(positions[:, None]).filter(values)
    ours = grid_filter.grid_filter(positions, values)
    np.testing.assert_allclose(lattice, ours, rtol=1e-5, atol=1e-4)


def test_the_grid_kernel_has_unit_variance_on_average_and_area_4_over_sqrt3():
    distance = np.linspace(-8.0, 8.0, 4001)
    spacing = grid_filter.LATTICE_SPACING
    variances = []
    for origin in np.linspace(0.0, spacing, 40, endpoint=False):
        kernel = grid_filter.grid_kernel(distance, origin=origin)
        area = np.trapezoid(kernel, distance)
        assert area == pytest.approx(4.0 / np.sqrt(3.0), rel=1e-4)
        variances.append(np.trapezoid(kernel * distance**2, distance) / area)
    assert np.mean(variances) == pytest.approx(1.0, abs=1e-3)


def test_exact_filter_and_normalised_grid_agree_closely():
    positions = np.sort(np.random.default_rng(1).uniform(0.0, 12.0, 400))
    values = (np.sin(positions) > 0).astype(float)
    loop = [
        sum(np.exp(-0.5 * (p - q) ** 2) * v for q, v in zip(positions, values, strict=True))
        for p in positions
    ]
    exact = grid_filter.exact_filter(positions, values)
    np.testing.assert_allclose(exact, loop)
    ones = np.ones_like(values)
    gap = grid_filter.grid_filter(positions, values) / grid_filter.grid_filter(positions, ones)
    gap -= exact / grid_filter.exact_filter(positions, ones)
    assert np.abs(gap).max() < 0.05


@pytest.mark.parametrize("spacing", [0.0, -1.0, np.nan])
def test_bad_spacing_and_positions_are_refused(spacing):
    with pytest.raises(ValueError, match="spacing"):
        grid_filter.splat_matrix(np.array([0.0, 1.0]), spacing)
    with pytest.raises(ValueError, match="positions"):
        grid_filter.grid_nodes(np.array([]), 1.0)
    with pytest.raises(ValueError, match="rows"):
        grid_filter.grid_filter(np.array([0.0, 1.0]), np.ones(3))
