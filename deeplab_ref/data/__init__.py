"""Datasets: the synthetic VOC-like scenes (the default, no download), PASCAL VOC 2012 with SBD,
and a folder of your own images and masks.

Every dataset yields ``(image, label)``: image float32 (3, H, W) after ``transform`` (by default
normalised with the ImageNet mean and std), label int64 (H, W) with 255 = ignore; and has
``load_raw(index)`` for the uint8 (H, W, 3) RGB image and the label at the original resolution.
"""

from deeplab_ref.data.folder import FolderSegmentation
from deeplab_ref.data.synthetic import SyntheticSegmentation
from deeplab_ref.data.voc import VOCSegmentation

__all__ = ["FolderSegmentation", "SyntheticSegmentation", "VOCSegmentation"]
