"""Mean-field inference of the fully connected CRF in PyTorch, for a batch of images.

The same model and update as the NumPy ``dense_crf.py`` (DeepLab Sec. 3.3; Krähenbühl and
Koltun, NIPS 2011): unaries theta_i(l) = -log P_i(l), a bilateral and a Gaussian kernel, and

    Q <- softmax_l( -theta_i(l) - sum_l' mu(l, l') sum_k w_k Ktilde_k(Q)_il' )

with ``Ktilde = n * K(n * .)``, n = 1 / sqrt(K(1)) (symmetric normalisation, pydensecrf's default)
and K the permutohedral lattice's Gaussian filter (``torch_lattice.py``), a pixel's own term
included. For Potts, mu(l, l') = [l != l'], the sum over l' != l is the sum over all labels (the
same for every label, which softmax ignores) minus the own label's term, so Potts is the update

    Q <- softmax( -theta + sum_k w_k Ktilde_k(Q) )

which is what pydensecrf runs and what ``compatibility=None`` computes. A general matrix mu is
the label compatibility that CRF-as-RNN (Zheng et al., ICCV 2015) learns (``torch_layer.py``).

Every image's pixels are rows of one (P, C) matrix; the lattices keep images apart, so the whole
batch runs each step as one splat, blur and slice per kernel.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from deeplab_ref.crf import checks
from deeplab_ref.crf.torch_lattice import TorchLattice, lattice_filter


class PixelBatch:
    """The pixels of several images as rows: image k's pixels, row-major, come after image
    k - 1's. ``sizes`` are the (H, W) of the images, ``image_index`` (P,) the image of each row."""

    def __init__(self, sizes: Sequence[tuple[int, int]], device: torch.device) -> None:
        self.sizes = [(int(h), int(w)) for h, w in sizes]
        self.device = device
        counts = torch.tensor([h * w for h, w in self.sizes], device=device)
        self.image_index = torch.repeat_interleave(torch.arange(len(counts), device=device), counts)

    def rows(self, per_image: Sequence[Tensor]) -> Tensor:
        """(C, H, W) tensors, one per image, as one (P, C) matrix."""
        return torch.cat([t.reshape(t.shape[0], -1).T for t in per_image]).contiguous()

    def images(self, rows: Tensor) -> list[Tensor]:
        """The inverse of ``rows``: a (P, C) matrix back to one (C, H, W) tensor per image."""
        parts = torch.split(rows, [h * w for h, w in self.sizes])
        return [p.T.reshape(-1, h, w) for p, (h, w) in zip(parts, self.sizes, strict=True)]

    def positions(self, xy_std: float) -> Tensor:
        """(col / xy_std, row / xy_std) of every pixel: (P, 2) float32, as ``gaussian_features``."""
        scale = torch.tensor(checks.positive("xy_std", xy_std), dtype=torch.float32)
        grids = []
        for h, w in self.sizes:
            rows, cols = torch.meshgrid(
                torch.arange(h, dtype=torch.float32, device=self.device),
                torch.arange(w, dtype=torch.float32, device=self.device),
                indexing="ij",
            )
            grids.append(torch.stack([cols.reshape(-1), rows.reshape(-1)], dim=1))
        return torch.cat(grids) / scale.to(self.device)

    def bilateral(self, images: Sequence[Tensor], xy_std: float, rgb_std: float) -> Tensor:
        """Positions / xy_std and colours / rgb_std of every pixel of images (H, W, 3) uint8:
        (P, 5) float32, as ``bilateral_features``."""
        scale = torch.tensor(checks.positive("rgb_std", rgb_std), dtype=torch.float32)
        colours = torch.cat([image.reshape(-1, 3) for image in images]).to(torch.float32)
        return torch.cat([self.positions(xy_std), colours / scale.to(self.device)], dim=1)


class NormalizedKernel:
    """``Q -> n * K(n * Q)`` for one kernel over a batch: the lattice and n = 1 / sqrt(K(1)) are
    built once, from the features alone; the map is linear in Q and differentiable.

    The splat and the slice both weigh a point's corners by its barycentric weights, so
    multiplying those by n gives n * K(n * Q) in one filtering (the NumPy version folds n into
    its sparse matrices the same way).
    """

    def __init__(self, features: Tensor, image_index: Tensor | None = None) -> None:
        lattice = TorchLattice(features, image_index)
        ones = torch.ones(lattice.n_points, 1, device=features.device)
        self.norm = torch.rsqrt(lattice.filter(ones) + 1e-20)  # (P, 1) float32
        self.lattice = lattice.scaled(self.norm[:, 0])

    def __call__(self, q: Tensor) -> Tensor:
        return lattice_filter(self.lattice, q)


def deeplab_kernels(
    pixels: PixelBatch,
    images: Sequence[Tensor],
    pos_xy_std: float,
    bi_xy_std: float,
    bi_rgb_std: float,
) -> tuple[NormalizedKernel, NormalizedKernel]:
    """DeepLab's two kernels over a batch: Gaussian (positions) and bilateral (positions and
    colours of images (H, W, 3) uint8)."""
    gaussian = NormalizedKernel(pixels.positions(pos_xy_std), pixels.image_index)
    features = pixels.bilateral(images, bi_xy_std, bi_rgb_std)
    return gaussian, NormalizedKernel(features, pixels.image_index)


def label_softmax(energy: Tensor, log: bool = False) -> Tensor:
    """Softmax (or log-softmax) over the labels of energies (P, C).

    PyTorch's CPU kernels vectorise along the axis they reduce, which is slow when it holds a
    few labels (74k pixels, 5 labels: 8 ms, against under 1 ms along the pixels): there the
    softmax runs over the first axis of the transpose.
    """
    softmax = torch.log_softmax if log else torch.softmax
    if energy.device.type == "cpu" and energy.shape[1] < 16:
        return softmax(energy.T, dim=0).T.contiguous()
    return softmax(energy, dim=1)


def mean_field(
    unary: Tensor,
    kernels: Sequence[NormalizedKernel],
    weights: Sequence[float | Tensor],
    iterations: int,
    compatibility: Tensor | None = None,
) -> Tensor:
    """Mean-field updates from unary energies (P, C); returns the last step's energies (P, C),
    whose softmax over labels is Q (after 0 iterations: -unary).

    weights: one per kernel (floats or tensors, e.g. learnable); compatibility: (C, C) label
    compatibility mu, or None for Potts. Every kernel reads the same old Q, as in pydensecrf.
    """
    energy = -unary
    for _ in range(checks.iterations(iterations)):
        q = label_softmax(energy)
        message = sum(weight * kernel(q) for kernel, weight in zip(kernels, weights, strict=True))
        if compatibility is None:
            energy = -unary + message
        else:
            energy = -unary - message @ compatibility.T
    return energy
