"""Multi-scale inputs (MSC) and the resizing of scores (Sec. 3.2 and 4.1.2, "Multi-scale inputs").

The paper's text: the image goes through the same network at scales 1, 0.75 and 0.5, the score
maps are interpolated bilinearly and fused by "taking at each position the maximum response
across the different scales", "both during training and testing". As in the released
configuration, the scores are fused at the size of the scale-1 scores (the text says at the
image's resolution; the maximum and the bilinear upsampling do not commute, so the two differ
slightly), and training puts a loss on every scale's scores and on the fused ones (the released
configuration's four losses; the text does not say how MSC is supervised).

Sizes follow Caffe's ``Interp`` layer, used by the released models: resizing maps the corner
pixels onto each other (``align_corners=True``), and an image of size s at scale f has
floor((s - 1) f) + 1 pixels (321 -> 241 at 0.75, 161 at 0.5). With output stride 8 and an input
of 8k + 1 pixels, score i sits exactly over image pixel 8 i, so ``upsample_scores`` to the
input size puts every score back where it was computed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

MSC_SCALES: tuple[float, ...] = (1.0, 0.75, 0.5)


def scaled_size(size: int, scale: float) -> int:
    """Pixels of a side of ``size`` pixels resized by ``scale``: floor((size - 1) scale) + 1."""
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    if not 0 < scale:
        raise ValueError(f"scale must be positive, got {scale!r}")
    return int((size - 1) * scale) + 1


def resize_bilinear(
    tensor: torch.Tensor, size: tuple[int, int] | torch.Size, name: str = "tensor"
) -> torch.Tensor:
    """Bilinear resizing (N, C, h, w) -> (N, C, H, W) with corners aligned (Caffe's Interp)."""
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != 4:
        raise ValueError(f"{name} must be a (N, C, h, w) tensor, got {_describe(tensor)}")
    if not tensor.is_floating_point():
        raise ValueError(f"{name} must be floating point, got dtype {tensor.dtype}")
    size = tuple(size)
    if len(size) != 2 or any(not isinstance(s, int) or s < 1 for s in size):
        raise ValueError(f"size must be two positive integers (H, W), got {size!r}")
    if tuple(tensor.shape[-2:]) == size:
        return tensor
    return F.interpolate(tensor, size=size, mode="bilinear", align_corners=True)


def upsample_scores(scores: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Bring class scores (N, K, h, w) to (N, K, H, W), bilinearly with corners aligned.

    Used at test time to bring output-stride-8 scores to the image size before the argmax or
    the CRF, and inside MSC to bring every scale's scores to the scale-1 size.
    """
    return resize_bilinear(scores, size, name="scores")


def _describe(value: object) -> str:
    shape = getattr(value, "shape", None)
    return f"shape {tuple(shape)}" if shape is not None else type(value).__name__


def multi_scale_scores(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    scales: Sequence[float] = MSC_SCALES,
) -> list[torch.Tensor]:
    """Run ``score_fn`` at every scale and fuse the scores by a pixel-wise maximum.

    Args:
        score_fn: images (N, 3, H, W) -> scores (N, K, h, w), e.g. a DeepLab network.
        images: (N, 3, H, W).
        scales: the first must be 1.0 (the scale whose score size the others are brought to).

    Returns:
        ``[fused, scores at scales[0], scores at scales[1], ...]``, the maps the released ResNet-101
        configuration trains: the fused (N, K, h1, w1) and scale-1 scores at h1 x w1, the
        scale-1 score size; a scale whose inverse is an integer (0.5: labels shrunk by 16) at its
        own size; any other scale (0.75, whose labels would need a shrink of 32/3) upsampled to
        h1 x w1. A trainer compares each with the labels subsampled (nearest) to that tensor's
        own size; at test time only the first, the fused scores, is used.
    """
    scales = tuple(float(s) for s in scales)
    if not scales or scales[0] != 1.0 or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be positive and start with 1.0, got {scales!r}")
    height, width = images.shape[-2:]
    per_scale = []
    for scale in scales:
        size = (scaled_size(height, scale), scaled_size(width, scale))
        resized = images if scale == 1.0 else resize_bilinear(images, size, name="images")
        per_scale.append(score_fn(resized))
    full_size = per_scale[0].shape[-2:]
    aligned = [upsample_scores(scores, full_size) for scores in per_scale]
    fused = torch.stack(aligned).amax(dim=0)
    supervised = [
        scores if (1.0 / scale).is_integer() else upsampled
        for scale, scores, upsampled in zip(scales, per_scale, aligned, strict=True)
    ]
    return [fused, *supervised]
