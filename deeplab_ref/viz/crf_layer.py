"""Figures for the CRF as a layer (CRF-as-RNN, Zheng et al. 2015, over DeepLab Sec. 3.3's CRF):
the labels after each unrolled mean-field step, the learning of the kernel weights, the learned
label compatibility, and the learned CRF beside the fixed one over several seeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from deeplab_ref.viz.data import colorize_label


def unrolled_steps_figure(
    image: np.ndarray, truth: np.ndarray, steps: Sequence[np.ndarray], shown: Sequence[int]
) -> Figure:
    """The image, its labels (white: ignored) and the label map argmax Q after each step in
    ``shown`` (indices into ``steps``, each Q (C, H, W); step 0 is the network's softmax)."""
    figure = Figure(figsize=(2.2 * (2 + len(shown)), 2.5), layout="constrained")
    axes = figure.subplots(1, 2 + len(shown))
    axes[0].imshow(image)
    axes[0].set_title("image", fontsize=9)
    axes[1].imshow(colorize_label(truth), interpolation="nearest")
    axes[1].set_title("labels", fontsize=9)
    for ax, step in zip(axes[2:], shown, strict=True):
        ax.imshow(colorize_label(steps[step].argmax(0)), interpolation="nearest")
        ax.set_title("network (t = 0)" if step == 0 else f"t = {step}", fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    figure.suptitle("Mean field unrolled: the recurrent network's state after each step")
    return figure


def learning_figure(histories: Mapping[int, Sequence[dict]]) -> Figure:
    """Per seed: the training loss and the two kernel weights after each Adam step."""
    figure = Figure(figsize=(10, 3), layout="constrained")
    axes = figure.subplots(1, 3)
    keys = (
        ("loss", "cross-entropy"),
        ("bilateral_weight", "w1 (bilateral)"),
        ("gaussian_weight", "w2 (Gaussian)"),
    )
    for seed, history in histories.items():
        for ax, (key, _) in zip(axes, keys, strict=True):
            ax.plot(range(1, len(history) + 1), [h[key] for h in history], label=f"seed {seed}")
    for ax, (_, title) in zip(axes, keys, strict=True):
        ax.set_xlabel("Adam step")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return figure


def compatibility_figure(compatibility: np.ndarray, class_names: Sequence[str]) -> Figure:
    """A (C, C) label compatibility mu(l, l'), the cost of label l next to l' (Potts: 1 off the
    diagonal, 0 on it), with its values written in."""
    figure = Figure(figsize=(5.2, 4.4), layout="constrained")
    ax = figure.subplots()
    picture = ax.imshow(compatibility, cmap="coolwarm", vmin=-1.5, vmax=1.5)
    for (row, col), value in np.ndenumerate(compatibility):
        ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=8)
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(ticks, class_names, fontsize=8)
    ax.set_xlabel("neighbour's label l'")
    ax.set_ylabel("label l")
    figure.colorbar(picture, ax=ax, label="mu(l, l')")
    return figure


def seeds_figure(results: Mapping[str, Mapping[str, Sequence[float]]]) -> Figure:
    """``results[metric][method]``: one value per seed. One panel per metric: each seed's value
    as a dot, the mean as a bar with +- one standard deviation."""
    figure = Figure(figsize=(4.5 * len(results), 3.4), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(results)))
    for ax, (metric, methods) in zip(axes, results.items(), strict=True):
        for x, values in enumerate(methods.values()):
            values = 100 * np.asarray(values)
            spread = values.std(ddof=1) if len(values) > 1 else 0.0
            ax.bar(x, values.mean(), yerr=spread, color=f"C{x}", alpha=0.5, capsize=4)
            ax.plot(np.full(len(values), x), values, "k.", ms=6)
        ax.set_xticks(range(len(methods)), list(methods), fontsize=9)
        ax.set_ylabel(f"{metric} (%)")
        ax.grid(axis="y", alpha=0.3)
        low = min(100 * min(v) for v in methods.values())
        ax.set_ylim(max(0.0, low - 10), None)
    return figure
