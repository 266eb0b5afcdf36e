"""Plausible wrong answers to notebook 05's exercises, each of which its check must reject."""

WRONG_ANSWERS = {
    # The exponent without its factor 1/2: exp(-|f_i - f_j|^2).
    "bilateral_kernel_matrix": """
import numpy as np


def bilateral_kernel_matrix(image, xy_std, rgb_std):
    height, width = image.shape[:2]
    rows, cols = np.mgrid[:height, :width]
    positions = np.stack([cols.ravel(), rows.ravel()], axis=1) / xy_std
    colours = image.reshape(-1, 3).astype(np.float64) / rgb_std
    features = np.concatenate([positions, colours], axis=1)
    squared = ((features[:, None, :] - features[None, :, :]) ** 2).sum(axis=2)
    return np.exp(-squared)
""",
    # Keeps the pixel's own term j = i (what pydensecrf does, but not the update as derived).
    "mean_field_step": """
import numpy as np


def mean_field_step(unary, q, kernels, weights):
    energy = -unary + sum(w * (k @ q) for k, w in zip(kernels, weights, strict=True))
    energy -= energy.max(axis=1, keepdims=True)
    new_q = np.exp(energy)
    return new_q / new_q.sum(axis=1, keepdims=True)
""",
    # The two weights swapped: the farther node gets the larger share.
    "splat_weights_1d": """
import numpy as np


def splat_weights_1d(positions, spacing):
    scaled = np.asarray(positions, dtype=np.float64) / spacing
    first = int(np.floor(scaled.min()))
    n_nodes = int(np.floor(scaled.max())) + 2 - first
    below = np.floor(scaled).astype(int)
    t = scaled - below
    weights = np.zeros((n_nodes, len(scaled)))
    columns = np.arange(len(scaled))
    weights[below - first, columns] = t
    weights[below - first + 1, columns] = 1.0 - t
    return weights
""",
}
