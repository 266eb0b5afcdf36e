"""A small ablation in the spirit of the paper's Tables 3 and 4, on the synthetic scenes.

LargeFOV vs ASPP-S vs ASPP-L, each with and without multi-scale inputs (MSC), each scored with
and without the fully connected CRF, over several training seeds, with the ``cpu-synthetic``
preset (MSC runs at a quarter of its learning rate, since their loss sums four terms). Prints a table of mean and spread (standard deviation over seeds), writes it to
``benchmarks/results/ablation.md`` with the raw numbers in ``ablation.json`` beside it, and draws
``figures/ablation.png``.

Run: ``python benchmarks/ablation.py [--seeds 2] [--max-iter 1000]``. The defaults train each of
the 12 runs for 1,000 iterations (the demo trains 5,000); in the recorded results, on 2 cores, the
runs' times (training and scoring, ``ablation.json``) add up to 18 minutes.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from deeplab_ref.crf_evaluation import evaluate_crf
from deeplab_ref.presets import build_dataset, get_preset
from deeplab_ref.train import train

HEADS = ("largefov", "aspp-s", "aspp-l")
MSC_LR_SCALE = 0.25


def run(seeds: int, max_iter: int | None) -> list[dict]:
    rows = []
    overrides = {} if max_iter is None else {"max_iter": max_iter}
    with tempfile.TemporaryDirectory() as scratch:
        for head in HEADS:
            for msc in (False, True):
                # The MSC loss sums four terms (fused, 1, 0.75, 0.5): a quarter of the learning
                # rate keeps the step comparable (at the full rate ASPP-S diverged).
                lr = get_preset("cpu-synthetic").base_lr * (MSC_LR_SCALE if msc else 1.0)
                for seed in range(seeds):
                    config = get_preset(
                        "cpu-synthetic", head=head, msc=msc, seed=seed, base_lr=lr, **overrides
                    )
                    start = time.perf_counter()
                    model = train(config, Path(scratch) / f"{head}-{msc}-{seed}", progress=False)
                    val = build_dataset(config, "val")
                    scores = evaluate_crf(model, val, config.num_classes, vars(config.crf))
                    row = {
                        "head": head,
                        "msc": msc,
                        "seed": seed,
                        "miou": scores["network"].confusion.mean_iou,
                        "miou_crf": scores["crf"].confusion.mean_iou,
                        "seconds": time.perf_counter() - start,
                    }
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    return rows


def summarise(rows: list[dict]) -> tuple[str, dict]:
    """A Markdown table of mean +- standard deviation over seeds, and the numbers behind it."""
    lines = [
        "| head | MSC | mIoU | mIoU + CRF | seconds per run |",
        "|---|---|---|---|---|",
    ]
    summary = {}
    for head in HEADS:
        for msc in (False, True):
            group = [r for r in rows if r["head"] == head and r["msc"] == msc]
            plain = np.array([r["miou"] for r in group])
            crf = np.array([r["miou_crf"] for r in group])
            seconds = np.mean([r["seconds"] for r in group])
            summary[(head, msc)] = (plain, crf)
            lines.append(
                f"| {head} | {'yes' if msc else 'no'} | {plain.mean():.3f} +- {plain.std():.3f} "
                f"| {crf.mean():.3f} +- {crf.std():.3f} | {seconds:.0f} |"
            )
    return "\n".join(lines), summary


def ablation_figure(summary: dict) -> Figure:
    figure = Figure(figsize=(7, 3.6))
    ax = figure.subplots()
    labels = [f"{head}\n{'MSC' if msc else 'single scale'}" for head, msc in summary]
    x = np.arange(len(labels))
    for offset, (index, name) in zip(
        (-0.2, 0.2), enumerate(("DeepLab", "DeepLab + CRF")), strict=True
    ):
        means = [values[index].mean() for values in summary.values()]
        spreads = [values[index].std() for values in summary.values()]
        ax.bar(x + offset, means, 0.4, yerr=spreads, capsize=3, label=name)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("validation mIoU")
    lowest = min(values[0].min() for values in summary.values())
    ax.set_ylim(max(0.0, lowest - 0.1), 1.0)
    ax.legend(loc="lower right")
    figure.suptitle("Ablation on the synthetic scenes (mean and std over seeds)")
    return figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--max-iter", type=int, default=1000, help="iterations per run")
    parser.add_argument("--results", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--figures", type=Path, default=Path("figures"))
    args = parser.parse_args()
    rows = run(args.seeds, args.max_iter)
    table, summary = summarise(rows)
    print(table)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "ablation.json").write_text(json.dumps(rows, indent=1))
    (args.results / "ablation.md").write_text(table + "\n")
    args.figures.mkdir(parents=True, exist_ok=True)
    ablation_figure(summary).savefig(args.figures / "ablation.png", dpi=110, bbox_inches="tight")
    print(f"wrote {args.results / 'ablation.md'} and {args.figures / 'ablation.png'}")


if __name__ == "__main__":
    main()
