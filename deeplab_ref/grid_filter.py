"""Gaussian filtering by splat, blur and slice on a regular 1-D grid.

The permutohedral lattice (``crf/permutohedral.py``; Adams, Baek and Davis 2010) makes the fully
connected CRF of DeepLab Sec. 3.3 affordable by replacing the exact Gaussian filter

    K(V)_i = sum_j exp(-(f_i - f_j)^2 / 2) V_j

with three cheap linear steps on a grid of nodes. In one dimension the grid is just evenly spaced
nodes, and each step is easy to see:

1. **splat**: a point between two nodes adds its value to both, with the linear-interpolation
   (barycentric) weights, so nearer nodes get more;
2. **blur**: every node takes ``[1/2, 1, 1/2]`` of its neighbours and itself, ``passes`` times;
3. **slice**: every point reads its two nodes back with the same weights, times ``scale``.

Filtering then costs O(N + M) for N points and M nodes instead of O(N^2). The result is a
piecewise-linear stand-in for the Gaussian whose width is set by the spacing: two passes of the
blur have variance 1 (in node units) and the splat's and the slice's linear interpolation add
1/6 each on average over where the points fall between nodes, so the spacing ``sqrt(3) / 2``
gives variance (1 + 1/3) * 3/4 = 1 in standard deviations, that of the unit Gaussian. That is
the permutohedral lattice in 1-D (its blur runs along d + 1 = 2 directions, which coincide on a
line, and its slice factor is 1 / (1 + 2^-1) = 2/3), except that the lattice stores only the
nodes some point touches, in a hash table; here every node between the points is kept, which is
the same as soon as the points leave no empty node between them.
"""

from __future__ import annotations

import numpy as np

LATTICE_SPACING = float(np.sqrt(3.0) / 2.0)  # the 1-D lattice's node spacing, in std units
LATTICE_SCALE = 2.0 / 3.0  # its slice factor 1 / (1 + 2^-d), d = 1
LATTICE_PASSES = 2  # its blur: one [1/2, 1, 1/2] pass per lattice direction, d + 1 = 2


def _positions(positions: np.ndarray) -> np.ndarray:
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 1 or positions.size == 0 or not np.all(np.isfinite(positions)):
        raise ValueError(f"positions must be a non-empty finite (N,) array, got {positions.shape}")
    return positions


def _spacing(spacing: float) -> float:
    if not np.isfinite(spacing) or spacing <= 0:
        raise ValueError(f"spacing must be a positive number, got {spacing!r}")
    return float(spacing)


def grid_nodes(positions: np.ndarray, spacing: float) -> np.ndarray:
    """Positions (M,) of the nodes that cover positions (N,): ``k * spacing`` for every integer k
    from ``floor(min / spacing)`` to ``floor(max / spacing) + 1``."""
    positions, spacing = _positions(positions), _spacing(spacing)
    first = int(np.floor(positions.min() / spacing))
    last = int(np.floor(positions.max() / spacing)) + 1
    return np.arange(first, last + 1) * spacing


def splat_matrix(positions: np.ndarray, spacing: float) -> np.ndarray:
    """Splat weights (M, N) of points at positions (N,) on ``grid_nodes(positions, spacing)``.

    Column j holds point j's two linear-interpolation weights: ``1 - t`` on the node at or below
    it and ``t`` on the next one, with t its distance from the lower node in units of spacing.
    Each column sums to 1, and ``grid_nodes(...) @ S`` gives the positions back.
    """
    positions, spacing = _positions(positions), _spacing(spacing)
    first = int(np.floor(positions.min() / spacing))
    n_nodes = int(np.floor(positions.max() / spacing)) + 2 - first
    scaled = positions / spacing
    below = np.floor(scaled).astype(np.int64)
    t = scaled - below
    matrix = np.zeros((n_nodes, positions.size))
    columns = np.arange(positions.size)
    matrix[below - first, columns] += 1.0 - t
    matrix[below - first + 1, columns] += t
    return matrix


def blur_matrix(n_nodes: int, passes: int = LATTICE_PASSES) -> np.ndarray:
    """(M, M) matrix of ``passes`` blurs by ``[1/2, 1, 1/2]``, a missing neighbour counting as 0."""
    if n_nodes < 1 or passes < 0:
        raise ValueError(f"need n_nodes >= 1 and passes >= 0, got {n_nodes}, {passes}")
    one = np.eye(n_nodes) + 0.5 * (np.eye(n_nodes, k=1) + np.eye(n_nodes, k=-1))
    return np.linalg.matrix_power(one, passes)


def grid_filter(
    positions: np.ndarray,
    values: np.ndarray,
    spacing: float = LATTICE_SPACING,
    passes: int = LATTICE_PASSES,
    scale: float = LATTICE_SCALE,
) -> np.ndarray:
    """Splat values (N,) or (N, C) of points at positions (N,) (in standard deviations) onto the
    grid, blur, slice: ``scale * S^T B S values``. The defaults are the permutohedral lattice's
    for d = 1, which ``PermutohedralLattice(positions[:, None]).filter`` matches."""
    values = np.asarray(values, dtype=np.float64)
    splat = splat_matrix(positions, spacing)
    if values.shape[0] != splat.shape[1]:
        raise ValueError(f"values has {values.shape[0]} rows, positions {splat.shape[1]}")
    return scale * (splat.T @ (blur_matrix(len(splat), passes) @ (splat @ values)))


def exact_filter(positions: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The exact filter ``sum_j exp(-(p_i - p_j)^2 / 2) values_j`` for positions (N,), O(N^2)."""
    positions = _positions(positions)
    kernel = np.exp(-0.5 * (positions[:, None] - positions[None, :]) ** 2)
    return kernel @ np.asarray(values, dtype=np.float64)


def grid_kernel(
    distances: np.ndarray,
    spacing: float = LATTICE_SPACING,
    passes: int = LATTICE_PASSES,
    scale: float = LATTICE_SCALE,
    origin: float = 0.0,
) -> np.ndarray:
    """The weight ``grid_filter`` gives a unit value at ``origin`` when read at origin + each of
    distances (K,): the grid's stand-in for ``exp(-distance^2 / 2)``. It depends a little on
    where origin sits between two nodes (the grid is not shift-invariant)."""
    distances = np.asarray(distances, dtype=np.float64)
    positions = np.concatenate([[origin], origin + distances])
    splat = splat_matrix(positions, spacing)
    lattice = blur_matrix(len(splat), passes) @ splat[:, 0]
    return scale * (splat[:, 1:].T @ lattice)
