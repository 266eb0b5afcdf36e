"""PASCAL VOC 2012 segmentation from a ``VOCdevkit/VOC2012`` folder on disk (DeepLab Sec. 4.1).

The layout is VOC's own::

    VOC2012/JPEGImages/<id>.jpg                    images
    VOC2012/SegmentationClass/<id>.png             labels (train, val, trainval)
    VOC2012/ImageSets/Segmentation/<split>.txt     lists of ids
    VOC2012/SegmentationClassAug/<id>.png          labels for train_aug, built from SBD by
    VOC2012/ImageSets/SegmentationAug/train_aug.txt   ``python -m deeplab_ref.data.sbd``

Labels are palette PNGs whose pixel values are class indices (0 = background, 1-20 the objects,
255 = void along boundaries and on ambiguous regions): they are read as indices, never as colours.
Nothing is downloaded: a missing folder or file raises an error that says what was expected where.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from deeplab_ref.data.transforms import IGNORE_INDEX, Transform, eval_transform

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
SPLIT_LISTS = {
    "train": "ImageSets/Segmentation/train.txt",
    "val": "ImageSets/Segmentation/val.txt",
    "trainval": "ImageSets/Segmentation/trainval.txt",
    "train_aug": "ImageSets/SegmentationAug/train_aug.txt",
}
AUG_LABEL_DIR = "SegmentationClassAug"
BUILD_COMMAND = (
    "python -m deeplab_ref.data.sbd --sbd <SBD benchmark_RELEASE/dataset> --voc <VOC2012>"
)


def voc_colormap(num_colors: int = 256) -> np.ndarray:
    """VOC's colour map, uint8 (num_colors, 3): the bits of each index spread over R, G and B,
    most significant first (index 1 is (128, 0, 0), index 255 is (224, 224, 192))."""
    index = np.arange(num_colors)
    colours = np.zeros((num_colors, 3), dtype=np.int64)
    for bit in range(8):
        for channel in range(3):
            colours[:, channel] |= ((index >> (3 * bit + channel)) & 1) << (7 - bit)
    return colours.astype(np.uint8)


def read_id_list(path: Path) -> list[str]:
    """Image ids, one per line, from a split list."""
    ids = [line.split()[0] for line in Path(path).read_text().splitlines() if line.strip()]
    if not ids:
        raise ValueError(f"split list {path} is empty")
    return ids


def read_split(root: Path, split: str) -> list[str]:
    """The ids of VOC split ``split`` (a key of ``SPLIT_LISTS``) under the VOC2012 folder."""
    path = root / SPLIT_LISTS[split]
    if not path.is_file():
        raise FileNotFoundError(f"split list {path} not found (VOC 2012's list of {split})")
    return read_id_list(path)


def read_image(path: Path) -> np.ndarray:
    """An image file as uint8 (H, W, 3) RGB. A 16-bit greyscale image is scaled to 8 bits
    (v * 255 / 65535, rounded): converting it straight to RGB would clip every value above 255."""
    try:
        with Image.open(path) as image:
            if image.mode.startswith("I"):  # "I;16", "I;16B", ...: 16 bits; "I": 32-bit ints
                return np.repeat(_sixteen_to_eight_bits(np.asarray(image), path)[..., None], 3, -1)
            if image.mode == "F":
                raise ValueError(
                    f"image file {path} holds floating-point pixels (PIL mode 'F'): save it as an "
                    "8- or 16-bit image"
                )
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise FileNotFoundError(f"image file {path} not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"image file {path} is corrupt or not an image: {error}") from error


def _sixteen_to_eight_bits(values: np.ndarray, path: Path) -> np.ndarray:
    values = values.astype(np.int64)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise ValueError(
            f"image file {path} has pixel values outside 0..65535 ({values.min()}..{values.max()})"
            ": save it as an 8- or 16-bit image"
        )
    return ((values * 255 + 32767) // 65535).astype(np.uint8)


def read_label(path: Path, num_classes: int = len(VOC_CLASSES)) -> np.ndarray:
    """A label PNG as int64 (H, W) class indices; 255 = ignore. The file must store indices (a
    palette or greyscale PNG): a colour-coded RGB label or a value outside the classes is an
    error."""
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L"):
                raise ValueError(
                    f"label file {path} has PIL mode {image.mode!r}; labels must be palette ('P') "
                    "or greyscale ('L') PNGs of class indices, not colour images"
                )
            label = np.asarray(image, dtype=np.int64)
    except FileNotFoundError:
        raise FileNotFoundError(f"label file {path} not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"label file {path} is corrupt or not an image: {error}") from error
    check_label_values(label, num_classes, f"label file {path}")
    return label


def check_label_values(label: np.ndarray, num_classes: int, name: str) -> None:
    """Raise ValueError naming ``name`` unless every value is a class index or 255."""
    bad = np.unique(label[((label >= num_classes) & (label != IGNORE_INDEX)) | (label < 0)])
    if bad.size:
        raise ValueError(
            f"{name} has values {bad[:10].tolist()} outside the classes 0..{num_classes - 1} "
            f"and the ignore value {IGNORE_INDEX}"
        )


def write_label(path: Path, label: np.ndarray) -> None:
    """Save class indices (H, W) as a palette PNG with VOC's colour map."""
    check_label_values(label, 256, f"label for {path}")
    image = Image.fromarray(np.asarray(label, dtype=np.uint8), mode="P")
    image.putpalette(voc_colormap().ravel().tolist())
    image.save(path)


def resolve_voc_root(root: str | Path) -> Path:
    """The ``VOC2012`` folder, given it or the ``VOCdevkit`` folder above it."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"VOC root {root} not found: pass the VOCdevkit/VOC2012 folder of PASCAL VOC 2012"
        )
    if not (root / "JPEGImages").is_dir() and (root / "VOC2012" / "JPEGImages").is_dir():
        root = root / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        if not (root / folder).is_dir():
            raise FileNotFoundError(
                f"VOC root {root} has no {folder}/ folder; expected VOCdevkit/VOC2012 with "
                "JPEGImages/, SegmentationClass/ and ImageSets/Segmentation/"
            )
    return root


class VOCSegmentation(Dataset):
    """PASCAL VOC 2012 segmentation, 21 classes.

    Items are ``(image, label)``: image float32 (3, H, W), normalised by ``transform`` (default:
    ImageNet mean and std, no augmentation); label int64 (H, W), 255 = ignore. ``load_raw(index)``
    gives the uint8 (H, W, 3) RGB image and the label at the original resolution.

    Args:
        root: the ``VOCdevkit/VOC2012`` folder (or ``VOCdevkit``).
        split: "train" (1,464 images), "val" (1,449), "trainval" (2,913) or "train_aug" (10,582;
            build it first with ``python -m deeplab_ref.data.sbd``).
        transform: callable ``(image uint8 (H, W, 3), label (H, W)) -> (tensor, tensor)``.
    """

    class_names = VOC_CLASSES
    num_classes = len(VOC_CLASSES)

    def __init__(self, root: str | Path, split: str = "train", transform: Transform | None = None):
        if split not in SPLIT_LISTS:
            raise ValueError(f"split must be one of {list(SPLIT_LISTS)}, got {split!r}")
        self.root = resolve_voc_root(root)
        self.split = split
        label_dir = self.root / (AUG_LABEL_DIR if split == "train_aug" else "SegmentationClass")
        list_path = self.root / SPLIT_LISTS[split]
        if split == "train_aug" and not (list_path.is_file() and label_dir.is_dir()):
            raise FileNotFoundError(
                f"train_aug needs {list_path} and {label_dir}/, built from SBD's labels: run "
                f"{BUILD_COMMAND}"
            )
        self.ids = read_split(self.root, split)
        self.image_paths = [self.root / "JPEGImages" / f"{i}.jpg" for i in self.ids]
        self.label_paths = [label_dir / f"{i}.png" for i in self.ids]
        missing = [p for p in self.image_paths + self.label_paths if not p.is_file()]
        if missing:
            shown = ", ".join(str(p) for p in missing[:3])
            raise FileNotFoundError(
                f"{len(missing)} file(s) listed in {list_path} are missing, e.g. {shown}"
            )
        self.transform = eval_transform() if transform is None else transform

    def __len__(self) -> int:
        return len(self.ids)

    def load_raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Image ``index``: uint8 (H, W, 3) RGB and int64 (H, W) label."""
        image = read_image(self.image_paths[index])
        label = read_label(self.label_paths[index], self.num_classes)
        if image.shape[:2] != label.shape:
            raise ValueError(
                f"label file {self.label_paths[index]} is {label.shape[1]}x{label.shape[0]} but "
                f"image file {self.image_paths[index]} is {image.shape[1]}x{image.shape[0]}"
            )
        return image, label

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(*self.load_raw(index))
