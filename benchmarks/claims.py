"""What each idea of DeepLab buys: the paper's claims as small controlled experiments on a CPU.

Each experiment isolates one idea and trains every variant with several seeds on the same data,
iterations and recipe (the ``cpu-synthetic`` preset: 1,500 iterations here; a variant changes
only what its name says), then scores it on the synthetic validation scenes with and without the
CRF: mIoU, and the mean IoU within bands around the boundaries (the trimap metric, Fig. 10).

1. **Output stride** (Sec. 3.1): one backbone at output stride 32, 16 and 8 (the same weights;
   striding traded for dilation), the head's rate scaled with the stride so that its field of
   view stays the same, on 97x97 crops (32 x 3 + 1: the scores sit on the exact grid at every
   stride).
2. **Field of view** (Table 1): fc6 as 3x3 rate 1 (a small field), 3x3 rate 3 (LargeFOV's 12,
   scaled) and 7x7 rate 1 (the same field as 3x3 rate 3, 5.4x the head's weights: the paper's
   7x7 r4 against 3x3 r12), on "crossed" scenes (classes share shapes and textures, so a pixel
   deep inside an object needs to see its outline) and on "distinct" ones (the control: local
   texture names the class); and the 7x7 at a quarter of the rate.
3. **ASPP** (Table 3): LargeFOV, ASPP-S and ASPP-L on scenes whose objects span a 12x range of
   sizes, at the preset's rate and at a quarter of it (``aspp_low_lr``): four summed branches,
   each classifier at 10x, move the scores about four times as fast as one.
4. **Multi-scale inputs** (Table 4): with and without MSC on the same scenes, at the preset's
   rate and at a quarter of it (an earlier ablation ran MSC, and only MSC, at a quarter).
5. **The CRF** (Fig. 10): its gain within bands of 1 to 20 pixels, paired run by run, over the
   runs of ``CRF_RUNS``.

Geometry. Every run is scored as the preset tests: each 96x96 scene padded to 97x97 (8 x 12 + 1,
as the released test networks pad to 513), so that score i sits over pixel 8 i. The paper's
rates go with a 41x41 score map (the released configurations' 321x321 crops at output stride
8); our 81x81 crops give an 11x11 map. A rate r of the paper becomes
max(1, round(r x 11 / 41)) here (``deeplab_ref.claims.scaled_rates``): ASPP-L's 6, 12, 18, 24 ->
2, 3, 5, 6; ASPP-S's 2, 4, 8, 12 -> 1, 1, 2, 3; LargeFOV's 12 -> 3. Unscaled, rates 12-24 put
nearly every tap in the padding of an 11x11 map and the branches degenerate toward 1x1
convolutions.

A difference between two variants is called real when the means differ by more than the sum of
their standard deviations over the seeds (``deeplab_ref.claims.is_real``); otherwise it is within
the seeds' spread, and no finding. The tables and figures come from ``deeplab_ref.claims`` and
``deeplab_ref.viz.claims``; notebook 09 shows and reads them.

Run: ``python benchmarks/claims.py`` (every experiment, 3 seeds; a variant that two experiments
share is trained once), ``--resume`` (keep the runs claims.json holds, train the rest),
``--overwrite`` (train every run again: without it or ``--resume`` an existing claims.json is
never replaced), ``--quick`` (a smoke test: 2 seeds, a few iterations, tiny splits), ``--only
output_stride,crf``, ``--report`` (the tables and figures again from claims.json, no training).
Writes ``benchmarks/results/claims.json`` (one object per run), ``claims.md`` (the tables) and
``figures/claims_*.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from deeplab_ref.claims import (
    crf_table,
    experiment_table,
    read_runs,
    scaled_rates,
    training_key,
)
from deeplab_ref.crf_evaluation import evaluate_crf
from deeplab_ref.data.synthetic import class_names
from deeplab_ref.models import count_parameters
from deeplab_ref.prediction import test_network
from deeplab_ref.presets import build_dataset, get_preset
from deeplab_ref.run_control import TrainingInterrupted
from deeplab_ref.train import train
from deeplab_ref.viz.claims import crf_gain_figure, experiment_figure

ROOT = Path(__file__).resolve().parents[1]
MAP = 11  # the score map of our 81x81 crops at stride 8 (the paper's: 41, from 321)
CRF_RUNS = "aspp_low_lr"  # the CRF is scored on these runs: every one of them trained stably
LOW_LR = 0.0025  # a quarter of the preset's 0.01 (the earlier ablation's rate for MSC)
BAND_WIDTHS = (1, 2, 3, 5, 10, 20)
TITLE = "# What each idea buys"  # claims.md's first line
WIDE_SCALES = {"object_size": (8.0, 96.0)}  # a 12x range of object sizes in 96x96 scenes


@dataclass
class Variant:
    name: str
    options: dict  # TrainConfig overrides (backbone_options go to deeplab_v2)
    scenes: dict = field(default_factory=dict)  # SyntheticSegmentation options


def _head(rates: tuple[int, ...], **options) -> dict:
    return {"backbone_options": {"width": 32, "atrous_rates": rates, **options}}


EXPERIMENTS: dict[str, list[Variant]] = {
    "output_stride": [
        # LargeFOV's scaled rate 3 is not divisible by 4: rate 4 at OS 8 keeps 2 at 16, 1 at 32.
        # 97 = 32 x 3 + 1 crops keep score i over pixel i x stride at every stride (81 does not
        # at 32).
        Variant(f"OS {stride}", {"crop_size": 97, **_head((rate,), output_stride=stride)})
        for stride, rate in ((32, 1), (16, 2), (8, 4))
    ],
    "field_of_view": [
        Variant(f"{name}, {scenes}", _head(rates, kernel_size=k), {"class_set": scenes})
        for scenes in ("crossed", "distinct")
        for name, rates, k in (
            ("3x3 r1", (1,), 3),
            ("3x3 r3", scaled_rates((12,), MAP), 3),
            ("7x7 r1", (1,), 7),
        )
    ]
    # the big kernel's 49 taps at 10x move its scores faster: the same at a quarter of the rate
    + [
        Variant(
            "7x7 r1, lr / 4, distinct",
            {"base_lr": LOW_LR, **_head((1,), kernel_size=7)},
            {"class_set": "distinct"},
        )
    ],
    "aspp": [
        Variant(head, _head(scaled_rates(rates, MAP)), WIDE_SCALES)
        for head, rates in (
            ("LargeFOV", (12,)),
            ("ASPP-S", (2, 4, 8, 12)),
            ("ASPP-L", (6, 12, 18, 24)),
        )
    ],
    # The same at a quarter of the rate: four summed branches, each classifier at 10x, move the
    # scores about four times as fast as one.
    "aspp_low_lr": [
        Variant(
            f"{head}, lr / 4", {"base_lr": LOW_LR, **_head(scaled_rates(rates, MAP))}, WIDE_SCALES
        )
        for head, rates in (
            ("LargeFOV", (12,)),
            ("ASPP-S", (2, 4, 8, 12)),
            ("ASPP-L", (6, 12, 18, 24)),
        )
    ],
    "msc": [
        Variant(name, {**options, **_head(scaled_rates((6, 12, 18, 24), MAP))}, WIDE_SCALES)
        for name, options in (
            ("no MSC", {}),  # = ASPP-L of the aspp experiment: trained once
            ("MSC", {"msc": True}),
            ("no MSC, lr / 4", {"base_lr": LOW_LR}),  # = ASPP-L, lr / 4
            ("MSC, lr / 4", {"msc": True, "base_lr": LOW_LR}),
        )
    ],
}


def run_variant(
    experiment: str, variant: Variant, seed: int, settings: dict, scratch: Path
) -> dict:
    """Train and score one variant with one seed; the run's record for claims.json."""
    scenes = {"cache": True, **variant.scenes, **settings["scenes"]}
    config = get_preset(
        "cpu-synthetic",
        num_classes=len(class_names(scenes.get("class_set", "distinct"))),
        seed=seed,
        max_iter=settings["max_iter"],
        checkpoint_every=settings["max_iter"],
        log_every=max(1, settings["max_iter"] // 10),
        dataset_options=scenes,
        **variant.options,
    )
    start = time.perf_counter()
    folder = scratch / f"{experiment}-{variant.name}-{seed}".replace(" ", "_").replace("/", "")
    model = train(config, folder, progress=False)
    train_seconds = time.perf_counter() - start
    val = build_dataset(config, "val")
    network = test_network(model, config.eval_padding)  # the scenes padded to 97, the exact grid
    scores = evaluate_crf(network, val, config.num_classes, vars(config.crf), BAND_WIDTHS)
    network, crf = scores["network"], scores["crf"]
    record = {
        "experiment": experiment,
        "variant": variant.name,
        "scenes": _as_json({k: v for k, v in scenes.items() if k != "cache"}),
        "seed": seed,
        "iterations": config.max_iter,
        "base_lr": config.base_lr,
        "options": _as_json(variant.options),
        "miou": network.confusion.mean_iou,
        "miou_crf": crf.confusion.mean_iou,
        "band_miou": dict(zip(BAND_WIDTHS, network.trimap.mean_iou.tolist(), strict=True)),
        "band_miou_crf": dict(zip(BAND_WIDTHS, crf.trimap.mean_iou.tolist(), strict=True)),
        "train_seconds": train_seconds,
        "parameters": count_parameters(model),
    }
    print(json.dumps({k: record[k] for k in ("experiment", "variant", "seed", "miou")}), flush=True)
    return record


def _as_json(value: dict) -> dict:
    """``value`` as claims.json gives it back (tuples as lists), so that records compare equal."""
    return json.loads(json.dumps(value))


def _recorded_runs(results: Path, parser: argparse.ArgumentParser) -> list[dict]:
    """The runs claims.json holds; a file that is not one exits 2, naming it."""
    try:
        return read_runs(results)
    except ValueError as error:
        parser.error(str(error))


def _recorded_provenance(markdown: Path) -> str:
    """The provenance paragraph (command, wall time) of an earlier claims.md, which --report
    keeps while it redraws the tables."""
    if markdown.is_file():
        title, _, rest = markdown.read_text().partition("\n\n")
        if title == TITLE:
            return rest.split("\n\n", 1)[0]
    return "Rebuilt from `claims.json`."


def report(runs: list[dict], out: Path, figures: Path, provenance: str) -> str:
    """Write claims.md (every experiment's table, the CRF's) and the figures; return the text."""
    experiments = [e for e in EXPERIMENTS if any(r["experiment"] == e for r in runs)]
    tables = [experiment_table(runs, e) for e in experiments]
    if CRF_RUNS in experiments:
        tables.append(crf_table(runs, CRF_RUNS))
    text = "\n\n".join(tables) + "\n"
    (out / "claims.md").write_text(f"{TITLE}\n\n{provenance}\n\n{text}")
    figures.mkdir(parents=True, exist_ok=True)
    drawn = {f"claims_{e}.png": experiment_figure(runs, e) for e in experiments}
    if CRF_RUNS in experiments:
        drawn["claims_crf.png"] = crf_gain_figure(runs, CRF_RUNS)
    for name, fig in drawn.items():
        fig.savefig(figures / name, dpi=110)
    return text


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: seconds, not minutes")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-iter", type=int, default=1500, help="iterations per run")
    parser.add_argument("--only", help="comma-separated experiments (default: all)")
    parser.add_argument(
        "--report", action="store_true", help="only the tables and figures, from claims.json"
    )
    parser.add_argument(
        "--resume", action="store_true", help="keep the runs claims.json holds; train the rest"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the runs claims.json holds"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--figures", type=Path, default=ROOT / "figures")
    args = parser.parse_args(argv)
    results = args.out / "claims.json"
    if args.report:
        runs = _recorded_runs(results, parser)
        provenance = _recorded_provenance(args.out / "claims.md")
        print(report(runs, args.out, args.figures, provenance))
        return runs
    if args.seeds < 2 or args.max_iter < 1:
        parser.error("--seeds must be at least 2 (a spread needs two) and --max-iter positive")
    settings = {"max_iter": args.max_iter, "scenes": {}}
    if args.quick:
        settings = {"max_iter": 4, "scenes": {"length": 8}}
        args.seeds = 2
    chosen = list(EXPERIMENTS) if args.only is None else args.only.split(",")
    if unknown := set(chosen) - set(EXPERIMENTS) - {"crf"}:
        parser.error(f"--only: unknown experiments {sorted(unknown)}; see {list(EXPERIMENTS)}")
    if "crf" in chosen and CRF_RUNS not in chosen:
        chosen.append(CRF_RUNS)  # the CRF's experiment scores those runs
    args.out.mkdir(parents=True, exist_ok=True)
    runs = []
    # A run's settings: the same settings and seed in two experiments train once, and --resume
    # keeps the runs claims.json already holds.
    trained: dict[str, dict] = {}
    if results.is_file() and not (args.resume or args.overwrite):
        parser.error(
            f"{results} holds earlier runs: --resume keeps them and trains the rest, "
            "--overwrite trains every run again"
        )
    if args.resume and results.is_file():
        trained = {
            training_key(r["options"], r["scenes"], r["seed"], r["iterations"]): r
            for r in _recorded_runs(results, parser)
        }
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for experiment in (e for e in EXPERIMENTS if e in chosen):
                for variant in EXPERIMENTS[experiment]:
                    for seed in range(args.seeds):
                        scenes = {**variant.scenes, **settings["scenes"]}
                        key = training_key(variant.options, scenes, seed, settings["max_iter"])
                        if key not in trained:
                            trained[key] = run_variant(
                                experiment, variant, seed, settings, Path(scratch)
                            )
                        run = {**trained[key], "experiment": experiment, "variant": variant.name}
                        runs.append(run)
                        # Written after every run: an interrupted suite keeps what it measured.
                        partial = results.with_suffix(".json.tmp")
                        partial.write_text(json.dumps(runs, indent=1) + "\n")
                        partial.replace(results)  # atomic: a write cut short keeps the last file
    except (TrainingInterrupted, KeyboardInterrupt):
        # The run in progress goes with the scratch folder; every finished one is in the file.
        print(
            f"interrupted: {len(runs)} runs kept in {results}; --resume trains the rest",
            file=sys.stderr,
        )
        raise SystemExit(130) from None  # the shell's code for a process stopped by Ctrl-C
    minutes = (time.perf_counter() - start) / 60
    command = " ".join(["python benchmarks/claims.py", *(argv or [])])
    print(report(runs, args.out, args.figures, f"`{command}`: {minutes:.0f} minutes in all."))
    print(f"the suite took {minutes:.1f} minutes")
    return runs


if __name__ == "__main__":
    main()
