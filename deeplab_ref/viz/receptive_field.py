"""Figures for fields of view (DeepLab Sec. 3.1, Fig. 3; Sec. 4.1, Table 1): sparse versus dense
feature extraction, the field of view as the rate grows, gridding (with a widget for a list of
rates) and the effective field. Notebook 01's ``viz.atrous`` draws the taps of one filter on a
small map."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator
from torch import nn

from deeplab_ref.atrous import atrous_conv2d
from deeplab_ref.models import HEAD_RATES, VGG16
from deeplab_ref.receptive_field import (
    atrous_footprint,
    effective_receptive_field,
    hdc_max_gap,
    layer_stack,
    receptive_field,
    valid_taps,
)
from deeplab_ref.viz.aspp import sample_photo
from deeplab_ref.viz.widgets import live_figure


def vertical_gaussian_derivative(size: int = 5, sigma: float = 1.0) -> np.ndarray:
    """The paper's Fig. 3 filter: d/dy of a 2-D Gaussian, (size, size), responding to
    horizontal edges."""
    t = np.arange(size) - (size - 1) / 2
    gaussian = np.exp(-(t**2) / (2 * sigma**2))
    return np.outer(-t * gaussian, gaussian) / (sigma**2 * gaussian.sum() ** 2)


def upsample_linear(a: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Linear interpolation of a (h, w) map sampled at every ``factor``-th pixel back to
    ``shape``; the samples are kept exactly, positions past the last one repeat it."""
    rows = np.arange(shape[0]) / factor
    cols = np.arange(shape[1]) / factor
    a = np.stack([np.interp(rows, np.arange(a.shape[0]), column) for column in a.T], axis=1)
    return np.stack([np.interp(cols, np.arange(a.shape[1]), row) for row in a])


def sparse_and_dense(
    image: np.ndarray, kernel: np.ndarray, rate: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Fig. 3: filter a (H, W) image two ways with the same (k, k) kernel (k odd).

    Sparse: downsample by ``rate``, convolve, upsample linearly. Dense: atrous convolution with
    ``rate`` on the full image. Both (H, W), "same" padding; they agree on the stride-``rate``
    grid and the dense one also has every pixel in between.
    """
    image = np.asarray(image, dtype=np.float64)
    k = kernel.shape[0]
    low = atrous_conv2d(image[None, None, ::rate, ::rate], kernel[None, None], padding=k // 2)
    dense = atrous_conv2d(image[None, None], kernel[None, None], rate=rate, padding=rate * (k // 2))
    return upsample_linear(low[0, 0], rate, image.shape), dense[0, 0]


def sparse_vs_dense_figure(size: int = 321, crop: tuple[slice, slice] | None = None) -> Figure:
    """Fig. 3 on a photo: sparse (downsample, convolve, upsample) versus dense (atrous) features,
    shown on a crop (rows, columns) around the face so that the detail is visible; a colour bar
    for the grey levels and one for the two response maps, which share a scale."""
    crop = crop or (slice(40, 200), slice(80, 240))
    image = sample_photo(size).mean(axis=2)
    kernel = vertical_gaussian_derivative()
    sparse, dense = sparse_and_dense(image, kernel)
    figure = Figure(figsize=(13, 4.6), layout="constrained")
    axes = figure.subplots(1, 3)
    limit = np.abs(dense[crop]).max()
    panels = (
        (image, "gray", "input (grey levels)"),
        (sparse, "RdBu", "sparse: downsample by 2, convolve,\nupsample (1/4 of the responses)"),
        (dense, "RdBu", "dense: atrous convolution, rate 2\n(every response)"),
    )
    images = []
    for ax, (values, cmap, title) in zip(axes, panels, strict=True):
        color_range = (
            {"vmin": 0, "vmax": 255} if cmap == "gray" else {"vmin": -limit, "vmax": limit}
        )
        images.append(ax.imshow(values[crop], cmap=cmap, **color_range))
        ax.set_title(title)
        ax.set_axis_off()
    figure.colorbar(images[0], ax=axes[0], shrink=0.8, label="grey level")
    figure.colorbar(images[2], ax=list(axes[1:]), shrink=0.8, label="filter response")
    figure.suptitle(
        f"The same {kernel.shape[0]}x{kernel.shape[1]} vertical Gaussian-derivative filter and field "
        "of view (DeepLab Fig. 3)"
    )
    return figure


def field_of_view_by_rate(rates: np.ndarray, image_size: int = 321) -> dict[str, np.ndarray]:
    """Fields of view (pixels) as the atrous rate grows: one 3x3 layer, three stacked 3x3 layers at
    that rate, and the whole DeepLab-LargeFOV network (VGG-16, output stride 8) with fc6 at it."""
    with torch.device("meta"):
        backbone = receptive_field(VGG16(output_stride=8), (3, image_size, image_size))

    def stack(depth: int, rate: int) -> int:
        return layer_stack([{"kernel": 3, "rate": rate}] * depth).field_of_view[0]

    return {
        "one 3x3 layer": np.array([stack(1, r) for r in rates]),
        "three 3x3 layers": np.array([stack(3, r) for r in rates]),
        "DeepLab-VGG-16, fc6 at this rate": np.array(
            [backbone.then(3, padding=r, rate=r).field_of_view[0] for r in rates]
        ),
    }


def field_of_view_vs_rate_figure() -> Figure:
    """Left: field of view against the rate. Right: the share of a 3x3 filter's nine taps that
    fall inside 41x41 and 65x65 feature maps (321 and 513 crops at output stride 8)."""
    rates = np.arange(1, 41)
    figure = Figure(figsize=(12, 4.3))
    left, right = figure.subplots(1, 2)
    units = ("layer-input px", "layer-input px", "image px")
    for (label, fov), unit in zip(field_of_view_by_rate(rates).items(), units, strict=True):
        left.plot(rates, fov, label=f"{label} ({unit})")
    left.axhline(321, color="0.5", linestyle=":", label="a 321x321 training crop (image px)")
    left.set_xlabel("atrous rate r")
    left.set_ylabel("field of view (pixels of each curve's input)")
    left.legend(fontsize=8)
    left.set_title("The field of view grows linearly with the rate")
    for size in (41, 65):
        fraction = [valid_taps(int(r), size).mean() / 9 for r in rates]
        right.plot(rates, fraction, label=f"{size}x{size} feature map")
    for rate in HEAD_RATES["aspp-l"]:
        right.axvline(rate, color="0.85", linewidth=1)
    right.set_xlabel("atrous rate r (grey: ASPP-L's rates)")
    right.set_ylabel("share of the nine taps inside the map")
    right.set_ylim(0, 1.02)
    right.legend(fontsize=8)
    right.set_title("...until the taps fall off the feature map")
    return figure


HOLE_COLOUR = "crimson"


def _draw_footprint(ax: Any, rates: list[int], norm: LogNorm) -> Any:
    """Path counts of ``atrous_footprint(rates)`` on a log colour scale, holes in HOLE_COLOUR."""
    footprint = atrous_footprint(list(rates))
    cmap = colormaps["viridis"].with_extremes(bad=HOLE_COLOUR)
    image = ax.imshow(np.ma.masked_equal(footprint, 0), cmap=cmap, norm=norm)
    ax.set_xticks([])
    ax.set_yticks([])
    return image


def _path_colorbar(figure: Figure, image: Any, axes: Any, norm: LogNorm) -> None:
    ticks = [2**k for k in range(int(np.log2(norm.vmax)) + 1)]
    bar = figure.colorbar(
        image, ax=axes, ticks=ticks, format="%d", label="paths from the pixel to the output"
    )
    bar.minorticks_off()


def footprint_summary(rates: list[int]) -> dict[str, Any]:
    """What a stack of 3x3 layers at ``rates`` reads: its span, the pixels read and the holes
    (``atrous_footprint``), and Wang et al.'s M_2 for the sorted rates (None for one layer)
    with their condition (smallest rate 1 and M_2 <= 3)."""
    footprint = atrous_footprint(list(rates))
    ordered = sorted(rates)
    gap = hdc_max_gap(ordered) if len(ordered) > 1 else None
    return {
        "span": footprint.shape[0],
        "read": int((footprint > 0).sum()),
        "holes": int((footprint == 0).sum()),
        "max_gap": gap,
        "hdc": ordered[0] == 1 and (gap is None or gap <= 3),
    }


def _footprint_title(rates: list[int]) -> str:
    summary = footprint_summary(rates)
    gap = "" if summary["max_gap"] is None else f"M2 = {summary['max_gap']}, "
    side = summary["span"]
    return (
        f"rates {list(rates)}\n{gap}smallest rate {min(rates)}: "
        f"{summary['holes']} holes in {side}x{side}"
    )


def gridding_figure(
    stacks: tuple[tuple[int, ...], ...] = ((2, 2), (3, 4), (1, 2, 5), (1, 2, 4, 8)),
) -> Figure:
    """Which input pixels one output of stacked 3x3 atrous layers reads: the number of paths
    from each pixel to the output (colour, log scale), pixels never read in red."""
    figure = Figure(figsize=(3.3 * len(stacks) + 1, 4.2), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(stacks)))
    largest = max(int(atrous_footprint(list(rates)).max()) for rates in stacks)
    norm = LogNorm(vmin=1, vmax=max(largest, 2))
    for ax, rates in zip(axes, stacks, strict=True):
        image = _draw_footprint(ax, list(rates), norm)
        ax.set_title(_footprint_title(list(rates)), fontsize=10)
    _path_colorbar(figure, image, list(axes), norm)
    figure.legend(
        handles=[Patch(color=HOLE_COLOUR, label="never read (a hole)")],
        loc="lower center",
        frameon=False,
    )
    figure.suptitle(
        "Gridding: the pixels one output of stacked 3x3 atrous layers reads (M2: Wang et al.'s "
        "maximum gap, sorted rates)"
    )
    return figure


def footprint_figure(rates: list[int]) -> Figure:
    """One stack of 3x3 atrous layers at ``rates``: left, the pixels read (path counts, holes in
    red); right, the path counts along the centre row."""
    rates = list(rates)
    footprint = atrous_footprint(rates)
    summary = footprint_summary(rates)
    figure = Figure(figsize=(10, 4.2), layout="constrained")
    left, right = figure.subplots(1, 2, width_ratios=(1, 1.4))
    norm = LogNorm(vmin=1, vmax=max(int(footprint.max()), 2))
    image = _draw_footprint(left, rates, norm)
    left.set_title(_footprint_title(rates), fontsize=10)
    _path_colorbar(figure, image, left, norm)
    row = footprint[footprint.shape[0] // 2]
    offsets = np.arange(row.size) - row.size // 2
    right.bar(offsets, row, width=0.9, color="tab:green", label="pixel read")
    holes = offsets[row == 0]
    right.plot(holes, np.zeros_like(holes), "x", color=HOLE_COLOUR, label="never read (a hole)")
    right.set_xlabel("input pixel, relative to the output's centre")
    right.set_ylabel("paths along the centre row")
    right.set_ylim(0, row.max() * 1.3)
    right.yaxis.set_major_locator(MaxNLocator(integer=True))
    right.legend(fontsize=8, loc="upper center", ncol=2)
    verdict = "reads every pixel" if summary["holes"] == 0 else "leaves holes"
    condition = "holds" if summary["hdc"] else "fails"
    right.set_title(f"{verdict}; smallest rate 1 and M2 <= 3 {condition}", fontsize=10)
    return figure


def parse_rates(text: str, most_layers: int = 8, largest_rate: int = 64) -> list[int]:
    """Atrous rates from text such as "1, 2, 5" or "1 2 5": positive ints, at most
    ``most_layers`` of them, each at most ``largest_rate``; ValueError says what is wrong."""
    pieces = text.replace(",", " ").split()
    if not pieces:
        raise ValueError("type one or more atrous rates, e.g. 1, 2, 5")
    if not all(p.isdigit() and int(p) >= 1 for p in pieces):
        raise ValueError(f"rates must be positive whole numbers, got {text!r}")
    rates = [int(p) for p in pieces]
    if len(rates) > most_layers or max(rates) > largest_rate:
        raise ValueError(f"at most {most_layers} rates, each at most {largest_rate}, please")
    return rates


def rates_widget(text: str = "1, 2, 5") -> Any:
    """A text box for a list of rates above ``footprint_figure``, redrawn on Enter (or the reason
    the text is not a list of rates), through ``viz.widgets.live_figure``."""
    import ipywidgets

    box = ipywidgets.Text(
        value=text,
        description="rates",
        continuous_update=False,
        placeholder="e.g. 1, 2, 5",
        layout=ipywidgets.Layout(width="360px"),
    )
    return live_figure(lambda rates: footprint_figure(parse_rates(rates)), {"rates": box})


def small_atrous_network(rate: int, depth: int = 4, channels: int = 8, seed: int = 0) -> nn.Module:
    """A random ``depth``-layer 3x3 ReLU network at one atrous rate, for effective fields."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for index in range(depth):
        layers += [
            nn.Conv2d(1 if index == 0 else channels, channels, 3, padding=rate, dilation=rate)
        ]
        layers += [nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def half_mass_radius(erf: np.ndarray, share: float = 0.5) -> int:
    """The smallest r such that the (2r+1) x (2r+1) square around the centre of ``erf`` holds
    at least ``share`` of its total mass (rows and columns of odd length, centred)."""
    centre = erf.shape[0] // 2
    total = erf.sum()
    for radius in range(centre + 1):
        window = erf[centre - radius : centre + radius + 1, centre - radius : centre + radius + 1]
        if window.sum() >= share * total:
            return radius
    return centre


def effective_fields(
    rates: tuple[int, ...] = (1, 2, 4), size: int = 65, n_samples: int = 4, n_networks: int = 8
) -> dict[int, dict[str, Any]]:
    """For ``small_atrous_network(rate, seed=s)``, s = 0 .. n_networks - 1, on a size x size
    input, per rate: the effective field ``erf`` (|gradient| of the centre output, each
    network's map normalised to sum 1, then averaged; (size, size)), the theoretical ``field``
    of that output, ``read`` (the share of the field's pixels with a nonzero gradient) and
    ``half_mass_radius`` (the half-side of the smallest centred square holding 50% of the
    gradient mass, in input pixels; the theoretical field's half-side is R // 2)."""
    results = {}
    for rate in rates:
        maps = []
        for seed in range(n_networks):
            net = small_atrous_network(rate, seed=seed)
            erf = effective_receptive_field(net, (1, size, size), n_samples=n_samples, seed=seed)
            maps.append(erf / erf.sum())
        erf = np.mean(maps, axis=0)
        field = receptive_field(net, (1, size, size))
        (top, bottom), (left, right) = field.input_region(size // 2, size // 2)
        results[rate] = {
            "erf": erf,
            "field": field,
            "read": float((erf[top:bottom, left:right] > 0).mean()),
            "half_mass_radius": half_mass_radius(erf),
        }
    return results


def effective_field_figure(
    rates: tuple[int, ...] = (1, 2, 4), size: int = 65, fields: dict | None = None
) -> Figure:
    """Effective receptive fields (gradient maps) of ``small_atrous_network`` at several rates,
    the theoretical field drawn as a square; ``fields`` from ``effective_fields`` (computed
    when None)."""
    fields = effective_fields(rates, size) if fields is None else fields
    figure = Figure(figsize=(4 * len(fields) + 1, 4.3), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(fields)))
    for ax, (rate, result) in zip(axes, fields.items(), strict=True):
        erf, field = result["erf"], result["field"]
        centre = erf.shape[0] // 2
        (top, bottom), (left, right) = field.input_region(centre, centre)
        image = ax.imshow(erf / erf.max(), cmap="magma", vmin=0, vmax=1)
        ax.add_patch(
            Rectangle(
                (left - 0.5, top - 0.5), right - left, bottom - top, fill=False, edgecolor="c"
            )
        )
        radius = result.get("half_mass_radius")
        if radius is not None:
            ax.add_patch(
                Rectangle(
                    (centre - radius - 0.5, centre - radius - 0.5),
                    2 * radius + 1,
                    2 * radius + 1,
                    fill=False,
                    edgecolor="w",
                    linestyle="--",
                )
            )
        ax.set_xlim(left - 1.5, right + 0.5)
        ax.set_ylim(bottom + 0.5, top - 1.5)
        ax.set_axis_off()
        half = "" if radius is None else f"\n50% of the gradient within {2 * radius + 1} px (white)"
        ax.set_title(f"rate {rate}: theoretical field {field.field_of_view[0]} px (cyan){half}")
    figure.colorbar(image, ax=list(axes), label="|gradient|, relative to its maximum", shrink=0.85)
    figure.suptitle(
        "Effective receptive field (|gradient| of the centre output) in the theoretical one"
    )
    return figure
