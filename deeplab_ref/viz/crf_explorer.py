"""The fully connected CRF (DeepLab Sec. 3.3) on pydensecrf's example photos: scores before and
after it, and a widget with its five parameters.

The stride-8 "network" input is ``viz.crf.coarse_probs`` of the reference labels, and the
reference (``outK.png``) is pydensecrf's own CRF result, not a human annotation: its boundaries
follow colour edges, as any CRF's do, so scores against it flatter a CRF. The examples' other
labels, the coarse annotation ``annoK.png`` (black = unknown), are the CRF's input in
pydensecrf's example, not a CRF's output, so ``crf_scores`` measures against both. Neither is a VOC ground truth; scores within a band around
the boundaries follow the paper's trimap (Sec. 4.1, Fig. 10: mean IoU within the band, plotted
against its width; ``evaluate.TrimapMeter``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from deeplab_ref.crf import dense_crf
from deeplab_ref.evaluate import ConfusionMatrix, TrimapMeter
from deeplab_ref.viz import crf as viz_crf
from deeplab_ref.viz.crf import add_class_legend, label_colours
from deeplab_ref.viz.widgets import live_figure

# dense_crf's arguments, the paper's symbols for them (Eq. 3) and the library's defaults.
PARAMETERS = {
    "bi_w": ("w1", 4.0),
    "bi_xy_std": ("sigma_alpha", 67.0),
    "bi_rgb_std": ("sigma_beta", 3.0),
    "pos_w": ("w2", 3.0),
    "pos_xy_std": ("sigma_gamma", 1.0),
}
CLASS_NAMES = viz_crf.CLASS_NAMES
TARGETS = ("reference", "annotation")
WIDTHS = (1, 2, 4, 8, 16, 32)


def crf_scores(k: int, widths: Sequence[float] = WIDTHS) -> dict[str, Any]:
    """Example k's stride-8 labels before and after ``dense_crf`` (``viz.crf.before_after``),
    scored against the reference (pydensecrf's CRF output) and the coarse annotation (its
    labelled pixels only).

    Returns ``widths`` (W,), ``labelled`` (the annotation's labelled share of the pixels) and
    ``scores[target][stage]`` for target in TARGETS and stage "before" / "after": a dict with
    ``accuracy`` and ``mean_iou`` over all (labelled) pixels and ``band_accuracy``,
    ``band_mean_iou`` (W,) within each width of the target's boundaries (``TrimapMeter``; the
    annotation's unknown pixels count as a label of their own there, so its band follows the
    edges of what was annotated).
    """
    result = viz_crf.before_after(k)
    example = result["example"]
    n_labels = len(example["colours"])
    scores: dict[str, dict[str, dict[str, Any]]] = {}
    for target in TARGETS:
        scores[target] = {}
        for stage in ("before", "after"):
            overall = ConfusionMatrix(n_labels, ignore_index=viz_crf.IGNORE)
            overall.update(result[stage], example[target])
            band = TrimapMeter(n_labels, widths, ignore_index=viz_crf.IGNORE)
            band.update(result[stage], example[target])
            scores[target][stage] = {
                "accuracy": overall.pixel_accuracy,
                "mean_iou": overall.mean_iou,
                "band_accuracy": band.pixel_accuracy,
                "band_mean_iou": band.mean_iou,
            }
    labelled = float(np.mean(example["annotation"] != viz_crf.IGNORE))
    return {"widths": np.asarray(widths, float), "labelled": labelled, "scores": scores}


def trimap_figure(results: dict[int, dict[str, Any]]) -> Figure:
    """Mean IoU within the band against its width (as the paper's Fig. 10(b)), before and after
    the CRF, against the reference (left) and the annotation (right), one colour per example:
    ``results`` maps an example's number to its ``crf_scores``."""
    figure = Figure(figsize=(11, 3.6), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    titles = {
        "reference": "against the reference (pydensecrf's CRF output)",
        "annotation": "against the coarse annotation (labelled pixels)",
    }
    for colour, (k, result) in enumerate(results.items()):
        widths = result["widths"]
        for ax, target in zip(axes, TARGETS, strict=True):
            for stage, style in (("before", "--"), ("after", "-")):
                ax.plot(
                    result["widths"],
                    result["scores"][target][stage]["band_mean_iou"],
                    style,
                    marker="o",
                    ms=3,
                    color=f"C{colour}",
                    label=f"im{k} {stage} CRF",
                )
    for ax, target in zip(axes, TARGETS, strict=True):
        ax.set_title(titles[target], fontsize=10)
        ax.set_xlabel("band width (pixels)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(widths), [f"{w:g}" for w in widths])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean IoU within the band")
    axes[1].legend(fontsize=8)
    return figure


def examples_figure(examples: Sequence[int] = (1, 2)) -> Figure:
    """One row per example: the photo, its coarse annotation (black: unknown) and the reference
    (pydensecrf's published CRF result), with a class legend per row."""
    figure = Figure(figsize=(10, 2.7 * len(examples)), layout="constrained")
    rows = figure.subfigures(len(examples), 1, squeeze=False)[:, 0]
    for row, k in zip(rows, examples, strict=True):
        example = viz_crf.load_example(k)
        colours = label_colours(k)
        with_unknown = np.concatenate([colours, np.zeros((1, 3), np.uint8)])
        annotation = np.where(
            example["annotation"] == viz_crf.IGNORE, len(colours), example["annotation"]
        )
        panels = [
            (f"im{k}.png: photo", example["image"]),
            (f"anno{k}.png: the coarse annotation", with_unknown[annotation]),
            (f"out{k}.png: pydensecrf's CRF result (the reference)", colours[example["reference"]]),
        ]
        for ax, (title, picture) in zip(row.subplots(1, 3), panels, strict=True):
            ax.imshow(picture)
            ax.set_title(title, fontsize=9)
            ax.set_axis_off()
        add_class_legend(row, [*CLASS_NAMES[k], "unknown"], with_unknown)
    return figure


def example_input(k: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Example k (``viz.crf.load_example``) and its stride-8 probabilities (C, H, W)."""
    example = viz_crf.load_example(k)
    return example, viz_crf.coarse_probs(example["reference"], len(example["colours"]))


def refine_example(k: int, **parameters: float) -> np.ndarray:
    """Labels (H, W) of ``dense_crf`` on example k's stride-8 probabilities, with any of
    PARAMETERS given (the others at the library's defaults)."""
    unknown = set(parameters) - set(PARAMETERS)
    if unknown:
        raise ValueError(f"unknown CRF parameters {sorted(unknown)}; use {list(PARAMETERS)}")
    example, probs = example_input(k)
    return dense_crf(example["image"], probs, **parameters).argmax(0)


def crf_labels_figure(
    k: int,
    example: dict[str, np.ndarray],
    probs: np.ndarray,
    labels: np.ndarray,
    parameters: dict[str, float] | None = None,
) -> Figure:
    """Example k's photo, its stride-8 labels (probs (C, H, W)) and the CRF's labels (H, W),
    with a class legend, the parameters in the title and the pixel accuracy against the
    reference and the annotation (labelled pixels)."""
    colours = label_colours(k)
    known = example["annotation"] != viz_crf.IGNORE
    against = {
        "reference": np.mean(labels == example["reference"]),
        "annotation": np.mean((labels == example["annotation"])[known]),
    }
    figure = Figure(figsize=(12, 3.4), layout="constrained")
    panels = [
        ("photo", example["image"]),
        ("stride-8 labels (the CRF's input)", colours[probs.argmax(0)]),
        (
            f"after the CRF: {against['reference']:.1%} of the reference, "
            f"{against['annotation']:.1%} of the annotation",
            colours[labels],
        ),
    ]
    for ax, (title, picture) in zip(figure.subplots(1, 3), panels, strict=True):
        ax.imshow(picture)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    if parameters:
        figure.suptitle(
            ", ".join(f"{PARAMETERS[n][0]} = {v:g}" for n, v in parameters.items()), fontsize=10
        )
    add_class_legend(figure, CLASS_NAMES[k], colours)
    return figure


def crf_parameter_widget(k: int = 2):
    """One slider per CRF parameter (w1, sigma_alpha, sigma_beta, w2, sigma_gamma; the library's
    defaults to start) above a picture that ``dense_crf`` on example k's stride-8 probabilities
    redraws (``crf_labels_figure``) when a slider is let go (``viz.widgets.live_figure``).
    Returns an ``ipywidgets.VBox``."""
    import ipywidgets

    example, probs = example_input(k)
    ranges = {
        "bi_w": (0.0, 20.0, 0.5),
        "bi_xy_std": (5.0, 200.0, 1.0),
        "bi_rgb_std": (1.0, 30.0, 0.5),
        "pos_w": (0.0, 30.0, 0.5),
        "pos_xy_std": (0.5, 10.0, 0.5),
    }
    sliders = {
        name: ipywidgets.FloatSlider(
            value=PARAMETERS[name][1],
            min=low,
            max=high,
            step=step,
            description=f"{PARAMETERS[name][0]} ({name})",
            continuous_update=False,
            style={"description_width": "160px"},
            layout=ipywidgets.Layout(width="480px"),
        )
        for name, (low, high, step) in ranges.items()
    }

    def draw(**parameters: float) -> Figure:
        labels = dense_crf(example["image"], probs, **parameters).argmax(0)
        return crf_labels_figure(k, example, probs, labels, parameters)

    return live_figure(draw, sliders)
