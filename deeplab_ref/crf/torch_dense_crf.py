"""``dense_crf_torch``: DeepLab's fully connected CRF (Sec. 3.3) for a batch, on the CPU or CUDA.

The PyTorch counterpart of ``dense_crf``: the same parameters, defaults, input checks and result
(to float32 noise; both agree with pydensecrf), for images (N, H, W, 3) uint8 and probabilities
(N, C, H, W) at once, or for lists of images of different sizes. It runs where ``probs`` lies;
the images follow. ``torch_mean_field.py`` holds the update, ``torch_lattice.py`` the filter.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from deeplab_ref.crf import checks
from deeplab_ref.crf.torch_mean_field import PixelBatch, deeplab_kernels, label_softmax, mean_field

Batch = Tensor | np.ndarray | Sequence[Tensor | np.ndarray]


def _as_tensor(value: object) -> Tensor | None:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    return None


def as_batch(
    images: Batch, scores: Batch, scores_name: str = "probs"
) -> tuple[list[Tensor], list[Tensor], bool]:
    """Images and per-class scores as lists of tensors ((H, W, 3) uint8 and (C, H, W) float, on
    the scores' device), checked as ``dense_crf`` checks one image; True when given as lists.

    A batch is a 4-D tensor or array (N, ...); a list may hold images of different sizes.
    """
    given_lists = isinstance(images, list | tuple)
    if given_lists != isinstance(scores, list | tuple):
        raise ValueError(f"images and {scores_name} must both be batches (N, ...) or both lists")
    if given_lists:
        image_list = [_as_tensor(image) for image in images]
        score_list = [_as_tensor(score) for score in scores]
        names = [(f"images[{k}]", f"{scores_name}[{k}]") for k in range(len(image_list))]
    else:
        image_batch, score_batch = _as_tensor(images), _as_tensor(scores)
        for name, batch, layout in (
            ("images", image_batch, "(N, H, W, 3)"),
            (scores_name, score_batch, "(N, C, H, W)"),
        ):
            if batch is not None and batch.ndim != 4:
                raise ValueError(f"{name} must be a batch {layout}, got shape {tuple(batch.shape)}")
        image_list = [None] if image_batch is None else list(image_batch)
        score_list = [None] if score_batch is None else list(score_batch)
        names = [("images", scores_name)] * len(image_list)
    if len(image_list) != len(score_list) or not image_list:
        raise ValueError(
            f"images and {scores_name} must hold the same number (>= 1) of images, "
            f"got {len(image_list)} and {len(score_list)}"
        )
    for (image_name, score_name), image, score in zip(names, image_list, score_list, strict=True):
        checks.check_image(
            image_name,
            image is not None and image.dtype == torch.uint8,
            "tensor",
            getattr(image, "dtype", images),
            () if image is None else image.shape,
        )
        checks.check_probs_shape(
            score_name,
            score is not None and score.is_floating_point(),
            "tensor",
            getattr(score, "dtype", scores),
            () if score is None else score.shape,
            image.shape,
        )
        if score.shape[0] != score_list[0].shape[0]:
            raise ValueError(
                f"{score_name} has {score.shape[0]} classes, the first image {score_list[0].shape[0]}"
            )
    device = score_list[0].device
    return (
        [image.to(device) for image in image_list],
        [s.to(device) for s in score_list],
        given_lists,
    )


def _check_probs(probs: Sequence[Tensor]) -> None:
    """``checks.check_probs_values`` over all images, with one transfer to the host."""
    facts = []
    for p in probs:
        sums = p.sum(dim=0, dtype=torch.float64)
        facts.append(torch.stack([torch.isfinite(p).all(), p.min(), sums.min(), sums.max()]))
    finite, minimum, sum_min, sum_max = torch.stack(facts).double().cpu().T
    checks.check_probs_values(
        "probs",
        bool(finite.all()),
        float(minimum.min()),
        float(sum_min.min()),
        float(sum_max.max()),
    )


@torch.no_grad()
def dense_crf_torch(
    images: Batch,
    probs: Batch,
    *,
    iterations: int = 10,
    pos_xy_std: float = 1.0,
    pos_w: float = 3.0,
    bi_xy_std: float = 67.0,
    bi_rgb_std: float = 3.0,
    bi_w: float = 4.0,
) -> Tensor | list[Tensor]:
    """Refine class probabilities with DeepLab's fully connected CRF, a batch at a time.

    Args:
        images: RGB images (N, H, W, 3) uint8, a tensor or array, or a list of (H, W, 3).
        probs: class probabilities (N, C, H, W) (or a list of (C, H, W)), summing to 1 over C.
            The CRF runs on their device (e.g. CUDA); float32 is used whatever their type.
        iterations, pos_xy_std, pos_w, bi_xy_std, bi_rgb_std, bi_w: as ``dense_crf``.

    Returns:
        Refined probabilities Q, float32 (N, C, H, W), or a list of (C, H, W) when given lists.
    """
    image_list, prob_list, given_lists = as_batch(images, probs)
    _check_probs(prob_list)
    iterations = checks.iterations(iterations)
    weights = (checks.finite("pos_w", pos_w), checks.finite("bi_w", bi_w))
    pixels = PixelBatch([p.shape[1:] for p in prob_list], prob_list[0].device)
    kernels = deeplab_kernels(pixels, image_list, pos_xy_std, bi_xy_std, bi_rgb_std)
    probs_rows = pixels.rows([p.to(torch.float32) for p in prob_list])
    unary = -torch.log(probs_rows.clamp(checks.PROBABILITY_CLIP, 1.0))
    q = label_softmax(mean_field(unary, kernels, weights, iterations))
    refined = pixels.images(q)
    return refined if given_lists else torch.stack(refined)
