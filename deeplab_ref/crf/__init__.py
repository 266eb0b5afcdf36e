"""The fully connected CRF of DeepLab Sec. 3.3, in NumPy and SciPy, and in PyTorch.

``dense_crf(image, probs)`` refines a network's class probabilities with DeepLab-v2's settings;
``DenseCRF`` takes any unary and kernels and exposes each mean-field step;
``PermutohedralLattice`` is the fast Gaussian filter and ``ExactGaussianFilter`` the brute-force
one it approximates. ``dense_crf_torch(images, probs)`` computes what ``dense_crf`` does for a
batch, on the CPU or CUDA (``TorchLattice`` is its filter), and ``DenseCRFLayer`` is the same
CRF as a differentiable layer with learnable kernel weights and label compatibility.
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
from deeplab_ref.crf.torch_dense_crf import dense_crf_torch
from deeplab_ref.crf.torch_lattice import TorchLattice
from deeplab_ref.crf.torch_layer import DenseCRFLayer

__all__ = [
    "DenseCRF",
    "DenseCRFLayer",
    "ExactGaussianFilter",
    "PermutohedralLattice",
    "TorchLattice",
    "bilateral_features",
    "dense_crf",
    "dense_crf_torch",
    "gaussian_features",
    "unary_from_labels",
    "unary_from_probs",
]
