"""The permutohedral lattice: fast Gaussian filtering in d dimensions.

The fully connected CRF of DeepLab Sec. 3.3 (Krähenbühl and Koltun, NIPS 2011) needs, in every
mean-field step, the Gaussian filter

    K(V)_i = sum_j exp(-|f_i - f_j|^2 / 2) V_j,        f: (N, d) scaled features,

which costs O(N^2) if computed directly. Adams, Baek and Davis (Eurographics 2010) approximate it
in O(N d^2): embed every feature vector in the hyperplane of R^{d+1} whose coordinates sum to zero,
which is tiled by simplices whose corners form the *permutohedral lattice*. Then

1. **splat**: each point spreads its value over the d + 1 corners of its simplex with barycentric
   weights;
2. **blur**: along each of the d + 1 lattice directions in turn, every lattice point takes
   ``[1/2, 1, 1/2]`` of its two neighbours and itself (a missing neighbour counts as zero);
3. **slice**: each point reads back its corners with the same weights, times 1 / (1 + 2^-d).

All three steps are linear, so once a lattice is built for one image they are sparse matrices:
``K(V) = alpha * S^T B_d ... B_0 S V``. We build S and the B_j once, vectorised over all pixels,
following the float32 arithmetic, rounding and tie-breaking of Krähenbühl's C++ code, which
pydensecrf wraps, so the two agree to float32 noise.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp


def elevation_scale(d: int) -> np.ndarray:
    """The scale (d,) float32 of each feature dimension before the embedding: it makes the blur
    below approximate a unit-variance Gaussian (Adams et al. p. 6)."""
    inv_std = np.float32(np.sqrt(2.0 / 3.0) * (d + 1))
    return (1.0 / np.sqrt((np.arange(d) + 2.0) * (np.arange(d) + 1.0)) * inv_std).astype(np.float32)


def elevate(features: np.ndarray) -> np.ndarray:
    """Scale features (d, N) and embed them in the plane sum(x) = 0 of R^{d+1}: (d + 1, N) float32."""
    d, n = features.shape
    scale = elevation_scale(d)
    elevated = np.empty((d + 1, n), np.float32)
    partial_sum = np.zeros(n, np.float32)
    for j in range(d, 0, -1):
        scaled = features[j - 1] * scale[j - 1]
        np.subtract(partial_sum, np.float32(j) * scaled, out=elevated[j])
        partial_sum += scaled
    elevated[0] = partial_sum
    return elevated


def _enclosing_simplex(elevated: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each elevated point (d + 1, N), the simplex of the lattice that contains it.

    Returns ``rem0`` (d + 1, N) int16, the nearest remainder-0 lattice point; ``rank``
    (d + 1, N) int16, the place of each coordinate of ``elevated - rem0`` in decreasing order
    (on a tie the earlier coordinate comes first); and the barycentric weights (d + 1, N) float32
    of the simplex's corners 0 .. d.
    """
    d1, n = elevated.shape
    d = d1 - 1
    down = np.float32(1.0 / d1)
    nearest = np.rint(down * elevated)  # half to even, as SSE's cvtps2dq rounds
    rem0 = nearest * np.float32(d1)
    plane_sum = nearest.sum(axis=0).astype(np.int16)
    residual = elevated - rem0
    rank = np.zeros((d1, n), np.int16)
    for i in range(d):
        for j in range(i + 1, d1):
            i_smaller = residual[i] < residual[j]
            rank[i] += i_smaller
            rank[j] += ~i_smaller
    # Rounding may leave the point off the plane; a cyclic shift of the ranks brings it back.
    rank += plane_sum
    rem0 = rem0.astype(np.int16)
    shift = ((rank < 0).astype(np.int16) - (rank > d)) * np.int16(d1)
    rank += shift
    rem0 += shift
    # Barycentric weights (Adams et al. p. 10) in the C++ code's float32 order of operations.
    weight = (elevated - rem0) * down
    by_corner = np.empty_like(weight)
    np.put_along_axis(by_corner, d - rank, weight, axis=0)
    barycentric = np.empty_like(weight)
    np.subtract(by_corner[1:], by_corner[:-1], out=barycentric[1:])
    barycentric[0] = by_corner[0] + (np.float32(1.0) - by_corner[d])
    return rem0, rank, barycentric


def _unique_inverse(
    keys: np.ndarray, key_bits: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``np.unique(keys, return_inverse=True)`` for non-negative int64 keys below 2**key_bits,
    plus a table from key to unique index (-1 where absent) when the keys are few bits.

    Few bits (position-only lattices): a table over all possible keys, no sort. Otherwise, when
    the key and its position fit in 63 bits together, one sort of the pairs replaces unique's
    argsort, which is two to three times slower.
    """
    n = keys.size
    if 1 << key_bits <= max(4 * n, 1 << 20):
        present = np.zeros(1 << key_bits, bool)
        present[keys] = True
        table = np.cumsum(present, dtype=np.int32) - 1
        table[~present] = -1
        return np.flatnonzero(present), table[keys], table
    index_bits = max(n - 1, 1).bit_length()
    if key_bits + index_bits > 63:
        unique_keys, inverse = np.unique(keys, return_inverse=True)
        return unique_keys, inverse.astype(np.int32), None
    # Stable sort (timsort) profits from the runs that neighbouring pixels leave in the keys.
    pairs = np.sort((keys << index_bits) | np.arange(n), kind="stable")
    sorted_keys = pairs >> index_bits
    first = np.empty(n, bool)
    first[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=first[1:])
    inverse = np.empty(n, np.int32)
    inverse[pairs & ((1 << index_bits) - 1)] = np.cumsum(first, dtype=np.int32) - 1
    return sorted_keys[first], inverse, None


class _KeyLayout(NamedTuple):
    """How lattice points are packed into int64 keys: the remainder r in the lowest bits, then
    the quotients of d of the d + 1 coordinates (the last follows from sum = 0)."""

    coordinates: np.ndarray  # (d,) the coordinates stored, least significant first
    shifts: np.ndarray  # (d,) bit offset of each one's quotient
    widths: np.ndarray  # (d,) bits of each
    low: np.ndarray  # (d,) quotient offset, so each field is >= 0
    remainder_bits: int
    table: np.ndarray | None  # key -> lattice index (-1 if absent), for few-bit keys


def _lattice_points(
    rem0: np.ndarray, rank: np.ndarray
) -> tuple[np.ndarray, np.ndarray, _KeyLayout]:
    """Number the lattice points that the simplices touch.

    Corner r of a point's simplex is ``rem0 + canonical_r[rank]``, and every coordinate of a
    remainder-r lattice point is r (mod d + 1), so it is stored as its quotient, with a margin of
    one step so that a neighbour packs without aliasing. A sort plays the C++ hash table. The
    numbering changes no result, only speed: the coordinate that changes least often from one
    point to the next is the most significant, so neighbouring pixels get nearby lattice indices.

    Returns the sorted packed keys (M,), the vertex index of each point's corners (N, d + 1) and
    the key layout.
    """
    d1, n = rem0.shape
    d = d1 - 1
    all_quotients = rem0.astype(np.int64) // d1
    changes = np.count_nonzero(all_quotients[:, 1:] != all_quotients[:, :-1], axis=1)
    coordinates = np.argsort(changes, kind="stable")[:-1][::-1]
    quotient = all_quotients[coordinates]
    low = quotient.min(axis=1) - 2
    widths = np.ceil(np.log2(quotient.max(axis=1) + 2 - low)).astype(np.int64)
    remainder_bits = int(np.ceil(np.log2(d1)))
    shifts = remainder_bits + np.concatenate([[0], np.cumsum(widths)[:-1]])
    key_bits = remainder_bits + int(widths.sum())
    if key_bits > 62:
        raise ValueError("features span too wide a range for a 64-bit lattice key; rescale them")
    base = np.zeros(n, np.int64)
    for field in range(d):
        base += (quotient[field] - low[field]) << shifts[field]
    keys = np.empty((n, d1), np.int64)
    keys[:, 0] = base
    for r in range(1, d1):
        # canonical_r[rank] is r, or r - (d + 1) (one quotient step down) where rank > d - r
        step_down = np.zeros(n, np.int64)
        for field, coordinate in enumerate(coordinates):
            step_down += (rank[coordinate] > d - r).astype(np.int64) << shifts[field]
        keys[:, r] = base + r - step_down
    unique_keys, vertex, table = _unique_inverse(keys.ravel(), key_bits)
    layout = _KeyLayout(coordinates, shifts, widths, low, remainder_bits, table)
    return unique_keys, vertex.reshape(n, d1), layout


def _find(sorted_keys: np.ndarray, queries: np.ndarray, table: np.ndarray | None) -> np.ndarray:
    """Index of each query in sorted_keys, or -1 where absent."""
    if table is not None:
        return table[queries]
    found = np.searchsorted(sorted_keys, queries)
    return np.where(sorted_keys.take(found, mode="clip") == queries, found, -1)


def _blur_matrices(unique_keys: np.ndarray, layout: _KeyLayout) -> list[sp.csr_matrix]:
    """One (M, M) matrix per lattice direction j = 0 .. d: ``B_j V = V + (V[n1] + V[n2]) / 2``.

    Along direction j the neighbours of a lattice point x are ``n1 = x - (1, ..., 1) + (d + 1) e_j``
    and ``n2 = x + (1, ..., 1) - (d + 1) e_j``, so n2 is the inverse of n1. Each row holds n1, n2
    and itself in that order, which repeats the C++ code's float32 sums exactly; a missing
    neighbour is left out (it counts as zero).
    """
    m = len(unique_keys)
    d = len(layout.coordinates)
    remainder = unique_keys & ((1 << layout.remainder_bits) - 1)
    # n1 has remainder r - 1 and quotient q + e_j, or, from r = 0, remainder d and quotient
    # q - 1 + e_j. In each group the queries stay sorted, which searchsorted is fast on.
    groups = [np.flatnonzero(remainder == 0), np.flatnonzero(remainder != 0)]
    group_keys = [unique_keys[group] for group in groups]
    all_fields = sum(1 << int(s) for s in layout.shifts)
    field_shift = {int(c): int(s) for c, s in zip(layout.coordinates, layout.shifts, strict=True)}
    rows = np.arange(m, dtype=np.int32)
    matrices = []
    for j in range(d + 1):
        own = 1 << field_shift[j] if j in field_shift else 0
        n1 = np.empty(m, np.int32)
        steps = (d - all_fields + own, own - 1)
        for group, keys, step in zip(groups, group_keys, steps, strict=True):
            n1[group] = _find(unique_keys, keys + step, layout.table)
        has_n1 = n1 >= 0
        n2 = np.full(m, -1, np.int32)
        n2[n1[has_n1]] = rows[has_n1]
        has_n2 = n2 >= 0
        indptr = np.zeros(m + 1, np.int32)
        np.cumsum(1 + has_n1 + has_n2, out=indptr[1:])
        indices = np.empty(indptr[-1], np.int32)
        data = np.full(indptr[-1], 0.5, np.float32)
        start = indptr[:-1]
        indices[start[has_n1]] = n1[has_n1]
        indices[(start + has_n1)[has_n2]] = n2[has_n2]
        indices[indptr[1:] - 1] = rows
        data[indptr[1:] - 1] = 1.0
        matrices.append(sp.csr_matrix((data, indices, indptr), shape=(m, m)))
    return matrices


class PermutohedralLattice:
    """The lattice for one set of features, reusable for any number of filterings.

    Args:
        features: (N, d) positions to filter over, already divided by the standard deviations,
            so the filter approximates ``exp(-|f_i - f_j|^2 / 2)``.

    Attributes:
        vertex: (N, d + 1) index of the lattice point at each corner of each point's simplex.
        barycentric: (N, d + 1) float32 weights of those corners (>= 0, summing to 1).
        blur_matrices: d + 1 sparse (M, M) matrices, one per lattice direction.
        alpha: the slice factor 1 / (1 + 2^-d).
    """

    def __init__(self, features: np.ndarray) -> None:
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] < 1:
            raise ValueError(f"features must be (N, d) with d >= 1, got shape {features.shape}")
        if not np.all(np.isfinite(features)):
            raise ValueError("features must be finite")
        n, d = features.shape
        elevated = elevate(np.ascontiguousarray(features.T))
        if np.abs(elevated).max() > 16000:  # lattice coordinates are kept in int16
            raise ValueError(
                "features too large for the lattice (spread over more than ~1e4 standard "
                "deviations): use larger standard deviations"
            )
        rem0, rank, barycentric = _enclosing_simplex(elevated)
        unique_keys, vertex, layout = _lattice_points(rem0, rank)
        self._packing = (unique_keys, layout)
        self.n_points, self.dim, self.n_vertices = n, d, len(unique_keys)
        self.barycentric = np.ascontiguousarray(barycentric.T)
        self.vertex = vertex
        self.alpha = np.float32(1.0 / (1.0 + 2.0**-d))
        self.blur_matrices = _blur_matrices(unique_keys, layout)

    def lattice_points(self) -> np.ndarray:
        """Integer coordinates (M, d + 1) of the lattice points, in the plane sum(x) = 0."""
        unique_keys, layout = self._packing
        d1 = self.dim + 1
        points = np.zeros((len(unique_keys), d1), np.int64)
        remainder = unique_keys & ((1 << layout.remainder_bits) - 1)
        for field, coordinate in enumerate(layout.coordinates):
            mask = (1 << int(layout.widths[field])) - 1
            quotient = ((unique_keys >> layout.shifts[field]) & mask) + layout.low[field]
            points[:, coordinate] = d1 * quotient + remainder
        (implied,) = set(range(d1)) - set(layout.coordinates.tolist())
        points[:, implied] = -points.sum(axis=1)
        return points

    def slice_matrix(self, row_scale: np.ndarray | None = None) -> sp.csr_matrix:
        """(N, M) matrix of barycentric weights, row i times ``row_scale[i]`` (default 1).

        Its transpose (a CSC matrix, no copy) splats: each point scatters into its d + 1 corners.
        """
        weights = self.barycentric if row_scale is None else self.barycentric * row_scale[:, None]
        indptr = np.arange(0, self.vertex.size + 1, self.dim + 1, dtype=np.int32)
        shape = (self.n_points, self.n_vertices)
        return sp.csr_matrix((weights.ravel(), self.vertex.ravel(), indptr), shape=shape)

    def splat(self, values: np.ndarray) -> np.ndarray:
        """Lattice values (M, ...): each point's values (N, ...) spread over its corners."""
        return self.slice_matrix().T @ np.asarray(values, dtype=np.float32)

    def blur(self, lattice_values: np.ndarray) -> np.ndarray:
        """Lattice values blurred by [1/2, 1, 1/2] along each direction 0 .. d in turn."""
        for matrix in self.blur_matrices:
            lattice_values = matrix @ lattice_values
        return lattice_values

    def slice(self, lattice_values: np.ndarray) -> np.ndarray:
        """Values (N, ...) read back from the corners, times alpha."""
        return self.alpha * (self.slice_matrix() @ lattice_values)

    def filter(self, values: np.ndarray) -> np.ndarray:
        """Approximate Gaussian filter of values (N,) or (N, C): splat, blur, slice (float32).

        ``mean_field_filters.LatticeFilter`` computes the same with the kernel's scales folded in
        and reused buffers, for mean field's inner loop.
        """
        return self.slice(self.blur(self.splat(values)))
