"""Mean-field inference in the fully connected CRF (DeepLab Sec. 3.3, Eq. 2 and 3).

DeepLab refines the network's label probabilities P with the energy of Krähenbühl and Koltun
(NIPS 2011)

    E(x) = sum_i theta_i(x_i) + sum_{i<j} theta_ij(x_i, x_j),    theta_i = -log P(x_i)

    theta_ij = mu(x_i, x_j) [ w1 exp(-|p_i - p_j|^2 / 2 s_a^2 - |I_i - I_j|^2 / 2 s_b^2)
                            + w2 exp(-|p_i - p_j|^2 / 2 s_g^2) ]

with Potts mu = [x_i != x_j], pixel positions p and colours I: a *bilateral* kernel (nearby pixels
of similar colour want one label) and a *Gaussian* one (smoothness). Mean field approximates the
posterior by a product Q(x) = prod_i Q_i(x_i) and updates every pixel at once:

    Q_i(l) <- softmax_l( -theta_i(l) + sum_k w_k Ktilde_k(Q)_il )

where ``Ktilde = n * K(n * .)`` is the Gaussian filter over the kernel's features with symmetric
normalisation ``n = 1 / sqrt(K(1))``. As in pydensecrf (the C++ code DeepLab used), a pixel's own
term stays in the sum, and K is the permutohedral lattice's approximation (``permutohedral.py``);
``exact.py`` gives the brute-force filter for small images. ``mean_field_filters.py`` runs either
inside the loop, with the normalisation and weight folded in.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from deeplab_ref.crf import checks
from deeplab_ref.crf.exact import ExactGaussianFilter
from deeplab_ref.crf.mean_field_filters import (
    ROW_BLOCK,
    ExactScaledFilter,
    LatticeFilter,
    MeanFieldFilter,
)
from deeplab_ref.crf.permutohedral import PermutohedralLattice

NORMALIZATIONS = ("symmetric", "after", "before", "none")
PROBABILITY_CLIP = checks.PROBABILITY_CLIP


def gaussian_features(height: int, width: int, xy_std: float) -> np.ndarray:
    """Pixel positions (col / xy_std, row / xy_std): (H * W, 2) float32, row-major pixels."""
    scale = np.float32(checks.positive("xy_std", xy_std))
    rows, cols = np.mgrid[:height, :width].astype(np.float32)
    return np.stack([cols.ravel() / scale, rows.ravel() / scale], axis=1)


def bilateral_features(image: np.ndarray, xy_std: float, rgb_std: float) -> np.ndarray:
    """(col, row) / xy_std and (r, g, b) / rgb_std per pixel of image (H, W, 3): (H * W, 5)."""
    height, width = image.shape[:2]
    colour = image.reshape(-1, 3).astype(np.float32) / np.float32(
        checks.positive("rgb_std", rgb_std)
    )
    return np.concatenate([gaussian_features(height, width, xy_std), colour], axis=1)


def unary_from_probs(probs: np.ndarray) -> np.ndarray:
    """Unary energies -log P (C, H, W) float32, with P clipped to [1e-5, 1] as pydensecrf does."""
    return (-np.log(np.clip(probs, PROBABILITY_CLIP, 1.0))).astype(np.float32)


def unary_from_labels(
    labels: np.ndarray, n_labels: int, gt_prob: float, ignore_index: int = 255
) -> np.ndarray:
    """Unary energies (C, H, W) float32 from a label map (H, W): the given label has probability
    gt_prob, the others share the rest, and ``ignore_index`` pixels are uniform (pydensecrf's
    ``unary_from_labels`` with 0-based labels and an explicit "unknown" value)."""
    if not 0 < gt_prob < 1:
        raise ValueError(f"gt_prob must be in (0, 1), got {gt_prob}")
    labels = np.asarray(labels)
    known = labels != ignore_index
    if labels.ndim != 2 or np.any((labels[known] < 0) | (labels[known] >= n_labels)):
        raise ValueError(f"labels must be (H, W) in 0..{n_labels - 1} or {ignore_index}")
    unary = np.full(
        (n_labels, *labels.shape), -np.log((1.0 - gt_prob) / (n_labels - 1)), np.float32
    )
    rows, cols = np.nonzero(known)
    unary[labels[known], rows, cols] = -np.log(gt_prob)
    unary[:, ~known] = -np.log(1.0 / n_labels)
    return unary


def softmax_labels(energy: np.ndarray, bounded: bool = False) -> np.ndarray:
    """Softmax over the label axis of energies (N, C) float32, in place.

    Subtracting each pixel's maximum keeps exp in range; ``bounded`` says the caller knows every
    pixel's maximum lies in [0, 80], where exp can neither overflow nor make a sum of zero, so
    that pass (slow over short rows) is skipped. Sums over labels are a matrix-vector product.
    """
    if not bounded:
        energy -= energy.max(axis=1, keepdims=True)
    np.exp(energy, out=energy)
    energy /= (energy @ np.ones(energy.shape[1], energy.dtype))[:, None]
    return energy


class DenseCRF:
    """A fully connected CRF over an H x W grid with C labels, Potts compatibility.

    Args:
        unary: (C, H, W) energies theta_i(l) = -log P_i(l).

    Add kernels with ``add_gaussian``, ``add_bilateral`` or ``add_kernel`` (any features), then
    run ``inference`` or step through ``iterate``.
    """

    def __init__(self, unary: np.ndarray) -> None:
        unary = np.asarray(unary)
        if unary.ndim != 3 or not np.issubdtype(unary.dtype, np.floating):
            raise ValueError(
                f"unary must be a float (C, H, W) array, got {unary.dtype} {unary.shape}"
            )
        if not np.all(np.isfinite(unary)):
            raise ValueError("unary must be finite")
        self.n_labels, self.height, self.width = unary.shape
        # Softmax ignores a per-pixel constant: make each pixel's best energy 0 once, so later
        # updates can skip the per-pixel maximum (see softmax_labels).
        flat = unary.reshape(self.n_labels, -1).astype(np.float32, copy=False)
        best = flat.min(axis=0)
        self.best_neg_unary = -best[:, None]
        # Pixels in rows, labels in columns: the layout sparse-times-dense products run fastest on.
        self.neg_unary = np.ascontiguousarray((best - flat).T)
        self.kernels: list[MeanFieldFilter] = []
        self.weights: list[float] = []

    def add_kernel(
        self,
        features: np.ndarray,
        weight: float,
        normalization: str = "symmetric",
        exact: bool = False,
        include_self: bool = True,
    ) -> None:
        """Add ``weight * Ktilde`` over features (H * W, d) (positions / standard deviations).

        normalization: "symmetric" n K(n Q), n = 1/sqrt(K(1)) (pydensecrf's default); "after"
        K(Q) / K(1) (the NIPS'11 paper and original DeepLab code); "before" K(Q / K(1)); "none".
        exact: brute-force O(N^2) filter instead of the lattice; include_self only applies then.
        """
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}"
            )
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[0] != self.height * self.width:
            raise ValueError(f"features must be (H * W, d), got shape {features.shape}")
        gaussian = (
            ExactGaussianFilter(features, include_self=include_self)
            if exact
            else PermutohedralLattice(features)
        )
        norm = None
        if normalization != "none":
            row_sum = gaussian.filter(np.ones(len(features), np.float32))
            if normalization == "symmetric":
                norm = (1.0 / np.sqrt(row_sum + 1e-20)).astype(np.float32)
            else:
                norm = (1.0 / (row_sum + 1e-20)).astype(np.float32)
        before = norm if normalization in ("symmetric", "before") else None
        after = norm if normalization in ("symmetric", "after") else None
        weight_ = np.float32(checks.finite("weight", weight))
        after = np.full(len(features), weight_, np.float32) if after is None else after * weight_
        kernel: MeanFieldFilter = (
            ExactScaledFilter(gaussian, before, after)
            if exact
            else LatticeFilter(gaussian, before, after)
        )
        self.kernels.append(kernel)
        self.weights.append(float(weight))

    def add_gaussian(self, xy_std: float, weight: float, **options) -> None:
        """The smoothness kernel: positions only."""
        self.add_kernel(gaussian_features(self.height, self.width, xy_std), weight, **options)

    def add_bilateral(
        self, image: np.ndarray, xy_std: float, rgb_std: float, weight: float, **options
    ) -> None:
        """The appearance kernel: positions and the colours of image (H, W, 3)."""
        if image.shape[:2] != (self.height, self.width):
            raise ValueError(f"image is {image.shape[:2]}, the CRF {(self.height, self.width)}")
        self.add_kernel(bilateral_features(image, xy_std, rgb_std), weight, **options)

    def add_pairwise(self, q: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Add sum_k w_k Ktilde_k(Q) to out, for Q and out (N, C) float32; returns out."""
        for kernel in self.kernels:
            kernel(q, out)
        return out

    def _grid(self, q: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(q.T).reshape(self.n_labels, self.height, self.width)

    def _steps(self, iterations: int) -> Iterator[np.ndarray]:
        """Q (N, C) before the first update and after each of ``iterations`` (each Q is
        overwritten two steps later: copy what you keep)."""
        iterations = checks.iterations(iterations)
        q = softmax_labels(self.neg_unary.copy(), bounded=True)
        yield q
        attractive = all(weight >= 0 for weight in self.weights)
        energy = np.empty_like(q)  # two buffers take turns: fresh pages cost more than a copy
        for _ in range(iterations):
            spread = [kernel.spread(q) for kernel in self.kernels]
            # Finish one block of pixels at a time (unary, each kernel's slice, softmax) while
            # it is in the cache.
            for start in range(0, len(q), ROW_BLOCK):
                rows = slice(start, start + ROW_BLOCK)
                block = energy[rows]
                np.copyto(block, self.neg_unary[rows])
                for kernel, values in zip(self.kernels, spread, strict=True):
                    kernel.gather(values, energy, rows)
                # Non-negative weights make the pairwise part >= 0: each pixel's maximum >= 0.
                softmax_labels(block, bounded=attractive and block.max() <= 80.0)
            q, energy = energy, q
            yield q

    def iterate(self, iterations: int) -> Iterator[np.ndarray]:
        """Yield Q (C, H, W) float32 before the first update and after each of ``iterations``."""
        for q in self._steps(iterations):
            yield self._grid(q)

    def inference(self, iterations: int) -> np.ndarray:
        """Q (C, H, W) float32 after ``iterations`` mean-field updates."""
        for step in self._steps(iterations):
            q = step
        return self._grid(q)

    def objective(self, q: np.ndarray) -> float:
        """The mean-field free energy KL(Q || P) - log Z of Q (C, H, W):

        sum_il Q log Q + sum_il Q theta_i(l) - 1/2 sum_k w_k sum_il Q Ktilde_k(Q)

        (Potts written as a reward for equal labels, the same up to a constant). Mean field lowers
        it in practice (no step is guaranteed to); pydensecrf's ``klDivergence`` counts the
        pairwise sum twice.
        """
        flat = np.ascontiguousarray(q.reshape(self.n_labels, -1).T, np.float32)
        entropy_term = np.sum(flat * np.log(np.maximum(flat, 1e-20)), dtype=np.float64)
        unary_term = -np.sum(flat * (self.neg_unary + self.best_neg_unary), dtype=np.float64)
        pairwise = self.add_pairwise(flat, np.zeros_like(flat))
        pairwise_term = np.sum(flat * pairwise, dtype=np.float64)
        return float(entropy_term + unary_term - 0.5 * pairwise_term)


def _check_inputs(image: np.ndarray, probs: np.ndarray) -> None:
    """The checks of ``checks.py``, on numpy arrays."""
    image_ok = isinstance(image, np.ndarray) and image.dtype == np.uint8
    found = getattr(image, "dtype", image)
    checks.check_image("image", image_ok, "numpy array", found, getattr(image, "shape", ()))
    probs_ok = isinstance(probs, np.ndarray) and np.issubdtype(probs.dtype, np.floating)
    found = getattr(probs, "dtype", probs)
    shape = getattr(probs, "shape", ())
    checks.check_probs_shape("probs", probs_ok, "numpy array", found, shape, image.shape)
    all_finite = bool(np.all(np.isfinite(probs)))
    total = probs.sum(axis=0, dtype=np.float64)
    minimum = float(probs.min()) if all_finite else float("nan")
    checks.check_probs_values("probs", all_finite, minimum, float(total.min()), float(total.max()))


def dense_crf(
    image: np.ndarray,
    probs: np.ndarray,
    *,
    iterations: int = 10,
    pos_xy_std: float = 1.0,
    pos_w: float = 3.0,
    bi_xy_std: float = 67.0,
    bi_rgb_std: float = 3.0,
    bi_w: float = 4.0,
) -> np.ndarray:
    """Refine class probabilities with DeepLab's fully connected CRF (Sec. 3.3).

    Args:
        image: RGB image (H, W, 3) uint8.
        probs: class probabilities (C, H, W), summing to 1 over C (e.g. the network's softmax,
            upsampled to the image size).
        iterations: mean-field updates (10 in DeepLab).
        pos_xy_std, pos_w: the Gaussian (smoothness) kernel's standard deviation in pixels and
            weight (s_gamma, w2).
        bi_xy_std, bi_rgb_std, bi_w: the bilateral kernel's standard deviations in pixels and in
            intensity levels (0-255), and its weight (s_alpha, s_beta, w1).
            Defaults: 4/67/3 and 3/1, the ResNet-101 values kazuto1011/deeplab-pytorch uses and
            attributes to the official release (second-hand; the paper fixes w2 = sigma_gamma
            = 3 and reports no chosen values).

    Returns:
        Refined probabilities Q (C, H, W) float32; ``Q.argmax(0)`` is the label map. Matches
        pydensecrf's ``DenseCRF2D`` with ``unary_from_softmax`` to float32 noise.
    """
    _check_inputs(image, probs)
    crf = DenseCRF(unary_from_probs(probs))
    crf.add_gaussian(pos_xy_std, checks.finite("pos_w", pos_w))
    crf.add_bilateral(image, bi_xy_std, bi_rgb_std, checks.finite("bi_w", bi_w))
    return crf.inference(iterations)
