"""The fully connected CRF scored over a split (DeepLab Sec. 3.3 and 4.1).

``evaluate_crf`` scores the network's predictions and the CRF's side by side, with the network
run once per image and the CRF spread over worker processes; ``search_crf_parameters`` is the
paper's coarse grid search of the bilateral kernel on held-out images (w2 and sigma_gamma fixed).
Under ``torchrun`` both spread the images over the processes too (each with its own workers) and
return the whole split's scores on every process.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from deeplab_ref import distributed
from deeplab_ref.crf import dense_crf
from deeplab_ref.evaluate import SplitScores, predict_probabilities


def _crf_job(job: tuple) -> list[SplitScores]:
    """One image through the CRF with each setting in turn (runs in a worker process)."""
    raw_image, probs, label, num_classes, trimap_widths, settings = job
    results = []
    for setting in settings:
        scores = SplitScores(num_classes, trimap_widths)
        scores.update(dense_crf(raw_image, probs, **setting).argmax(0), label)
        results.append(scores)
    return results


def _crf_over_split(
    model: nn.Module,
    dataset: Dataset,
    num_classes: int,
    settings: list[dict[str, float]],
    trimap_widths: Iterable[float] | None,
    indices: Iterable[int] | None,
    processes: int,
    device: str | torch.device,
) -> tuple[SplitScores, list[SplitScores]]:
    """The network's scores and the CRF's for each setting. The network runs here; the CRF runs
    over images in ``processes`` worker processes, a few images at a time to bound memory. Under
    torchrun this process takes every world_size-th image, and the scores are summed."""
    widths = None if trimap_widths is None else list(trimap_widths)
    network = SplitScores(num_classes, widths)
    refined = [SplitScores(num_classes, widths) for _ in settings]
    indices = distributed.shard(list(range(len(dataset)) if indices is None else indices))
    model.eval()
    with ProcessPoolExecutor(processes) if processes > 1 else nullcontext() as pool:
        for start in range(0, len(indices), 2 * processes):
            jobs = []
            for index in indices[start : start + 2 * processes]:
                image, label = dataset[index]
                probs = predict_probabilities(model, image[None].to(device))[0].cpu().numpy()
                network.update(probs.argmax(0), label)
                raw_image = dataset.load_raw(index)[0]
                jobs.append((raw_image, probs, np.asarray(label), num_classes, widths, settings))
            for image_scores in (pool.map if pool else map)(_crf_job, jobs):
                for total, part in zip(refined, image_scores, strict=True):
                    total += part
    for scores in (network, *refined):
        scores.sum_over_processes()
    return network, refined


def evaluate_crf(
    model: nn.Module,
    dataset: Dataset,
    num_classes: int,
    crf_params: dict[str, float] | None = None,
    trimap_widths: Iterable[float] | None = None,
    processes: int = 2,
    device: str | torch.device = "cpu",
) -> dict[str, SplitScores]:
    """The split scored without and with the fully connected CRF, side by side:
    ``{"network": ..., "crf": ...}``. ``dataset`` must also give ``load_raw(index)`` (the uint8
    RGB image the CRF's bilateral kernel reads); ``crf_params`` go to ``dense_crf``."""
    network, (crf,) = _crf_over_split(
        model, dataset, num_classes, [crf_params or {}], trimap_widths, None, processes, device
    )
    return {"network": network, "crf": crf}


def search_crf_parameters(
    model: nn.Module,
    dataset: Dataset,
    num_classes: int,
    bi_w: Iterable[float] = (3, 4, 5, 6),
    bi_xy_std: Iterable[float] = (30, 50, 70, 90),
    bi_rgb_std: Iterable[float] = (3, 4, 5, 6),
    pos_w: float = 3.0,
    pos_xy_std: float = 3.0,
    indices: Iterable[int] | None = None,
    processes: int = 2,
    device: str | torch.device = "cpu",
) -> tuple[dict[str, float], list[dict[str, float]], float]:
    """The paper's coarse grid search (Sec. 4.1): the Gaussian kernel fixed (w2 = 3, sigma_gamma
    = 3), every combination of the bilateral kernel's weight and widths scored by mIoU on a
    held-out subset (``indices``; the paper used 100 val images). Returns the best parameters and
    the table (one row per combination, with its mIoU, best first) and the network's mIoU."""
    settings = [
        {"bi_w": w, "bi_xy_std": xy, "bi_rgb_std": rgb, "pos_w": pos_w, "pos_xy_std": pos_xy_std}
        for w, xy, rgb in itertools.product(bi_w, bi_xy_std, bi_rgb_std)
    ]
    network, refined = _crf_over_split(
        model, dataset, num_classes, settings, None, indices, processes, device
    )
    table = [
        {**s, "mean_iou": r.confusion.mean_iou} for s, r in zip(settings, refined, strict=True)
    ]
    table.sort(key=lambda row: -row["mean_iou"])
    best = {k: v for k, v in table[0].items() if k != "mean_iou"}
    return best, table, network.confusion.mean_iou
