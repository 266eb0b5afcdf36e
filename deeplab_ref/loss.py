"""The training loss of DeepLab-v2 (Sec. 4; the released configurations' loss layers).

The paper's text: "the sum of cross-entropy terms for each spatial position in the CNN output
map (subsampled by 8 ...)", every position equally weighted, unlabelled pixels (255) ignored,
against the labels subsampled by 8. With multi-scale inputs the released configuration also
supervises each scale's scores beside the fused ones, each map against the labels subsampled to
its size by nearest neighbour with the corners aligned (it shrinks labels rather than upsample
scores). The terms are summed over the maps. Each term is divided by the batch's valid pixels
(ours, the text's equal weighting; the released solver, one image per pass, divides each image
by its own and averages over the 10).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deeplab_ref.data.transforms import IGNORE_INDEX


def downsample_labels(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Labels (N, H, W) -> (N, h, w) by nearest neighbour, corners aligned like the scores: score
    i of h sits over pixel i (H - 1) / (h - 1) (exactly 8 i for 321 -> 41)."""
    rows = _nearest_indices(labels.shape[-2], size[0], labels.device)
    cols = _nearest_indices(labels.shape[-1], size[1], labels.device)
    return labels[:, rows[:, None], cols[None, :]]


def _nearest_indices(source: int, target: int, device: torch.device) -> torch.Tensor:
    if target == 1:
        return torch.zeros(1, dtype=torch.long, device=device)
    positions = (
        torch.arange(target, device=device, dtype=torch.float64) * (source - 1) / (target - 1)
    )
    return positions.round().long()


def valid_pixel_counts(labels: torch.Tensor, sizes: list[tuple[int, int]]) -> torch.Tensor:
    """For each score size, how many of ``labels`` (N, H, W) subsampled to it are not 255."""
    return torch.stack([(downsample_labels(labels, size) != IGNORE_INDEX).sum() for size in sizes])


def deeplab_loss(
    outputs: list[torch.Tensor],
    labels: torch.Tensor,
    valid_pixels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy (255 ignored) of each score map against the labels subsampled to its size,
    summed over the maps (MSC: fused, 1, 0.75, 0.5). Each term is a mean over the valid pixels;
    a crop with no valid pixel contributes 0, not NaN.

    ``valid_pixels`` (one count per map) replaces this batch's own counts when the batch is one
    piece of a larger one (accumulation, several processes): every piece then divides by the
    whole batch's count, and the pieces' losses and gradients add up to the whole batch's."""
    if not isinstance(outputs, list | tuple):
        raise ValueError(
            "outputs must be the list of score maps the model supervises "
            f"(model.supervised_scores(images)), got {type(outputs).__name__}"
        )
    total = outputs[0].new_zeros((), dtype=torch.float32)
    for index, scores in enumerate(outputs):
        target = downsample_labels(labels, tuple(scores.shape[-2:]))
        summed = F.cross_entropy(scores.float(), target, ignore_index=IGNORE_INDEX, reduction="sum")
        count = (target != IGNORE_INDEX).sum() if valid_pixels is None else valid_pixels[index]
        total = total + summed / count.clamp(min=1)
    return total
