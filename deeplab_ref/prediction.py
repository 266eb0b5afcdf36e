"""Test-time prediction: class scores at each image's resolution (Sec. 3.1; the released test
networks).

The paper's text brings the output-stride-8 score map to "the original image resolution" by
bilinear interpolation, "by a factor of 8" (Sec. 1 and 3.1). Two ways to do it here:

* direct (``padding=None``): the image runs at its own size H x W, h x w scores come out and are
  resized to H x W with the corners aligned. For H = 8k + 1 that is exactly the x8 interpolation
  (score i over pixel 8 i); for other sizes it stretches the grid a little: score i lands on
  pixel i (H - 1) / (h - 1) instead of 8 i: |8 (h - 1) - (H - 1)| pixels off at the far edge, 7
  for a 320-pixel side with 40 scores (``tests/test_prediction.py`` measures it).
* padded (``padding=513``, the released test networks' way, the VOC presets' default;
  ``PaddedNetwork`` wraps a model into that test network): the image is padded at the bottom and
  right with the mean colour (0 after ``Normalize``; its label would be 255 there, and no padded
  pixel is ever scored) to 513 x 513, the network gives 65 x 65 scores, they are interpolated x8
  with the corners aligned (65 -> 513: score i over pixel 8 i for every image size) and cropped
  back to H x W. 513 = 8 * 64 + 1 holds every VOC image (at most 500 pixels a side). A side
  longer than ``padding`` is padded to the next 8k + 1 instead of raising: the scores stay on
  the exact grid, which is what 513 is for, and ``predict`` still segments a large photo.

For an image of 8k + 1 pixels the two grids coincide, and a network whose score i depends only on
pixels near 8 i gives the same result both ways. A real network also sees the padding: near the
bottom and right borders its features differ (mean-coloured pixels padded in the image instead
of zeros padded in each layer's features), so the two ways give slightly different scores there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deeplab_ref.models import upsample_scores

OUTPUT_STRIDE = 8  # DeepLab's: the grid the padded sizes keep exact


def padded_size(size: int, padding: int) -> int:
    """The length an image side of ``size`` pixels is padded to: ``padding``, or for a longer
    side the next 8k + 1 (so that its scores still sit on every 8th pixel)."""
    if size <= padding:
        return padding
    return OUTPUT_STRIDE * -(-(size - 1) // OUTPUT_STRIDE) + 1


class PaddedNetwork(nn.Module):
    """The released test network around ``network``: images (N, 3, H, W) padded at the bottom
    and right with the mean colour to ``size`` x ``size`` (a longer side to the next 8k + 1),
    the network's scores interpolated to the padded size with the corners aligned (x8 for a side
    of 8k + 1: 65 -> 513) and cropped back. ``forward`` gives scores (N, K, H, W) at the image's
    resolution, so code that resizes scores to the image leaves them as they are."""

    def __init__(self, network: nn.Module, size: int = 513) -> None:
        super().__init__()
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"padding must be a positive integer (513) or None, got {size!r}")
        self.network = network
        self.size = size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        size = (padded_size(height, self.size), padded_size(width, self.size))
        # 0 is the mean colour once normalised, as the released data layer pads with the mean.
        padded = F.pad(images, (0, size[1] - width, 0, size[0] - height), value=0.0)
        return upsample_scores(self.network(padded), size)[..., :height, :width]


def test_network(model: nn.Module, padding: int | None) -> nn.Module:
    """``model`` as a run tests it: inside ``PaddedNetwork(model, padding)``, or as it is for
    ``padding=None`` (``TrainConfig.eval_padding``)."""
    return model if padding is None else PaddedNetwork(model, padding)


@torch.no_grad()
def upsampled_scores(
    model: nn.Module, image: torch.Tensor, padding: int | None = None
) -> torch.Tensor:
    """Class scores of ``model`` for normalised images (N, 3, H, W) at their resolution,
    (N, C, H, W): directly resized (``padding=None``) or through ``PaddedNetwork(model,
    padding)`` (see the module docstring)."""
    if not isinstance(image, torch.Tensor) or image.ndim != 4:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"image must be (N, 3, H, W), got {shape}")
    return upsample_scores(test_network(model, padding)(image), tuple(image.shape[-2:]))


def predict_probabilities(
    model: nn.Module, image: torch.Tensor, padding: int | None = None
) -> torch.Tensor:
    """Class probabilities of ``model`` for images (N, 3, H, W): the softmax of
    ``upsampled_scores``, (N, C, H, W)."""
    return upsampled_scores(model, image, padding).softmax(dim=1)
