"""Figures for fields of view (DeepLab Sec. 3.1, Fig. 3; Sec. 4.1, Table 1): sparse versus dense
feature extraction, the field of view as the rate grows, gridding, and the effective field."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import nn

from deeplab_ref.atrous import atrous_conv2d
from deeplab_ref.models import HEAD_RATES, VGG16
from deeplab_ref.receptive_field import (
    atrous_footprint,
    effective_receptive_field,
    layer_stack,
    receptive_field,
    valid_taps,
)
from deeplab_ref.viz.aspp import sample_photo


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
    shown on a crop (rows, columns) around the face so that the detail is visible."""
    crop = crop or (slice(40, 200), slice(80, 240))
    image = sample_photo(size).mean(axis=2)
    kernel = vertical_gaussian_derivative()
    sparse, dense = sparse_and_dense(image, kernel)
    figure = Figure(figsize=(12, 4.3))
    axes = figure.subplots(1, 3)
    limit = np.abs(dense[crop]).max()
    panels = (
        (image, "gray", "input (grey levels)"),
        (sparse, "RdBu", "sparse: downsample by 2, convolve,\nupsample (1/4 of the responses)"),
        (dense, "RdBu", "dense: atrous convolution, rate 2\n(every response)"),
    )
    for ax, (values, cmap, title) in zip(axes, panels, strict=True):
        color_range = {} if cmap == "gray" else {"vmin": -limit, "vmax": limit}
        ax.imshow(values[crop], cmap=cmap, **color_range)
        ax.set_title(title)
        ax.set_axis_off()
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
    for label, fov in field_of_view_by_rate(rates).items():
        left.plot(rates, fov, label=label)
    left.axhline(321, color="0.5", linestyle=":", label="a 321x321 training crop")
    left.set_xlabel("atrous rate r")
    left.set_ylabel("field of view (input pixels)")
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


def gridding_figure(stacks: tuple[tuple[int, ...], ...] = ((2, 2), (2, 4, 8), (1, 2, 5))) -> Figure:
    """Which input pixels one output of stacked 3x3 atrous layers reads (path counts)."""
    figure = Figure(figsize=(4 * len(stacks), 4.3))
    for ax, rates in zip(figure.subplots(1, len(stacks)), stacks, strict=True):
        footprint = atrous_footprint(list(rates))
        ax.imshow(np.where(footprint > 0, np.log1p(footprint), np.nan), cmap="viridis")
        ax.set_facecolor("0.92")
        ax.set_xticks([])
        ax.set_yticks([])
        used = int((footprint > 0).sum())
        ax.set_title(f"rates {list(rates)}: {used} of {footprint.size} pixels read")
    figure.suptitle("Gridding: stacked atrous layers with a common factor skip pixels")
    return figure


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


def effective_field_figure(rates: tuple[int, ...] = (1, 2, 4), size: int = 65) -> Figure:
    """Effective receptive fields (gradient maps) of ``small_atrous_network`` at several rates,
    the theoretical field drawn as a square."""
    figure = Figure(figsize=(4 * len(rates), 4.3))
    for ax, rate in zip(figure.subplots(1, len(rates)), rates, strict=True):
        net = small_atrous_network(rate)
        erf = effective_receptive_field(net, (1, size, size), n_samples=4)
        field = receptive_field(net, (1, size, size))
        (top, bottom), (left, right) = field.input_region(size // 2, size // 2)
        ax.imshow(erf / erf.max(), cmap="magma")
        ax.add_patch(
            Rectangle(
                (left - 0.5, top - 0.5), right - left, bottom - top, fill=False, edgecolor="c"
            )
        )
        ax.set_axis_off()
        ax.set_title(f"rate {rate}: theoretical field {field.field_of_view[0]} px")
    figure.suptitle(
        "Effective receptive field (|gradient| of the centre output) in the theoretical one"
    )
    return figure
