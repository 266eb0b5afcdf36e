"""Figures of the controlled experiments (``deeplab_ref.claims``): each variant's mIoU with and
without the CRF, and its mean IoU within bands around the boundaries, mean ± std over seeds."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from deeplab_ref.claims import TITLES, mean_std, summarise

# Line styles and markers cycle apart from the colours, so that coinciding curves stay visible.
STYLES = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D")]


def _band_axis(axes: Axes, widths: list[float], ylabel: str) -> None:
    axes.set_xscale("log")
    axes.set_xticks(widths, [f"{w:g}" for w in widths])
    axes.minorticks_off()
    axes.set_xlabel("band width around the boundaries (pixels, log scale)")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)


def experiment_figure(runs: list[dict], experiment: str) -> Figure:
    """Left: mIoU per variant, without and with the CRF (dots: the seeds); right: the band mIoU
    against the band's width (the trimap, the paper's Fig. 10), per variant. Bars: ± one std."""
    variants = summarise(runs)[experiment]
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    bars, bands = figure.subplots(1, 2, width_ratios=(1, 1.2))
    names = list(variants)
    for offset, metric, label in ((-0.2, "miou", "network"), (0.2, "miou_crf", "+ CRF")):
        means, stds = zip(*(mean_std(variants[n][metric]) for n in names), strict=True)
        positions = [i + offset for i in range(len(names))]
        bars.bar(positions, means, width=0.4, yerr=stds, capsize=3, label=label)
        seeds = [(i + offset, v) for i, n in enumerate(names) for v in variants[n][metric]]
        bars.plot(*zip(*seeds, strict=True), "o", ms=4, mfc="white", mec="black", mew=0.8)
    labels = [name.replace(", ", ",\n") for name in names]
    bars.set_xticks(range(len(names)), labels, rotation=30, ha="right", fontsize=7)
    bars.set_ylabel("mIoU (circles: the seeds)")
    bars.set_ylim(0, 1)
    bars.legend(fontsize=8, loc="upper left")
    widths = sorted(runs[0]["band_miou"])
    for index, (name, cell) in enumerate(variants.items()):
        means, stds = zip(*(mean_std(cell[f"band {w}"]) for w in widths), strict=True)
        line, marker = STYLES[index % len(STYLES)]
        bands.errorbar(
            widths, means, yerr=stds, ls=line, marker=marker, ms=4, capsize=2, label=name
        )
    _band_axis(bands, widths, "mean IoU within the band (network)")
    bands.set_ylim(0, 1)
    bands.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    seeds = len(next(iter(variants.values()))["miou"])
    figure.suptitle(f"{TITLES.get(experiment, experiment)}: mean ± std over {seeds} seeds")
    return figure


def crf_gain_figure(runs: list[dict], experiment: str) -> Figure:
    """Left: the mean IoU within each band without and with the CRF over the runs of
    ``experiment``; right: the paired gain (the same run with and without), mean ± std."""
    chosen = [r for r in runs if r["experiment"] == experiment]
    widths = sorted(chosen[0]["band_miou"])
    figure = Figure(figsize=(10, 3.8), layout="constrained")
    levels, gains = figure.subplots(1, 2)
    for key, label in (("band_miou", "network"), ("band_miou_crf", "+ CRF")):
        means, stds = zip(*(mean_std([r[key][w] for r in chosen]) for w in widths), strict=True)
        levels.errorbar(widths, means, yerr=stds, marker="o", ms=3, capsize=2, label=label)
    _band_axis(levels, widths, "mean IoU within the band")
    levels.legend()
    paired = [mean_std([r["band_miou_crf"][w] - r["band_miou"][w] for r in chosen]) for w in widths]
    means, stds = zip(*paired, strict=True)
    gains.errorbar(widths, means, yerr=stds, marker="o", ms=3, capsize=2, color="C2")
    gains.set_ylim(bottom=0)
    _band_axis(gains, widths, "the CRF's gain, paired run by run")
    figure.suptitle(
        f"The CRF near boundaries: the {len(chosen)} runs of {TITLES.get(experiment, experiment)}"
    )
    return figure
