"""The demo: DeepLab-v2 end to end on the built-in synthetic scenes, on a CPU, in minutes.

It trains the ``cpu-synthetic`` preset (a narrow ResNet at output stride 8 with the ASPP-L head;
every ingredient of the paper at a size a laptop trains), scores the validation split without and
with the fully connected CRF (mIoU, per-class IoU and the trimap accuracy near boundaries),
writes the results table and the figures, and says where they are.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from deeplab_ref.crf import dense_crf
from deeplab_ref.crf_evaluation import evaluate_crf
from deeplab_ref.evaluate import SplitScores, predict_probabilities
from deeplab_ref.presets import build_dataset, get_preset
from deeplab_ref.train import read_log, train
from deeplab_ref.viz.training import loss_curve_figure, predictions_figure, trimap_figure

TRIMAP_WIDTHS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20)
BOUNDARY_WIDTH = 5  # the band the demo reports: within 5 pixels of a boundary
NAMES = {"network": "DeepLab", "crf": "DeepLab + CRF"}


def results_table(results: dict[str, SplitScores], class_names: Sequence[str]) -> str:
    """A Markdown table: the summary metrics per method, then the per-class IoU."""
    lines = [
        "| method | pixel acc. | mean acc. | mIoU | trimap acc. (band widths) |",
        "|---|---|---|---|---|",
    ]
    for key, scores in results.items():
        confusion = scores.confusion
        trimap = ""
        if scores.trimap is not None:
            trimap = ", ".join(
                f"{w:g}px {a:.3f}"
                for w, a in zip(scores.trimap.widths, scores.trimap.pixel_accuracy, strict=True)
                if w in (1, 2, 3, 5, 10, 20)
            )
        lines.append(
            f"| {NAMES.get(key, key)} | {confusion.pixel_accuracy:.4f} | "
            f"{confusion.mean_accuracy:.4f} | {confusion.mean_iou:.4f} | {trimap} |"
        )
    lines += ["", "| class | " + " | ".join(NAMES.get(k, k) for k in results) + " |"]
    lines.append("|---" * (len(results) + 1) + "|")
    per_class = [scores.confusion.iou for scores in results.values()]
    for index, name in enumerate(class_names):
        lines.append(f"| {name} | " + " | ".join(f"{iou[index]:.4f}" for iou in per_class) + " |")
    return "\n".join(lines)


def run_demo(
    out_dir: str | Path = "results/demo",
    figures_dir: str | Path = "figures",
    max_iter: int | None = None,
) -> dict[str, SplitScores]:
    """Train, evaluate with and without the CRF, write ``results.md`` into ``out_dir`` and the
    figures ``demo_*.png`` into ``figures_dir``. Returns the scores."""
    out_dir, figures_dir = Path(out_dir), Path(figures_dir)
    config = get_preset("cpu-synthetic", **({} if max_iter is None else {"max_iter": max_iter}))
    print(f"training the cpu-synthetic preset for {config.max_iter} iterations ...")
    start = time.perf_counter()
    model = train(config, out_dir)
    train_seconds = time.perf_counter() - start
    val = build_dataset(config, "val")
    print(f"scoring {len(val)} validation images without and with the CRF ...")
    results = evaluate_crf(model, val, config.num_classes, vars(config.crf), TRIMAP_WIDTHS)
    total_seconds = time.perf_counter() - start

    table = results_table(results, val.class_names)
    report = (
        f"# Demo: cpu-synthetic preset, {config.max_iter} iterations\n\n"
        f"Training took {train_seconds:.0f} s; training and evaluation {total_seconds:.0f} s.\n\n"
        f"{table}\n"
    )
    (out_dir / "results.md").write_text(report)
    figures_dir.mkdir(parents=True, exist_ok=True)
    figures = {
        "demo_loss.png": loss_curve_figure(read_log(out_dir)),
        "demo_predictions.png": predictions_figure(
            prediction_samples(model, val, vars(config.crf), count=4)
        ),
        "demo_trimap.png": trimap_figure(
            TRIMAP_WIDTHS,
            {NAMES[key]: scores.trimap.pixel_accuracy for key, scores in results.items()},
        ),
    }
    for name, figure in figures.items():
        figure.savefig(figures_dir / name, dpi=110, bbox_inches="tight")
    print(table)
    print(
        f"\nresults: {out_dir / 'results.md'}; figures: "
        + ", ".join(str(figures_dir / name) for name in figures)
    )
    return results


def prediction_samples(
    model: torch.nn.Module, dataset: Dataset, crf_params: dict[str, float], count: int
) -> list[tuple[np.ndarray, ...]]:
    """(image, truth, network prediction, CRF prediction) for the first ``count`` images of
    ``dataset`` (which must have ``load_raw``), for ``predictions_figure``."""
    samples = []
    for index in range(count):
        raw_image, truth = dataset.load_raw(index)
        probs = predict_probabilities(model, dataset[index][0][None])[0].numpy()
        refined = dense_crf(raw_image, probs, **crf_params)
        samples.append((raw_image, truth, probs.argmax(0), refined.argmax(0)))
    return samples
