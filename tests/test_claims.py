"""The summaries of the controlled experiments, against hand-worked numbers and numpy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deeplab_ref.claims import (
    comparisons,
    crf_table,
    experiment_table,
    is_real,
    mean_std,
    read_runs,
    scaled_rates,
    summarise,
)
from deeplab_ref.viz.claims import crf_gain_figure, experiment_figure


def run(variant: str, seed: int, miou: float, scenes: str = "distinct", crf: float = 0.05) -> dict:
    return {
        "experiment": "aspp",
        "variant": variant,
        "scenes": {"class_set": scenes},
        "seed": seed,
        "iterations": 1500,
        "options": {"backbone_options": {"atrous_rates": [3]}},
        "miou": miou,
        "miou_crf": miou + crf,
        "band_miou": {1: miou - 0.3, 3: miou - 0.2, 10: miou - 0.1},
        "band_miou_crf": {1: miou - 0.3 + 2 * crf, 3: miou - 0.2 + crf, 10: miou - 0.1 + crf},
        "train_seconds": 30.0,
        "parameters": 1234,
    }


RUNS = [run("A", s, m) for s, m in enumerate((0.70, 0.71, 0.72))] + [
    run("B", s, m) for s, m in enumerate((0.60, 0.62, 0.61))
]


def test_rates_keep_their_fraction_of_the_map():
    assert scaled_rates((6, 12, 18, 24), 11) == (2, 3, 5, 6)  # 6 x 11 / 41 = 1.61 -> 2, ...
    assert scaled_rates((2, 4, 8, 12), 11) == (1, 1, 2, 3)  # 2 x 11 / 41 = 0.54: at least 1
    assert scaled_rates((6, 12, 18, 24), 41) == (6, 12, 18, 24)
    with pytest.raises(ValueError, match="score_map"):
        scaled_rates((12,), 0)


def test_mean_std_is_numpy_sample_statistics():
    values = [0.3, 0.5, 0.4, 0.9]
    assert mean_std(values) == pytest.approx((np.mean(values), np.std(values, ddof=1)))
    assert mean_std([0.5]) == (0.5, 0.0)


def test_a_difference_is_real_only_beyond_both_spreads():
    assert is_real([0.70, 0.71, 0.72], [0.60, 0.61, 0.62])  # 0.10 apart, spreads 0.01 + 0.01
    assert not is_real([0.70, 0.60, 0.65], [0.66, 0.64, 0.68])  # spreads 0.05 + 0.02 > 0.01
    # means 0.02 apart, spreads 0.01 each: touching intervals are not a finding
    assert not is_real([0.69, 0.70, 0.71], [0.67, 0.68, 0.69])


def test_summary_tables_and_verdicts():
    cell = summarise(RUNS)["aspp"]["B"]
    assert cell["miou"] == [0.60, 0.62, 0.61] and cell["band 10 crf"] == pytest.approx(
        [0.55, 0.57, 0.56]
    )
    (pair,) = comparisons(RUNS, "aspp")
    assert pair["first"] == "A" and pair["second"] == "B" and pair["real"]
    assert pair["difference"] == pytest.approx(-0.10) and pair["spread"] == pytest.approx(0.02)
    table = experiment_table(RUNS, "aspp")
    assert "| A | 0.710 +- 0.010 | 0.760 +- 0.010 |" in table and "3 seeds" in table
    assert "B - A: -0.100 (spread 0.020, real)" in table
    # The CRF's gain is paired: exactly 0.10 in the 1 px band for every run, so no spread.
    assert "| 1 | 0.360 +- 0.055 | 0.460 +- 0.055 | 0.100 +- 0.000 |" in crf_table(RUNS, "aspp")


def test_variants_on_other_scenes_are_not_compared():
    runs = RUNS + [run("A, crossed", s, 0.3) for s in range(3)]
    runs[-1]["scenes"] = runs[-2]["scenes"] = runs[-3]["scenes"] = {"class_set": "crossed"}
    assert [(p["first"], p["second"]) for p in comparisons(runs, "aspp")] == [("A", "B")]


def test_read_runs_round_trips_and_names_the_file_on_bad_input(tmp_path):
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(RUNS))
    assert read_runs(path) == RUNS  # band widths back to numbers
    path.write_text(json.dumps([{"experiment": "aspp"}]))
    with pytest.raises(ValueError, match=r"claims\.json: run 0 lacks \['variant'"):
        read_runs(path)
    path.write_text("{")
    with pytest.raises(ValueError, match="claims.json"):
        read_runs(path)
    with pytest.raises(ValueError, match="absent.json"):
        read_runs(tmp_path / "absent.json")


def test_figures_draw_every_variant_and_seed():
    figure = experiment_figure(RUNS, "aspp")
    bars, bands = figure.axes
    assert len(bars.patches) == 4  # 2 variants x (network, + CRF)
    dots = [line for line in bars.get_lines() if line.get_marker() == "o"]
    assert sum(len(line.get_xdata()) for line in dots) == 12  # every seed's dot
    assert len(bands.get_legend().get_texts()) == 2
    levels, gains = crf_gain_figure(RUNS, "aspp").axes
    (network, refined) = levels.get_legend().get_texts()
    assert (network.get_text(), refined.get_text()) == ("network", "+ CRF")
    # the paired gain: 0.10 in the 1 px band for every run (2 x 0.05), 0.05 in the others
    gain = gains.containers[0].lines[0]  # the errorbar's data line
    assert gain.get_ydata() == pytest.approx([0.10, 0.05, 0.05])
