"""The fully connected CRF scored over a split (DeepLab Sec. 3.3 and 4.1).

``evaluate_crf`` scores the network's predictions and the CRF's side by side, with the network
run once per image; ``search_crf_parameters`` is the paper's coarse-to-fine grid search of the
bilateral kernel on held-out images (w2 and sigma_gamma fixed). Where the CRF runs follows the
model: on CUDA, ``dense_crf_torch`` refines a batch of images at once on the GPU; elsewhere the
NumPy ``dense_crf`` runs one image per worker process, over the machine's cores. Under
``torchrun`` both spread the images over the processes too and return the whole split's scores
on every process.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from deeplab_ref import distributed
from deeplab_ref.crf import dense_crf, dense_crf_torch
from deeplab_ref.evaluate import SplitScores, predict_probabilities

# The paper's coarse grid (Sec. 4.1; the released run_densecrf_grid_search.sh): w1 in 3..6,
# sigma_alpha in 30..100 by 10, sigma_beta in 3..6, with w2 = 3 and sigma_gamma = 3 fixed.
PAPER_GRID = {
    "bi_w": (3, 4, 5, 6),
    "bi_xy_std": tuple(range(30, 101, 10)),
    "bi_rgb_std": (3, 4, 5, 6),
}
SEARCH_IMAGES = 100  # the paper searched on 100 val images
GPU_BATCH = 10  # images per dense_crf_torch call: 500x375 VOC images, a few hundred MB each


def available_cores() -> int:
    """The processor cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _crf_job(job: tuple) -> list[SplitScores]:
    """One image through the NumPy CRF with each setting in turn (runs in a worker process)."""
    raw_image, probs, label, num_classes, trimap_widths, settings = job
    results = []
    for setting in settings:
        scores = SplitScores(num_classes, trimap_widths)
        scores.update(dense_crf(raw_image, probs, **setting).argmax(0), label)
        results.append(scores)
    return results


def _crf_on_gpu(device: str | torch.device) -> bool:
    return torch.device(device).type == "cuda"


def _network_pass(
    model: nn.Module,
    dataset: Dataset,
    indices: list[int],
    device: str | torch.device,
    network: SplitScores,
    size: int,
) -> Iterator[list[tuple[np.ndarray, torch.Tensor, np.ndarray]]]:
    """Batches of ``size`` images: (raw image, probabilities on ``device``, label) each, with
    the network's own predictions scored into ``network`` on the way."""
    for start in range(0, len(indices), size):
        batch = []
        for index in indices[start : start + size]:
            image, label = dataset[index]
            probs = predict_probabilities(model, image[None].to(device))[0]
            network.update(probs.argmax(0).cpu(), label)
            batch.append((dataset.load_raw(index)[0], probs, np.asarray(label)))
        yield batch


def _crf_over_split(
    model: nn.Module,
    dataset: Dataset,
    num_classes: int,
    settings: list[dict[str, float]],
    trimap_widths: Iterable[float] | None,
    indices: Iterable[int] | None,
    processes: int | None,
    device: str | torch.device,
) -> tuple[SplitScores, list[SplitScores]]:
    """The network's scores and the CRF's for each setting. The network runs on ``device``;
    the CRF there too if it is CUDA (GPU_BATCH images at a time), else in ``processes`` worker
    processes (default: every core), a few images at a time to bound memory. Under torchrun this
    process takes every world_size-th image, and the scores are summed."""
    widths = None if trimap_widths is None else list(trimap_widths)
    network = SplitScores(num_classes, widths)
    refined = [SplitScores(num_classes, widths) for _ in settings]
    indices = distributed.shard(list(range(len(dataset)) if indices is None else indices))
    processes = available_cores() if processes is None else processes
    model.eval()
    if _crf_on_gpu(device):
        for batch in _network_pass(model, dataset, indices, device, network, GPU_BATCH):
            images = [torch.from_numpy(raw).to(device) for raw, _, _ in batch]
            probs = [p for _, p, _ in batch]
            for setting, total in zip(settings, refined, strict=True):
                for q, (_, _, label) in zip(
                    dense_crf_torch(images, probs, **setting), batch, strict=True
                ):
                    total.update(q.argmax(0).cpu(), label)
    else:
        with ProcessPoolExecutor(processes) if processes > 1 else nullcontext() as pool:
            for batch in _network_pass(model, dataset, indices, device, network, 2 * processes):
                jobs = [
                    (raw, probs.cpu().numpy(), label, num_classes, widths, settings)
                    for raw, probs, label in batch
                ]
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
    processes: int | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, SplitScores]:
    """The split scored without and with the fully connected CRF, side by side:
    ``{"network": ..., "crf": ...}``. ``dataset`` must also give ``load_raw(index)`` (the uint8
    RGB image the CRF's bilateral kernel reads); ``crf_params`` go to ``dense_crf`` (or
    ``dense_crf_torch`` on CUDA); ``processes``: CPU workers, default every core."""
    network, (crf,) = _crf_over_split(
        model, dataset, num_classes, [crf_params or {}], trimap_widths, None, processes, device
    )
    return {"network": network, "crf": crf}


def finer_values(values: Sequence[float], best: float) -> list[float]:
    """The second round's values of one parameter: the best and half a coarse step either side
    (positive ones only); just the best when the coarse grid had one value."""
    steps = np.diff(sorted(set(values)))
    if len(steps) == 0:
        return [best]
    half = float(steps.min()) / 2
    return [v for v in (best - half, best, best + half) if v > 0]


def search_crf_parameters(
    model: nn.Module,
    dataset: Dataset,
    num_classes: int,
    bi_w: Iterable[float] = PAPER_GRID["bi_w"],
    bi_xy_std: Iterable[float] = PAPER_GRID["bi_xy_std"],
    bi_rgb_std: Iterable[float] = PAPER_GRID["bi_rgb_std"],
    pos_w: float = 3.0,
    pos_xy_std: float = 3.0,
    indices: Iterable[int] | None = None,
    refine: bool = True,
    processes: int | None = None,
    device: str | torch.device = "cpu",
) -> tuple[dict[str, float], list[dict[str, float]], float]:
    """The paper's coarse-to-fine grid search (Sec. 4.1): the Gaussian kernel fixed (w2 = 3,
    sigma_gamma = 3), every combination of the bilateral kernel's weight and widths scored by
    mIoU on held-out images (``indices``, default the first 100, as the paper), then, with
    ``refine``, a finer grid around the best (half the coarse steps, ``finer_values``).

    Returns the best parameters, the table of every setting scored (with its mIoU, best first)
    and the network's mIoU on those images."""
    grid = {"bi_w": list(bi_w), "bi_xy_std": list(bi_xy_std), "bi_rgb_std": list(bi_rgb_std)}
    if indices is None:
        indices = range(min(SEARCH_IMAGES, len(dataset)))
    indices = list(indices)

    def score(combinations):
        settings = [
            {**dict(zip(grid, values, strict=True)), "pos_w": pos_w, "pos_xy_std": pos_xy_std}
            for values in combinations
        ]
        network, refined = _crf_over_split(
            model, dataset, num_classes, settings, None, indices, processes, device
        )
        rows = [
            {**s, "mean_iou": r.confusion.mean_iou} for s, r in zip(settings, refined, strict=True)
        ]
        return rows, network.confusion.mean_iou

    table, network_mean_iou = score(itertools.product(*grid.values()))
    if refine:
        best = max(table, key=lambda row: row["mean_iou"])
        finer = [finer_values(values, best[name]) for name, values in grid.items()]
        scored = {tuple(row[name] for name in grid) for row in table}
        new = [c for c in itertools.product(*finer) if c not in scored]
        if new:
            table += score(new)[0]
    table.sort(key=lambda row: -row["mean_iou"])
    best = {k: v for k, v in table[0].items() if k != "mean_iou"}
    return best, table, network_mean_iou
