"""Checks for the exercises of notebook 05 (the fully connected CRF, DeepLab Sec. 3.3).

* ``check_bilateral_kernel_matrix``: the (N, N) matrix of the bilateral kernel
  exp(-|f_i - f_j|^2 / 2) over the features (col, row) / sigma_alpha and (r, g, b) / sigma_beta,
  against ``ExactGaussianFilter`` applied to the identity;
* ``check_mean_field_step``: one mean-field update as derived from the KL objective (Potts
  model, the sum over j != i, no normalisation), against ``DenseCRF`` with exact filtering,
  ``normalization="none"`` and ``include_self=False``, for two steps of a tiny CRF;
* ``check_splat_weights_1d``: the linear-interpolation splat weights on a 1-D grid, against
  ``grid_filter.splat_matrix``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from deeplab_ref import grid_filter
from deeplab_ref.crf import (
    DenseCRF,
    ExactGaussianFilter,
    bilateral_features,
    gaussian_features,
    unary_from_probs,
)
from deeplab_ref.exercises import attempt, expect, passed


def _as_array(value: object, name: str) -> np.ndarray:
    expect(isinstance(value, np.ndarray), f"{name} should return a numpy array, got {type(value)}")
    return np.asarray(value, dtype=np.float64)


def _images() -> list[tuple[np.ndarray, float, float]]:
    rng = np.random.default_rng(5)
    return [
        (rng.integers(0, 256, size=(3, 4, 3), dtype=np.uint8), 2.0, 40.0),
        (rng.integers(0, 256, size=(5, 2, 3), dtype=np.uint8), 0.8, 90.0),
        (rng.integers(100, 140, size=(4, 6, 3), dtype=np.uint8), 3.0, 13.0),
    ]


def _wrapped_kernel(image: np.ndarray, xy_std: float, rgb_std: float) -> np.ndarray:
    """The kernel matrix as computed with uint8 colour differences (which wrap around)."""
    height, width = image.shape[:2]
    rows, cols = np.divmod(np.arange(height * width), width)
    xy = np.stack([cols, rows], axis=1) / xy_std
    colours = image.reshape(-1, 3)
    wrapped = (colours[:, None, :] - colours[None, :, :]).astype(np.float64) / rgb_std
    distance = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1) + (wrapped**2).sum(-1)
    return np.exp(-0.5 * distance)


def check_bilateral_kernel_matrix(bilateral_kernel_matrix: Callable) -> None:
    """bilateral_kernel_matrix(image, xy_std, rgb_std) -> (H*W, H*W) against the library."""
    name = "bilateral_kernel_matrix"
    for image, xy_std, rgb_std in _images():
        height, width = image.shape[:2]
        n = height * width
        got = _as_array(attempt(bilateral_kernel_matrix, image.copy(), xy_std, rgb_std), name)
        features = bilateral_features(image, xy_std, rgb_std)
        want = ExactGaussianFilter(features).filter(np.eye(n))
        case = f"a {height}x{width} image, xy_std={xy_std}, rgb_std={rgb_std}"
        expect(
            got.shape == (n, n),
            f"for {case} expected shape ({n}, {n}) (one row and column per pixel), got {got.shape}",
        )
        expect(
            np.allclose(np.diag(got), 1.0),
            f"for {case} the diagonal should be exp(0) = 1 (a pixel against itself); "
            f"got {np.round(np.diag(got)[:4], 4)}",
        )
        if not np.allclose(got, want, rtol=1e-5, atol=1e-6):
            i, j = np.unravel_index(np.argmax(np.abs(got - want)), want.shape)
            halved = np.exp(2.0 * np.log(np.maximum(want, 1e-300)))
            if np.allclose(got, halved, rtol=1e-5, atol=1e-6):
                hint = " It looks like exp(-|f_i - f_j|^2): the exponent has a factor 1/2."
            elif np.allclose(got, _wrapped_kernel(image, xy_std, rgb_std), rtol=1e-5, atol=1e-6):
                hint = (
                    " The colour differences wrapped around: uint8 subtraction gives 3 - 5 = 254."
                    " Convert the image to float (image.astype(float)) before subtracting."
                )
            else:
                hint = (
                    " Check the features (col / xy_std, row / xy_std, r / rgb_std, g / rgb_std, "
                    "b / rgb_std), the pixel order (index = row * W + col) and the exponent "
                    "-|f_i - f_j|^2 / 2."
                )
            raise_at = (
                f"for {case}: entry [{i}, {j}] is {got[i, j]:.6g}, expected {want[i, j]:.6g}."
            )
            expect(False, raise_at + hint)
    passed(name, "3 images, against ExactGaussianFilter")


def _softmax(energy: np.ndarray) -> np.ndarray:
    energy = energy - energy.max(axis=1, keepdims=True)
    q = np.exp(energy)
    return q / q.sum(axis=1, keepdims=True)


def _mean_field_problem(
    seed: int, height: int, width: int, n_labels: int
) -> tuple[np.ndarray, list[np.ndarray], list[float], list[np.ndarray]]:
    """A tiny CRF: unary (N, C), kernel matrices with their diagonal, weights, and the library's
    Q (N, C) before the first step and after steps 1 and 2 (normalization "none", j != i)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    probs = rng.dirichlet(np.ones(n_labels), size=(height, width)).transpose(2, 0, 1)
    unary = unary_from_probs(probs.astype(np.float32))
    all_features = [gaussian_features(height, width, 1.5), bilateral_features(image, 3.0, 60.0)]
    weights = [0.6, 0.9]
    crf = DenseCRF(unary)
    for features, weight in zip(all_features, weights, strict=True):
        crf.add_kernel(features, weight, normalization="none", exact=True, include_self=False)
    steps = [q.reshape(n_labels, -1).T.astype(np.float64) for q in crf.iterate(2)]
    kernels = [ExactGaussianFilter(f).filter(np.eye(height * width)) for f in all_features]
    return unary.reshape(n_labels, -1).T.astype(np.float64), kernels, weights, steps


def check_mean_field_step(mean_field_step: Callable) -> None:
    """mean_field_step(unary, q, kernels, weights) -> Q (N, C) against two DenseCRF steps."""
    name = "mean_field_step"
    for seed, height, width, n_labels in [(0, 3, 4, 2), (1, 4, 5, 3)]:
        unary, kernels, weights, steps = _mean_field_problem(seed, height, width, n_labels)
        for k in (1, 2):
            q = steps[k - 1]
            got = _as_array(
                attempt(
                    mean_field_step,
                    unary.copy(),
                    q.copy(),
                    [m.copy() for m in kernels],
                    list(weights),
                ),
                name,
            )
            case = f"{height}x{width} pixels, {n_labels} labels, step {k}"
            expect(
                got.shape == q.shape,
                f"for {case} expected Q of shape {q.shape} (pixels, labels), got {got.shape}",
            )
            expect(
                np.allclose(got.sum(axis=1), 1.0, atol=1e-6),
                f"for {case} each row of Q (one pixel) should sum to 1 over the labels: "
                "normalise with a softmax over axis 1",
            )
            if np.allclose(got, steps[k], rtol=1e-4, atol=1e-5):
                continue
            pairwise = sum(w * (m @ q) for m, w in zip(kernels, weights, strict=True))
            own = sum(weights) * q
            hints = [
                (
                    _softmax(-unary + pairwise),
                    "you kept each pixel's own term (j = i): the derivation sums over j != i, "
                    "so leave the diagonal of each kernel out",
                ),
                (
                    _softmax(-unary - pairwise + own),
                    "the pairwise term has the wrong sign: the Potts penalty for *different* "
                    "labels turns into a reward +w sum_j k_ij Q_j(l) for the same label",
                ),
                (
                    _softmax(unary + pairwise - own),
                    "the unary has the wrong sign: the energy is -log P, so the update uses "
                    "-theta_i(l) = +log P",
                ),
            ]
            hint = next(
                (text for want, text in hints if np.allclose(got, want, rtol=1e-4, atol=1e-5)),
                "compare with Q_i(l) = softmax_l(-theta_i(l) + sum_k w_k sum_{j != i} "
                "k_k(f_i, f_j) Q_j(l))",
            )
            error = np.abs(got - steps[k]).max()
            expect(False, f"for {case} Q differs from the library's by up to {error:.3g}: {hint}")
    passed(name, "two steps of two tiny CRFs, against DenseCRF with exact filtering")


def check_splat_weights_1d(splat_weights_1d: Callable) -> None:
    """splat_weights_1d(positions, spacing) -> (M, N) against ``grid_filter.splat_matrix``."""
    name = "splat_weights_1d"
    rng = np.random.default_rng(2)
    cases = [
        (np.array([0.1, 0.9, 2.5]), 1.0),
        (np.array([0.0, 1.5, 3.0]), 1.5),
        (np.sort(rng.uniform(-3.0, 4.0, size=9)), grid_filter.LATTICE_SPACING),
        (np.array([-1.3]), 0.5),
    ]
    for positions, spacing in cases:
        got = _as_array(attempt(splat_weights_1d, positions.copy(), spacing), name)
        want = grid_filter.splat_matrix(positions, spacing)
        nodes = grid_filter.grid_nodes(positions, spacing)
        case = f"positions {np.round(positions, 3).tolist()}, spacing {spacing:.4g}"
        expect(
            got.shape == want.shape,
            f"for {case} expected shape {want.shape}: {len(nodes)} nodes, from "
            f"floor(min / spacing) = {round(nodes[0] / spacing)} to floor(max / spacing) + 1 = "
            f"{round(nodes[-1] / spacing)}, by {positions.size} points; got {got.shape}",
        )
        expect(
            np.allclose(got.sum(axis=0), 1.0),
            f"for {case} each point's weights (a column) should sum to 1, got "
            f"{np.round(got.sum(axis=0), 3).tolist()}",
        )
        if not np.allclose(got, want, atol=1e-9):
            hint = (
                "the nearer node should get the larger weight: 1 - t below, t above"
                if not np.allclose(nodes @ got, positions)
                else "each point's two weights go on the node at or below it and the next one"
            )
            expect(False, f"for {case} the weights differ from the library's: {hint}")
    passed(name, "4 cases, against grid_filter.splat_matrix")
