"""Figures of the controlled experiments (``deeplab_ref.claims``): each variant's mIoU with and
without the CRF, and its mean IoU within bands around the boundaries, mean +- std over seeds."""

from __future__ import annotations

from matplotlib.figure import Figure

from deeplab_ref.claims import mean_std, summarise


def experiment_figure(runs: list[dict], experiment: str) -> Figure:
    """Left: mIoU per variant, without and with the CRF; right: the band mIoU against the
    band's width (the trimap, the paper's Fig. 10), per variant. Error bars: one std."""
    variants = summarise(runs)[experiment]
    figure = Figure(figsize=(10, 3.8), layout="constrained")
    bars, bands = figure.subplots(1, 2, width_ratios=(1, 1.3))
    names = list(variants)
    shown = ((-0.2, "miou", "network"), (0.2, "miou_crf", "+ CRF"))
    for offset, metric, label in shown:
        means, stds = zip(*(mean_std(variants[n][metric]) for n in names), strict=True)
        positions = [i + offset for i in range(len(names))]
        bars.bar(positions, means, width=0.4, yerr=stds, capsize=3, label=label)
        seeds = [(i + offset, v) for i, n in enumerate(names) for v in variants[n][metric]]
        bars.plot(*zip(*seeds, strict=True), "k.", ms=3)
    bars.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    bars.set_ylabel("mIoU (dots: the seeds)")
    bars.set_ylim(bottom=min(min(c["miou"]) for c in variants.values()) - 0.1)
    bars.legend(fontsize=8)
    widths = sorted(w for w in runs[0]["band_miou"])
    for name, cell in variants.items():
        means, stds = zip(*(mean_std(cell[f"band {w}"]) for w in widths), strict=True)
        bands.errorbar(widths, means, yerr=stds, marker="o", ms=3, capsize=2, label=name)
    bands.set_xlabel("band width around the boundaries (pixels)")
    bands.set_ylabel("mean IoU within the band (network)")
    bands.grid(alpha=0.3)
    bands.legend(fontsize=7)
    seeds = len(next(iter(variants.values()))["miou"])
    figure.suptitle(f"{experiment}: mean +- std over {seeds} seeds")
    return figure


def crf_gain_figure(runs: list[dict], experiment: str = "aspp") -> Figure:
    """The mean IoU within each band without and with the CRF over the runs of ``experiment``."""
    chosen = [r for r in runs if r["experiment"] == experiment]
    widths = sorted(chosen[0]["band_miou"])
    figure = Figure(figsize=(6, 3.6), layout="constrained")
    axes = figure.subplots()
    for key, label in (("band_miou", "network"), ("band_miou_crf", "+ CRF")):
        means, stds = zip(*(mean_std([r[key][w] for r in chosen]) for w in widths), strict=True)
        axes.errorbar(widths, means, yerr=stds, marker="o", ms=3, capsize=2, label=label)
    axes.set_xlabel("band width around the boundaries (pixels)")
    axes.set_ylabel("mean IoU within the band")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.suptitle(f"The CRF near boundaries: the {len(chosen)} runs of {experiment}")
    return figure
