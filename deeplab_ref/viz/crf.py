"""Figures for the fully connected CRF (DeepLab Sec. 3.3, Fig. 5 and 6): a coarse output-stride-8
score map before and after the CRF, the permutohedral lattice's splat / blur / slice, and the
effect of the kernel parameters. The photos are pydensecrf's examples (deeplab_ref.crf.examples)."""

from __future__ import annotations

import inspect

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from PIL import Image
from scipy import ndimage

from deeplab_ref.boundaries import boundary_band
from deeplab_ref.crf import PermutohedralLattice, dense_crf
from deeplab_ref.crf.examples import FOLDER, example_path
from deeplab_ref.crf.permutohedral import elevate
from deeplab_ref.evaluate import TrimapMeter

EXAMPLES = FOLDER  # where load_example reads; a test points it elsewhere
IGNORE = 255
CLASS_NAMES = {1: ("goose", "water"), 2: ("background", "bench")}  # labels 0, 1 of each example
# Colours for the figures: the object orange, its surroundings blue (the annotations' own colours
# are two similar greens).
OBJECT, SURROUNDINGS = (230, 120, 30), (40, 90, 170)
CLASS_COLOURS = {1: (OBJECT, SURROUNDINGS), 2: (SURROUNDINGS, OBJECT)}
# dense_crf's CRF parameters in the paper's symbols (Eq. 3).
SYMBOLS = {
    "bi_w": "w1",
    "bi_xy_std": "sigma_alpha",
    "bi_rgb_std": "sigma_beta",
    "pos_w": "w2",
    "pos_xy_std": "sigma_gamma",
}


# dense_crf's defaults for those parameters.
DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(dense_crf).parameters.items()
    if name in SYMBOLS
}


def _read_rgb(name: str) -> np.ndarray:
    """Example file ``name`` from EXAMPLES as (H, W, 3) uint8 RGB."""
    return np.array(Image.open(example_path(name, EXAMPLES)).convert("RGB"))


def load_example(k: int) -> dict[str, np.ndarray]:
    """pydensecrf's example k (1 or 2): ``image`` (H, W, 3) uint8, ``annotation`` labels (H, W)
    (IGNORE where black), ``reference`` labels (its published CRF result) and ``colours``."""
    packed = {}
    for name in ("anno", "out"):
        rgb = _read_rgb(f"{name}{k}.png").astype(np.uint32)
        packed[name] = rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]
    colours = np.unique(packed["anno"])
    colours = colours[colours != 0]  # black is "unknown"
    annotation = np.searchsorted(colours, packed["anno"]).astype(np.int64)
    annotation[packed["anno"] == 0] = IGNORE
    reference = np.searchsorted(colours, packed["out"]).astype(np.int64)
    image = _read_rgb(f"im{k}.png")
    return {"image": image, "annotation": annotation, "reference": reference, "colours": colours}


def label_colours(k: int) -> np.ndarray:
    """(C, 3) uint8: the figures' colour of each of example k's labels (CLASS_COLOURS)."""
    return np.array(CLASS_COLOURS[k], np.uint8)


def add_class_legend(figure: Figure, names: list[str] | tuple[str, ...], colours) -> None:
    """A legend at figure's right with one patch of colours (C, 3) uint8 per class name (the
    figure needs the constrained layout)."""
    handles = [Patch(color=c / 255.0, label=n) for n, c in zip(names, colours, strict=True)]
    figure.legend(handles=handles, loc="outside right center", fontsize=9, title="labels")


def coarse_probs(
    labels: np.ndarray, n_labels: int, output_stride: int = 8, confidence: float = 0.9
):
    """What a network at ``output_stride`` can say about a label map (H, W): the label fractions
    of each stride x stride block, upsampled bilinearly to (n_labels, H, W) and mixed with the
    uniform distribution (weight 1 - confidence). Blurred, blocky boundaries, as in Fig. 5."""
    height, width = labels.shape
    one_hot = (labels[None] == np.arange(n_labels)[:, None, None]).astype(np.float64)
    one_hot[:, labels == IGNORE] = 1.0 / n_labels
    pad = (-height % output_stride, -width % output_stride)
    padded = np.pad(one_hot, ((0, 0), (0, pad[0]), (0, pad[1])), mode="edge")
    blocks = padded.reshape(
        n_labels, padded.shape[1] // output_stride, output_stride, -1, output_stride
    )
    coarse = blocks.mean(axis=(2, 4))
    rows = (np.arange(height) + 0.5) / output_stride - 0.5
    cols = (np.arange(width) + 0.5) / output_stride - 0.5
    grid = np.meshgrid(rows, cols, indexing="ij")
    fine = np.stack([ndimage.map_coordinates(c, grid, order=1, mode="nearest") for c in coarse])
    fine = confidence * fine + (1.0 - confidence) / n_labels
    return (fine / fine.sum(axis=0)).astype(np.float32)


def before_after(k: int = 1, band: float = 4) -> dict:
    """Example k's reference labels seen at output stride 8, refined by ``dense_crf`` (the
    library's defaults): label maps, pixel accuracies overall and within ``band`` pixels of a
    boundary of the reference (``boundaries.boundary_band``, the trimap band), and the mean IoU
    within that band (``evaluate.TrimapMeter``; what the paper's Fig. 10 plots).

    The reference is pydensecrf's own CRF result for the example, not a human annotation, so
    these scores flatter a CRF (``viz.crf_explorer.crf_scores`` also scores against the
    example's coarse annotation)."""
    example = load_example(k)
    reference = example["reference"]
    probs = coarse_probs(reference, len(example["colours"]))
    refined = dense_crf(example["image"], probs)
    near = boundary_band(reference, band)
    result = {"example": example, "before": probs.argmax(0), "after": refined.argmax(0)}
    for name in ("before", "after"):
        correct = result[name] == reference
        result[f"{name}_accuracy"] = float(correct.mean())
        result[f"{name}_band_accuracy"] = float(correct[near].mean())
        meter = TrimapMeter(len(example["colours"]), [band], ignore_index=IGNORE)
        meter.update(result[name], reference)
        result[f"{name}_band_mean_iou"] = float(meter.mean_iou[0])
    return result


def crf_before_after_figure(k: int = 1, band: float = 4) -> Figure:
    """Photo, the coarse stride-8 labels, the CRF's labels and the reference (pydensecrf's CRF
    result), side by side with a class legend, with the mean IoU and the accuracy within
    ``band`` pixels of the reference's boundaries."""
    result = before_after(k, band)
    example = result["example"]
    rgb = label_colours(k)

    def scores(stage: str) -> str:
        return (
            f"mIoU {result[f'{stage}_band_mean_iou']:.1%}, "
            f"accuracy {result[f'{stage}_band_accuracy']:.1%}"
        )

    panels = [
        ("photo", example["image"]),
        (f"stride-8 labels: {scores('before')}", rgb[result["before"]]),
        (f"after the CRF: {scores('after')}", rgb[result["after"]]),
        ("reference (pydensecrf's CRF result)", rgb[example["reference"]]),
    ]
    figure = Figure(figsize=(14, 3.4), layout="constrained")
    for ax, (title, picture) in zip(figure.subplots(1, 4), panels, strict=True):
        ax.imshow(picture)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    figure.suptitle(
        "Fully connected CRF (the library's defaults, 10 mean-field iterations); scores within "
        f"{band:g} pixels of the reference's boundaries"
    )
    add_class_legend(figure, CLASS_NAMES.get(k, ("label 0", "label 1")), rgb)
    return figure


def _plane_xy(points: np.ndarray) -> np.ndarray:
    """(n, 3) points of the plane x + y + z = 0 in 2-D orthonormal coordinates."""
    basis = np.array([[1.0, -1.0, 0.0], [1.0, 1.0, -2.0]])
    return points @ (basis / np.linalg.norm(basis, axis=1, keepdims=True)).T


def lattice_diagram_figure(seed: int = 3, n_points: int = 12) -> Figure:
    """Splat, blur and slice on 2-D toy points with values 0/1: the lattice's three steps."""
    rng = np.random.default_rng(seed)
    features = rng.uniform(0.0, 2.2, size=(n_points, 2)).astype(np.float32)
    values = (features[:, 0] > 1.1).astype(np.float32)
    lattice = PermutohedralLattice(features)
    vertices = _plane_xy(lattice.lattice_points().astype(np.float64))
    points = _plane_xy(elevate(np.ascontiguousarray(features.T)).T.astype(np.float64))
    splatted = lattice.splat(values)
    blurred = lattice.blur(splatted)
    smoothed = lattice.filter(values) / lattice.filter(np.ones(n_points, np.float32))
    panels = [
        ("1. splat: each point to its triangle's corners", splatted, values),
        ("2. blur [1/2, 1, 1/2] along the 3 lattice directions", blurred, None),
        ("3. slice: read back, here divided by the slice of 1s", blurred, smoothed),
    ]
    figure = Figure(figsize=(13, 4.4))
    for ax, (title, vertex_values, point_values) in zip(figure.subplots(1, 3), panels, strict=True):
        for i, corners in enumerate(lattice.vertex):
            for corner, weight in zip(corners, lattice.barycentric[i], strict=True):
                ax.plot(*np.stack([points[i], vertices[corner]]).T, color="0.6", lw=3 * weight)
        hexagons = ax.scatter(
            *vertices.T, c=vertex_values, cmap="viridis", s=140, marker="h", edgecolors="k"
        )
        figure.colorbar(hexagons, ax=ax, shrink=0.6, label="lattice point's value")
        if point_values is None:
            ax.scatter(*points.T, color="w", s=40, edgecolors="k", zorder=3)
        else:
            ax.scatter(
                *points.T,
                c=point_values,
                cmap="coolwarm",
                vmin=0,
                vmax=1,
                s=40,
                edgecolors="k",
                zorder=3,
            )
        ax.set_title(title, fontsize=10)
        ax.set_aspect("equal")
        ax.set_axis_off()
    figure.suptitle(
        "Permutohedral lattice (d = 2): hexagons are lattice points, circles the data "
        "(blue 0, red 1); grey lines: splat/slice weights"
    )
    return figure


def parameter_grid_figure(k: int = 2, settings: dict[str, list[float]] | None = None) -> Figure:
    """The CRF's labels on example k's stride-8 scores as one parameter varies per row (each of
    ``dense_crf``'s five by default: w1, sigma_alpha, sigma_beta, w2, sigma_gamma), the others
    at the library's defaults; the example's label colours, with a legend."""
    settings = settings or {
        "bi_w": [0.0, 4.0, 20.0],
        "bi_xy_std": [10.0, 67.0, 200.0],
        "bi_rgb_std": [1.0, 3.0, 13.0],
        "pos_w": [0.0, 3.0, 30.0],
        "pos_xy_std": [1.0, 3.0, 10.0],
    }
    example = load_example(k)
    rgb = label_colours(k)
    probs = coarse_probs(example["reference"], len(example["colours"]))
    columns = max(len(v) for v in settings.values())
    figure = Figure(figsize=(3 * columns + 1.2, 2.3 * len(settings)), layout="constrained")
    axes = figure.subplots(len(settings), columns, squeeze=False)
    refined: dict[tuple[str, float], np.ndarray] = {}  # a value equal to the default runs once
    for row, (name, choices) in enumerate(settings.items()):
        for ax, value in zip(axes[row], choices, strict=False):
            key = ("default", 0.0) if value == DEFAULTS.get(name) else (name, value)
            if key not in refined:
                refined[key] = dense_crf(example["image"], probs, **{name: value}).argmax(0)
            ax.imshow(rgb[refined[key]], interpolation="nearest")
            ax.set_title(f"{SYMBOLS.get(name, name)} ({name}) = {value:g}", fontsize=9)
            ax.set_axis_off()
    add_class_legend(figure, CLASS_NAMES.get(k, ("label 0", "label 1")), rgb)
    return figure
