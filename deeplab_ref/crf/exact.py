"""The exact Gaussian filter of the fully connected CRF, by brute force.

DeepLab Sec. 3.3's pairwise term couples every pair of pixels, so one mean-field step needs, for
every pixel i and label l,

    K(Q)_il = sum_j exp(-|f_i - f_j|^2 / 2) Q_jl                (f: features / standard deviations)

over all N pixels j: O(N^2) time. This module computes it exactly, a block of rows at a time so
that memory stays O(block * N). It is too slow for whole photos (500x375 means 3.5e10 kernel
values per step) but it is the ground truth that the permutohedral lattice approximates, and the
filter of ``DenseCRF.add_kernel(..., exact=True)`` on small images.
"""

from __future__ import annotations

import numpy as np


class ExactGaussianFilter:
    """Brute-force ``K(V)_i = sum_j exp(-|f_i - f_j|^2 / 2) V_j`` for features (N, d).

    Args:
        features: (N, d) positions divided by the standard deviations.
        include_self: keep the j = i term (weight 1), as pydensecrf does; the paper's energy sums
            over j != i only.
        block: rows of the (N, N) kernel held in memory at once.
        cache_limit: keep the whole kernel (8 N^2 bytes) between calls when N^2 is at most this.
    """

    def __init__(
        self,
        features: np.ndarray,
        include_self: bool = True,
        block: int = 1024,
        cache_limit: int = 2**24,
    ) -> None:
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2:
            raise ValueError(f"features must be (N, d), got shape {features.shape}")
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        self.features = features
        self.include_self = include_self
        self.block = block
        self.cache_limit = cache_limit
        self._kernel: np.ndarray | None = None

    def _kernel_rows(self, rows: slice) -> np.ndarray:
        f = self.features
        squared_norm = np.einsum("nd,nd->n", f, f)
        distance2 = squared_norm[rows, None] + squared_norm[None, :] - 2.0 * f[rows] @ f.T
        return np.exp(-0.5 * np.maximum(distance2, 0.0))

    def filter(self, values: np.ndarray) -> np.ndarray:
        """Filter values (N,) or (N, C); float64 result of the same shape."""
        values = np.asarray(values, dtype=np.float64)
        n = len(self.features)
        if values.shape[0] != n:
            raise ValueError(f"values has {values.shape[0]} rows, features {n}")
        if n * n <= self.cache_limit:  # small: keep the whole (N, N) kernel for the next call
            if self._kernel is None:
                self._kernel = self._kernel_rows(slice(0, n))
            out = self._kernel @ values
        else:
            out = np.empty_like(values)
            for start in range(0, n, self.block):
                rows = slice(start, start + self.block)
                out[rows] = self._kernel_rows(rows) @ values
        if not self.include_self:
            out -= values
        return out
