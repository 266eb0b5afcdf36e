"""The fully connected CRF of DeepLab Sec. 3.3, in NumPy and SciPy.

``dense_crf(image, probs)`` refines a network's class probabilities with DeepLab-v2's settings;
``DenseCRF`` takes any unary and kernels and exposes each mean-field step;
``PermutohedralLattice`` is the fast Gaussian filter and ``ExactGaussianFilter`` the brute-force
one it approximates.
"""

from deeplab_ref.crf.dense_crf import (
    DenseCRF,
    bilateral_features,
    dense_crf,
    gaussian_features,
    unary_from_labels,
    unary_from_probs,
)
from deeplab_ref.crf.exact import ExactGaussianFilter
from deeplab_ref.crf.permutohedral import PermutohedralLattice

__all__ = [
    "DenseCRF",
    "ExactGaussianFilter",
    "PermutohedralLattice",
    "bilateral_features",
    "dense_crf",
    "gaussian_features",
    "unary_from_labels",
    "unary_from_probs",
]
