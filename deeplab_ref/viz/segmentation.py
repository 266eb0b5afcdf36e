"""A segmentation as files: VOC's palette PNG of the class indices and an overlay on the image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from deeplab_ref.data.voc import write_label
from deeplab_ref.viz.data import overlay


def save_segmentation(image: np.ndarray, labels: np.ndarray, stem: str | Path) -> list[Path]:
    """Write ``<stem>_labels.png`` (class indices as a palette PNG, VOC's format) and
    ``<stem>_overlay.png`` (the coloured labels over the image); returns their paths."""
    stem = Path(stem)
    labels_path = stem.with_name(stem.name + "_labels.png")
    overlay_path = stem.with_name(stem.name + "_overlay.png")
    write_label(labels_path, np.asarray(labels))
    Image.fromarray(overlay(image, labels)).save(overlay_path)
    return [labels_path, overlay_path]
