"""The demo: DeepLab-v2 end to end on the built-in synthetic scenes, on a CPU, in minutes.

It trains the ``cpu-synthetic`` preset (a small VGG-style backbone trained from scratch, at
output stride 8 by the atrous trick, with the ASPP-L head: see ``deeplab_ref.presets``), scores
the validation split without and with the fully connected CRF (mIoU, per-class IoU and the
trimap: mean IoU near boundaries), writes the results table and the figures, and says where
they are.
"""

from __future__ import annotations

import time
from pathlib import Path

from deeplab_ref.checkpoint import (
    CHECKPOINT_NAME,
    changed_settings,
    load_trained_model,
    read_checkpoint,
    saved_config,
)
from deeplab_ref.crf_evaluation import evaluate_crf
from deeplab_ref.evaluate import SplitScores
from deeplab_ref.models import DeepLabV2
from deeplab_ref.prediction import test_network
from deeplab_ref.presets import TrainConfig, build_dataset, get_preset
from deeplab_ref.report import TRIMAP_WIDTHS, method_name, prediction_samples, results_table
from deeplab_ref.train import read_log, train
from deeplab_ref.viz.training import loss_curve_figure, predictions_figure, trimap_figure


def run_demo(
    out_dir: str | Path = "results/demo",
    figures_dir: str | Path = "figures",
    max_iter: int | None = None,
    overwrite: bool = False,
) -> dict[str, SplitScores]:
    """Train, evaluate with and without the CRF, write ``results.md`` into ``out_dir`` and the
    figures ``demo_*.png`` into ``figures_dir``. Returns the scores.

    A run already in ``out_dir`` with the same settings is continued if it was interrupted and
    reused if it is finished; ``overwrite`` trains again from the start."""
    out_dir, figures_dir = Path(out_dir), Path(figures_dir)
    config = get_preset("cpu-synthetic", **({} if max_iter is None else {"max_iter": max_iter}))
    start = time.perf_counter()
    model = _trained_model(config, out_dir, overwrite)
    train_seconds = time.perf_counter() - start
    val = build_dataset(config, "val")
    network = test_network(model, config.eval_padding)
    print(f"scoring {len(val)} validation images without and with the CRF ...")
    results = evaluate_crf(network, val, config.num_classes, vars(config.crf), TRIMAP_WIDTHS)
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
            prediction_samples(network, val, vars(config.crf), count=4)
        ),
        "demo_trimap.png": trimap_figure(
            TRIMAP_WIDTHS,
            {method_name(key): scores.trimap.mean_iou for key, scores in results.items()},
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


def _trained_model(config: TrainConfig, out_dir: Path, overwrite: bool) -> DeepLabV2:
    checkpoint = out_dir / CHECKPOINT_NAME
    if overwrite or not checkpoint.is_file():
        print(f"training the cpu-synthetic preset for {config.max_iter} iterations ...")
        return train(config, out_dir, overwrite=overwrite)
    state = read_checkpoint(checkpoint)
    changed = changed_settings(saved_config(checkpoint, state), config)
    if changed:
        raise ValueError(
            f"{out_dir} holds another run ({'; '.join(changed)}): pass --overwrite to train "
            "the demo again there, or choose another --out"
        )
    if state["iteration"] < config.max_iter:
        print(f"continuing the run in {out_dir} from iteration {state['iteration']} ...")
        return train(config, out_dir, resume=True)
    print(f"reusing the finished run in {out_dir} (--overwrite trains it again)")
    return load_trained_model(checkpoint)[0]
