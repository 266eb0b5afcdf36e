"""The fully connected CRF as a network layer: mean field unrolled as a recurrent network.

Zheng et al. (CRF-as-RNN, ICCV 2015) observed that each mean-field update of the CRF of DeepLab
Sec. 3.3 (Krähenbühl and Koltun, NIPS 2011) is a chain of differentiable operations: filter Q
with each kernel, weight and sum the results, apply the label compatibility, add the unaries,
softmax. T updates are then T copies of one layer sharing its parameters -- a recurrent network
-- and the kernel weights and the compatibility can be learned by backpropagation together with
(or on top of) the network below.

``DenseCRFLayer`` is that layer over the lattice filter of ``torch_lattice.py``. Learned: the
two kernel weights (w1 bilateral, w2 Gaussian) and a (C, C) compatibility mu, started at Potts
[l != l'], where the layer computes exactly ``dense_crf_torch``'s update. Fixed: the kernels'
widths, since the lattice is built from them (once per image and forward pass, as a constant).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from deeplab_ref.crf import checks
from deeplab_ref.crf.torch_dense_crf import Batch, as_batch
from deeplab_ref.crf.torch_mean_field import (
    NormalizedKernel,
    PixelBatch,
    deeplab_kernels,
    label_softmax,
    mean_field,
)


def potts(num_classes: int) -> Tensor:
    """The Potts compatibility mu(l, l') = [l != l']: (C, C) float32."""
    return 1.0 - torch.eye(num_classes)


class DenseCRFLayer(nn.Module):
    """DeepLab's CRF as a trainable layer: ``forward(images, logits)`` gives refined
    **log-probabilities** (N, C, H, W), ready for ``F.nll_loss`` (``.exp()`` for Q).

    Args:
        num_classes: C.
        iterations: mean-field updates unrolled (Zheng et al. train with 5, test with 10).
        pos_xy_std, pos_w, bi_xy_std, bi_rgb_std, bi_w: the kernels' widths (fixed) and the
            initial weights, as ``dense_crf``.

    Parameters: ``bilateral_weight`` (w1), ``gaussian_weight`` (w2), ``compatibility`` (mu).
    """

    def __init__(
        self,
        num_classes: int,
        iterations: int = 5,
        *,
        pos_xy_std: float = 1.0,
        pos_w: float = 3.0,
        bi_xy_std: float = 67.0,
        bi_rgb_std: float = 3.0,
        bi_w: float = 4.0,
    ) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
        self.num_classes = num_classes
        self.iterations = checks.iterations(iterations)
        self.pos_xy_std = checks.positive("pos_xy_std", pos_xy_std)
        self.bi_xy_std = checks.positive("bi_xy_std", bi_xy_std)
        self.bi_rgb_std = checks.positive("bi_rgb_std", bi_rgb_std)
        self.gaussian_weight = nn.Parameter(torch.tensor(checks.finite("pos_w", pos_w)))
        self.bilateral_weight = nn.Parameter(torch.tensor(checks.finite("bi_w", bi_w)))
        self.compatibility = nn.Parameter(potts(num_classes))

    def _inputs(self, images: Batch, logits: Batch) -> tuple[PixelBatch, list, list, bool]:
        image_list, logit_list, given_lists = as_batch(images, logits, "logits")
        if logit_list[0].shape[0] != self.num_classes:
            raise ValueError(
                f"logits have {logit_list[0].shape[0]} classes, the layer {self.num_classes}"
            )
        pixels = PixelBatch([scores.shape[1:] for scores in logit_list], logit_list[0].device)
        return pixels, image_list, logit_list, given_lists

    @torch.no_grad()
    def kernels_for(self, images: Batch, logits: Batch) -> tuple[NormalizedKernel, ...]:
        """The Gaussian and bilateral kernels (lattices and normalisation) of these images, for
        ``forward(..., kernels=)`` when the same images come again: they depend on the images
        alone, and building them is most of a forward pass's cost on the CPU."""
        pixels, image_list, _, _ = self._inputs(images, logits)
        return deeplab_kernels(pixels, image_list, self.pos_xy_std, self.bi_xy_std, self.bi_rgb_std)

    def forward(
        self,
        images: Batch,
        logits: Batch,
        iterations: int | None = None,
        kernels: tuple[NormalizedKernel, ...] | None = None,
    ) -> Tensor | list[Tensor]:
        """Refined log-probabilities for images (N, H, W, 3) uint8 and the network's scores
        (N, C, H, W) at the images' size (lists of (H, W, 3) and (C, H, W) give a list).
        The unaries are -log_softmax(logits); ``iterations`` overrides the layer's own count
        (e.g. trained with 5, run with 10); ``kernels``: from ``kernels_for`` on these images."""
        pixels, image_list, logit_list, given_lists = self._inputs(images, logits)
        if not all(bool(torch.isfinite(scores).all()) for scores in logit_list):
            raise ValueError("logits contains NaN or infinite values")
        if kernels is None:
            kernels = self.kernels_for(image_list, logit_list)
        unary = -label_softmax(pixels.rows(logit_list), log=True)
        weights = (self.gaussian_weight, self.bilateral_weight)
        iterations = self.iterations if iterations is None else iterations
        energy = mean_field(unary, kernels, weights, iterations, self.compatibility)
        refined = pixels.images(label_softmax(energy, log=True))
        return refined if given_lists else torch.stack(refined)

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, iterations={self.iterations}, "
            f"pos_xy_std={self.pos_xy_std}, bi_xy_std={self.bi_xy_std}, "
            f"bi_rgb_std={self.bi_rgb_std}"
        )
