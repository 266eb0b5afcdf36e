"""The filters that mean field runs in every step (DeepLab Sec. 3.3), behind one interface.

Each mean-field step adds, for every kernel, ``after * K(before * Q)`` to the energies, with Q
(N, C) the current label probabilities, K a Gaussian filter over the kernel's features and
``before``, ``after`` the kernel's normalisation (and weight) per point. ``MeanFieldFilter`` is
what ``DenseCRF`` asks of such a filter, in two halves so that it can finish each block of
pixels (unary, every kernel, softmax) while that block is in the processor's cache:

* ``spread(Q)``: whatever work needs all points at once (for the lattice: splat and blur);
* ``gather(spread, out, rows)``: add the filtered values of ``rows`` to ``out[rows]``.

``LatticeFilter`` runs a built permutohedral lattice (``permutohedral.py``) and
``ExactScaledFilter`` the brute-force filter (``exact.py``). The lattice's splat, blur and slice
are sparse matrices; what makes them fast in NumPy/SciPy is moving less memory:

* the kernel's normalisation and weight are folded into the splat and slice matrices once;
* products write into buffers reused from step to step (``accumulate_product``), instead of a
  freshly allocated output each time;
* the blur and the slice run over blocks of ``ROW_BLOCK`` rows, so the block being written stays
  in the cache while it is zeroed, summed into and (for the slice) turned into probabilities by
  the caller, instead of travelling to memory and back several times.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import scipy.sparse as sp

# The C++ loops behind scipy's sparse-times-dense product (y += A x); see accumulate_product.
from scipy.sparse import _sparsetools

from deeplab_ref.crf.exact import ExactGaussianFilter
from deeplab_ref.crf.permutohedral import PermutohedralLattice

ROW_BLOCK = 8192  # rows per block: 8192 x 21 labels x 4 bytes = 0.7 MB, within a core's L2 cache


class MeanFieldFilter(Protocol):
    """``values -> after * K(before * values)`` for values (N, C) float32, added to an output."""

    def spread(self, values: np.ndarray) -> np.ndarray:
        """The part that needs all points: an intermediate array for ``gather``."""
        ...

    def gather(self, spread: np.ndarray, out: np.ndarray, rows: slice) -> None:
        """Add the filtered values of ``rows`` (a step-1 slice) to ``out[rows]``."""
        ...

    def __call__(self, values: np.ndarray, out: np.ndarray) -> None:
        """Add the filtered values (N, C) to out (N, C), all rows."""
        ...


def accumulate_product(
    matrix: sp.csr_matrix | sp.csc_matrix,
    x: np.ndarray,
    out: np.ndarray,
    rows: slice | None = None,
) -> None:
    """``out[rows] += (matrix @ x)[rows]`` in place, for float32 C-contiguous x (K, C) and out
    (R, C); ``rows`` (a step-1 slice, CSR matrices only) defaults to all rows."""
    if not (x.flags.c_contiguous and out.flags.c_contiguous and x.dtype == out.dtype == np.float32):
        raise ValueError("x and out must be C-contiguous float32 arrays")
    n_rows, n_columns = matrix.shape
    if matrix.format == "csc":
        if rows is not None:
            raise ValueError("rows applies to CSR matrices only")
        routine, indptr = _sparsetools.csc_matvecs, matrix.indptr
    else:
        start, stop, _ = (rows or slice(None)).indices(n_rows)
        routine, indptr = _sparsetools.csr_matvecs, matrix.indptr[start : stop + 1]
        n_rows, out = stop - start, out[start:stop]
    routine(n_rows, n_columns, x.shape[1], indptr, matrix.indices, matrix.data, x, out)


class LatticeFilter:
    """``values -> after * K(before * values)`` on a built lattice: ``spread`` splats and blurs
    (all points), ``gather`` slices (the rows asked for).

    Args:
        lattice: the built lattice.
        before, after: per-point scales (N,) float32, or None for 1.
    """

    def __init__(
        self,
        lattice: PermutohedralLattice,
        before: np.ndarray | None = None,
        after: np.ndarray | None = None,
    ) -> None:
        self.n_points, self.n_vertices = lattice.n_points, lattice.n_vertices
        self.splat = lattice.slice_matrix(before).T
        slice_scale = np.full(lattice.n_points, lattice.alpha, np.float32)
        if after is not None:
            slice_scale *= after
        self.slicer = lattice.slice_matrix(slice_scale)
        self.blur_matrices = lattice.blur_matrices
        self._buffers: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def spread(self, values: np.ndarray) -> np.ndarray:
        """Splat values (N, C) and blur them: lattice values (M, C), in a reused buffer."""
        n_channels = values.shape[1]
        if n_channels not in self._buffers:
            shape = (self.n_vertices, n_channels)
            self._buffers[n_channels] = (np.empty(shape, np.float32), np.empty(shape, np.float32))
        lattice_values, blurred = self._buffers[n_channels]
        lattice_values.fill(0.0)
        accumulate_product(self.splat, values, lattice_values)
        for matrix in self.blur_matrices:
            for start in range(0, self.n_vertices, ROW_BLOCK):
                rows = slice(start, min(start + ROW_BLOCK, self.n_vertices))
                blurred[rows] = 0.0
                accumulate_product(matrix, lattice_values, blurred, rows)
            lattice_values, blurred = blurred, lattice_values
        return lattice_values

    def gather(self, spread: np.ndarray, out: np.ndarray, rows: slice) -> None:
        """Add the slice of the lattice values (M, C) for ``rows`` of the points to out[rows]."""
        accumulate_product(self.slicer, spread, out, rows)

    def __call__(self, values: np.ndarray, out: np.ndarray) -> None:
        """Add ``after * K(before * values)`` to out, both (N, C) float32."""
        self.gather(self.spread(values), out, slice(0, self.n_points))


class ExactScaledFilter:
    """``values -> after * K(before * values)`` by brute force: ``spread`` filters all points
    (O(N^2), nothing to gain from blocks), ``gather`` adds the rows asked for.

    Args:
        gaussian: the exact filter over the kernel's features.
        before, after: per-point scales (N,) float32, or None for 1.
    """

    def __init__(
        self,
        gaussian: ExactGaussianFilter,
        before: np.ndarray | None = None,
        after: np.ndarray | None = None,
    ) -> None:
        self.gaussian = gaussian
        self.before = 1.0 if before is None else before[:, None]
        self.after = 1.0 if after is None else after[:, None]

    def spread(self, values: np.ndarray) -> np.ndarray:
        """``after * K(before * values)`` for all points, (N, C) float32."""
        return (self.after * self.gaussian.filter(self.before * values)).astype(np.float32)

    def gather(self, spread: np.ndarray, out: np.ndarray, rows: slice) -> None:
        """Add ``spread[rows]`` to ``out[rows]``."""
        out[rows] += spread[rows]

    def __call__(self, values: np.ndarray, out: np.ndarray) -> None:
        """Add ``after * K(before * values)`` to out, both (N, C)."""
        out += self.spread(values)
