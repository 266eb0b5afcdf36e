"""Which pixels are near an object boundary: the trimap band of DeepLab Sec. 4.1 (Fig. 10).

The paper scores segmentations within a narrow band along the object boundaries (the "trimap" of
Kohli et al. 2009) and plots the mean IoU inside it against the band's width (Fig. 10): the CRF's
gain, like ResNet-101's over VGG-16, sits at the boundaries. Here a pixel is in the band of width
w when a pixel with another label lies within w pixels of it (Euclidean distance), void (255)
counting as a label of its own, so the band reaches about w pixels into each side of a boundary
and also follows the edges of VOC's void outlines.

This is the one definition of "near a boundary" that evaluation (``evaluate.TrimapMeter``) and
the figures (``viz.crf``) use. The synthetic data's void band is a different thing, part of the
data as VOC's annotators drew theirs (``data.synthetic.ignore_boundaries``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage


def distance_to_other_label(labels: np.ndarray) -> np.ndarray:
    """For each pixel of integer labels (H, W), the Euclidean distance (pixels) to the nearest
    pixel with another label, 255 counting as a label; ``inf`` when the image has one label."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer (H, W), got {labels.dtype} {labels.shape}")
    distance = np.full(labels.shape, np.inf)
    values = np.unique(labels)
    if values.size > 1:
        for value in values:
            region = labels == value
            # Within a region, the distance to its nearest outside pixel: another label.
            distance[region] = ndimage.distance_transform_edt(region)[region]
    return distance


def boundary_bands(labels: np.ndarray, widths: Sequence[float]) -> np.ndarray:
    """The band of each width for labels (H, W): bool (len(widths), H, W), True where a pixel
    with another label lies within that many pixels (one distance transform for all widths)."""
    distance = distance_to_other_label(labels)
    return distance[None] <= np.asarray(widths, dtype=np.float64)[:, None, None]


def boundary_band(labels: np.ndarray, width: float) -> np.ndarray:
    """Bool (H, W): the pixels of labels (H, W) within ``width`` pixels of another label."""
    return boundary_bands(labels, [width])[0]
