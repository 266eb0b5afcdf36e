"""Training augmentation and input normalisation for DeepLab-v2 (Sec. 4.1.2, and the released
configurations' data layers).

Whose each step is: random scaling of the inputs "from 0.5 to 1.5" is the paper's, for ResNet-101
only ("Aug" in Table 4); the released ResNet-101 configuration draws the factor from the set
{0.5, 0.75, 1, 1.25, 1.5} (``RandomScaleChoice``) and the released VGG-16 one does not scale. The
321x321 random crop, padded at the bottom and right with the mean colour (image) and 255 (label,
ignored by the loss), and the random left-right flips are the released configurations' (the
paper's text describes neither). Labels are always resampled with nearest neighbour, so no new
class values can appear. Images are normalised as the backbone's ImageNet weights expect:
torchvision's mean and std (RGB, [0, 1]) or Caffe's BGR mean subtraction ([0, 255]) for weights
converted from the original release. Every transform takes and returns a pair ``(image, label)``.

Random draws use torch's generator (pass ``generator`` to fix them), so each DataLoader worker
gets its own stream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

IGNORE_INDEX = 255
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_BGR_MEAN = (104.008, 116.669, 122.675)
NORMALIZATIONS = ("imagenet", "caffe")

Transform = Callable[[Any, Any], tuple[Any, Any]]
TensorPair = tuple[torch.Tensor, torch.Tensor]


def to_tensor(image: np.ndarray, label: np.ndarray) -> TensorPair:
    """uint8 (H, W, 3) RGB and integer (H, W) arrays to float32 (3, H, W) in [0, 255] and int64
    (H, W) tensors."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"image must be a uint8 (H, W, 3) array, got {_describe(image)}")
    if image.shape[2] != 3:
        raise ValueError(f"image must have 3 channels (H, W, 3), got shape {image.shape}")
    label = np.asarray(label)
    if label.shape != image.shape[:2] or not np.issubdtype(label.dtype, np.integer):
        raise ValueError(
            f"label must be an integer (H, W) array matching the image's {image.shape[:2]}, "
            f"got {_describe(label)}"
        )
    image_tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()
    return image_tensor, torch.from_numpy(label.astype(np.int64))


def _describe(array: Any) -> str:
    if hasattr(array, "dtype") and hasattr(array, "shape"):
        return f"{array.dtype} array of shape {tuple(array.shape)}"
    return type(array).__name__


class Normalize:
    """Image in [0, 255] RGB (3, H, W) to the backbone's input: ``"imagenet"`` gives
    (x / 255 - mean) / std in RGB; ``"caffe"`` gives x - mean in BGR order, [0, 255] units.
    Either way the dataset's mean colour becomes 0, which is what ``RandomCrop`` pads with."""

    def __init__(self, style: str = "imagenet") -> None:
        if style not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {style!r}")
        self.style = style
        mean = IMAGENET_MEAN if style == "imagenet" else CAFFE_BGR_MEAN
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def __call__(self, image: torch.Tensor, label: torch.Tensor) -> TensorPair:
        if self.style == "imagenet":
            return (image / 255 - self.mean) / self.std, label
        return image.flip(0) - self.mean, label


class RandomScale:
    """Resize by a factor drawn uniformly from ``scale_range``: image bilinear, label nearest."""

    def __init__(
        self,
        scale_range: tuple[float, float] = (0.5, 1.5),
        generator: torch.Generator | None = None,
    ) -> None:
        if not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(
                f"scale_range must be (low, high) with 0 < low <= high, got {scale_range}"
            )
        self.scale_range = scale_range
        self.generator = generator

    def __call__(self, image: torch.Tensor, label: torch.Tensor) -> TensorPair:
        low, high = self.scale_range
        scale = low + (high - low) * torch.rand((), generator=self.generator).item()
        height, width = label.shape
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        return resize_pair(image, label, size)


class RandomScaleChoice:
    """Resize by a factor drawn uniformly from the finite set ``scales`` (the released ResNet-101
    configuration's {0.5, 0.75, 1, 1.25, 1.5}): image bilinear, label nearest."""

    def __init__(self, scales: Sequence[float], generator: torch.Generator | None = None) -> None:
        scales = tuple(float(s) for s in scales)
        if not scales or any(not s > 0 for s in scales):
            raise ValueError(f"scales must be one or more positive factors, got {scales}")
        self.scales = scales
        self.generator = generator

    def __call__(self, image: torch.Tensor, label: torch.Tensor) -> TensorPair:
        scale = self.scales[int(torch.randint(len(self.scales), (), generator=self.generator))]
        height, width = label.shape
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        return resize_pair(image, label, size)


def resize_pair(image: torch.Tensor, label: torch.Tensor, size: tuple[int, int]) -> TensorPair:
    """Resize to ``size`` (height, width): image (3, H, W) bilinearly, label (H, W) nearest."""
    image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]
    # "nearest-exact" samples at pixel centres, as bilinear with align_corners=False does.
    label = F.interpolate(label[None, None].float(), size=size, mode="nearest-exact")[0, 0]
    return image, label.long()


class RandomCrop:
    """A random ``crop_size`` crop; smaller inputs are first padded at the bottom and right with
    ``fill`` (image; 0 is the mean colour after ``Normalize``) and ``ignore_index`` (label)."""

    def __init__(
        self,
        crop_size: int | tuple[int, int],
        fill: float = 0.0,
        ignore_index: int = IGNORE_INDEX,
        generator: torch.Generator | None = None,
    ) -> None:
        crop = (crop_size, crop_size) if isinstance(crop_size, int) else tuple(crop_size)
        if len(crop) != 2 or min(crop) < 1:
            raise ValueError(
                f"crop_size must be a positive int or (height, width), got {crop_size}"
            )
        self.crop_size = crop
        self.fill = fill
        self.ignore_index = ignore_index
        self.generator = generator

    def __call__(self, image: torch.Tensor, label: torch.Tensor) -> TensorPair:
        crop_h, crop_w = self.crop_size
        height, width = label.shape
        pad_h, pad_w = max(crop_h - height, 0), max(crop_w - width, 0)
        if pad_h or pad_w:
            image = F.pad(image, (0, pad_w, 0, pad_h), value=self.fill)
            label = F.pad(label, (0, pad_w, 0, pad_h), value=self.ignore_index)
        height, width = label.shape
        top = int(torch.randint(height - crop_h + 1, (), generator=self.generator))
        left = int(torch.randint(width - crop_w + 1, (), generator=self.generator))
        window = (slice(top, top + crop_h), slice(left, left + crop_w))
        return image[(slice(None), *window)], label[window]


class RandomHorizontalFlip:
    """Mirror image and label left-right with probability ``p``."""

    def __init__(self, p: float = 0.5, generator: torch.Generator | None = None) -> None:
        self.p = p
        self.generator = generator

    def __call__(self, image: torch.Tensor, label: torch.Tensor) -> TensorPair:
        if torch.rand((), generator=self.generator).item() < self.p:
            return image.flip(-1), label.flip(-1)
        return image, label


class Compose:
    """Apply pair transforms in order."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, image: Any, label: Any) -> tuple[Any, Any]:
        for transform in self.transforms:
            image, label = transform(image, label)
        return image, label


def eval_transform(normalization: str = "imagenet") -> Compose:
    """Evaluation: the whole image at its original resolution, only normalised."""
    return Compose([to_tensor, Normalize(normalization)])


def train_transform(
    crop_size: int | tuple[int, int] = 321,
    scale_range: tuple[float, float] | None = (0.5, 1.5),
    normalization: str = "imagenet",
    generator: torch.Generator | None = None,
    scales: Sequence[float] | None = None,
) -> Compose:
    """Training augmentation: normalise, random scale, random crop (padded with the mean and
    255), random left-right flip.

    The scale factor of each sample is drawn from the set ``scales`` when it is given (the
    released ResNet-101 configuration), else from the interval ``scale_range`` (the paper's
    0.5-1.5); with both None the images keep their size (the released VGG-16 configuration).
    """
    if scales is not None:
        scaling = [RandomScaleChoice(scales, generator)]
    elif scale_range is not None:
        scaling = [RandomScale(tuple(scale_range), generator)]
    else:
        scaling = []
    return Compose(
        [
            to_tensor,
            Normalize(normalization),
            *scaling,
            RandomCrop(crop_size, generator=generator),
            RandomHorizontalFlip(generator=generator),
        ]
    )
