"""Seeds and spread: the runs of the controlled experiments (``benchmarks/claims.py``) summarised.

A run is one variant of one experiment (an idea of the paper switched on or off: output stride,
field of view, ASPP, multi-scale inputs), trained with one seed and scored on the synthetic
validation scenes without and with the CRF. Its record holds at least ``RUN_FIELDS``; the band
mIoU maps a band width in pixels to the mean IoU within that band around the true boundaries
(the trimap of the paper's Fig. 10).

Training seeds change the initial weights and the order of the crops, so two runs of the same
variant differ. A difference between two variants is called **real** when their means differ by
more than the sum of their standard deviations over the seeds (their mean +- std intervals do
not overlap); otherwise it is within the seeds' spread and no finding. With 3 seeds this is a
rule of thumb, stricter than a single run and looser than a significance test.

The paper's atrous rates go with the released configurations' 321x321 training crops: a 41x41
score map at output stride 8. On a smaller map the same rates reach past its borders;
``scaled_rates`` keeps each rate at the same fraction of the map instead.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

RUN_FIELDS = (
    "experiment",
    "variant",
    "scenes",
    "seed",
    "iterations",
    "options",
    "miou",
    "miou_crf",
    "band_miou",
    "band_miou_crf",
    "train_seconds",
    "parameters",
)
PAPER_SCORE_MAP = 41  # 321x321 crops at output stride 8
SHOWN_BANDS = (3, 10)  # the table's band widths: near the boundaries and farther in
TITLES = {  # the experiments of benchmarks/claims.py, for figures
    "output_stride": "Output stride",
    "field_of_view": "Field of view",
    "aspp": "ASPP at the preset's learning rate",
    "aspp_low_lr": "ASPP at a quarter of the preset's learning rate",
    "msc": "Multi-scale inputs",
}


def scaled_rates(rates: tuple[int, ...], score_map: int) -> tuple[int, ...]:
    """The paper's ``rates`` (for a 41x41 map) at the same fraction of a ``score_map`` map,
    rounded to the nearest integer and at least 1 (ASPP-L's 6, 12, 18, 24 -> 2, 3, 5, 6 on 11)."""
    if score_map < 1 or any(r < 1 for r in rates):
        raise ValueError(f"score_map and rates must be positive, got {score_map} and {rates}")
    return tuple(max(1, round(r * score_map / PAPER_SCORE_MAP)) for r in rates)


def training_key(options: dict, scenes: dict, seed: int, iterations: int) -> str:
    """What makes two runs one training: the variant's settings, its scenes, the seed and the
    iterations (a variant two experiments share is trained once and recorded in each)."""
    return json.dumps([options, scenes, seed, iterations], sort_keys=True)


def read_runs(path: str | Path) -> list[dict]:
    """The runs in ``path`` (claims.json), band widths as numbers; ValueError naming the file
    when it is not a list of run records."""
    path = Path(path)
    try:
        runs = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable JSON file of runs ({error})") from error
    if not isinstance(runs, list) or not runs:
        raise ValueError(f"{path}: expected a non-empty list of runs")
    for index, run in enumerate(runs):
        missing = [name for name in RUN_FIELDS if not isinstance(run, dict) or name not in run]
        if missing:
            raise ValueError(f"{path}: run {index} lacks {missing}")
        for key in ("band_miou", "band_miou_crf"):
            run[key] = {float(width): value for width, value in run[key].items()}
            run[key] = {int(w) if w.is_integer() else w: v for w, v in run[key].items()}
    return runs


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def is_real(a: list[float], b: list[float]) -> bool:
    """Whether two variants' per-seed values differ beyond the seeds' spread: the means differ
    by more than the two standard deviations together."""
    (mean_a, std_a), (mean_b, std_b) = mean_std(a), mean_std(b)
    return abs(mean_a - mean_b) > std_a + std_b


def summarise(runs: list[dict]) -> dict[str, dict[str, dict[str, list]]]:
    """experiment -> variant -> metric -> its per-seed values, in the runs' order. Metrics:
    ``miou``, ``miou_crf``, ``train_seconds``, ``parameters``, ``band W`` and ``band W crf``."""
    table: dict[str, dict[str, dict[str, list]]] = {}
    for run in runs:
        cell = table.setdefault(run["experiment"], {}).setdefault(run["variant"], {})
        for metric in ("miou", "miou_crf", "train_seconds", "parameters"):
            cell.setdefault(metric, []).append(run[metric])
        for suffix, key in (("", "band_miou"), (" crf", "band_miou_crf")):
            for width, value in run[key].items():
                cell.setdefault(f"band {width}{suffix}", []).append(value)
    return table


def comparisons(runs: list[dict], experiment: str, metric: str = "miou") -> list[dict]:
    """Every pair of ``experiment``'s variants trained on the same scenes: the difference of
    their means in ``metric`` (second minus first), its spread (the sum of the two standard
    deviations) and whether it is real."""
    variants = summarise(runs)[experiment]
    scenes = {r["variant"]: json.dumps(r["scenes"], sort_keys=True) for r in runs}
    names = list(variants)
    pairs = []
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            if scenes[first] != scenes[second]:
                continue  # e.g. the field of view on two class sets: compared within each
            (mean_a, std_a), (mean_b, std_b) = (
                mean_std(variants[n][metric]) for n in (first, second)
            )
            pairs.append(
                {
                    "first": first,
                    "second": second,
                    "difference": mean_b - mean_a,
                    "spread": std_a + std_b,
                    "real": is_real(variants[first][metric], variants[second][metric]),
                }
            )
    return pairs


def _cell(values: list[float]) -> str:
    return "{:.3f} +- {:.3f}".format(*mean_std(values))


def experiment_table(runs: list[dict], experiment: str) -> str:
    """A markdown table of ``experiment``: mean +- std over the seeds of each variant's mIoU,
    with the CRF, within two bands, its parameters and its training time; then the verdicts."""
    variants = summarise(runs)[experiment]
    seeds = len(next(iter(variants.values()))["miou"])
    bands = " | ".join(f"band mIoU {w} px" for w in SHOWN_BANDS)
    lines = [
        f"{experiment}, {seeds} seeds: mean +- std",
        "",
        f"| variant | mIoU | mIoU + CRF | {bands} | parameters | training (s) |",
        "|---|---|---|" + "---|" * len(SHOWN_BANDS) + "---|---|",
    ]
    for name, cell in variants.items():
        shown = [cell["miou"], cell["miou_crf"], *(cell[f"band {w}"] for w in SHOWN_BANDS)]
        lines.append(
            f"| {name} | "
            + " | ".join(_cell(values) for values in shown)
            + f" | {int(cell['parameters'][0]):,} | {statistics.fmean(cell['train_seconds']):.0f} |"
        )
    verdicts = [
        f"{p['second']} - {p['first']}: {p['difference']:+.3f} (spread {p['spread']:.3f}, "
        + ("real)" if p["real"] else "within the spread)")
        for p in comparisons(runs, experiment)
    ]
    return "\n".join([*lines, "", "mIoU differences: " + "; ".join(verdicts) + "."])


def crf_table(runs: list[dict], experiment: str) -> str:
    """The CRF's gain within each band over the runs of ``experiment``: network, + CRF, and the
    paired gain (the same run with and without the CRF), mean +- std over the runs."""
    chosen = [r for r in runs if r["experiment"] == experiment]
    lines = [
        f"the CRF over the {len(chosen)} runs of {experiment}: mean +- std",
        "",
        "| band width (px) | network | + CRF | gain |",
        "|---|---|---|---|",
    ]
    rows = [
        (f"{w}", [r["band_miou"][w] for r in chosen], [r["band_miou_crf"][w] for r in chosen])
        for w in chosen[0]["band_miou"]
    ]
    rows.append(("whole images", [r["miou"] for r in chosen], [r["miou_crf"] for r in chosen]))
    for label, net, refined in rows:
        gain = [b - a for a, b in zip(net, refined, strict=True)]
        lines.append(f"| {label} | {_cell(net)} | {_cell(refined)} | {_cell(gain)} |")
    return "\n".join(lines)
