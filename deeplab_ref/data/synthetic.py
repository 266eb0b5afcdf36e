"""A synthetic, VOC-like segmentation dataset that needs DeepLab's ideas and no download.

Each image is a cluttered, textured background with a few objects painted over it, largest first so
that smaller objects occlude larger ones. An object's class is a (shape, texture) pair, and colours
are drawn at random per object, so colour never names the class: small objects are told apart by
their outline (a few texture periods are all they show) and a pixel deep inside a large object by
its texture or by a field of view that reaches the outline (atrous convolution and ASPP, DeepLab
Sec. 3.1-3.2). Object sizes are log-uniform over an 8x range, 10 to 80 pixels across in a 96-pixel
image (multi-scale inputs, Sec. 3.2). As in PASCAL VOC's annotations, a thin band along every
object boundary is labelled 255 ("void", ignored); the image keeps sharp edges there, which the
fully connected CRF (Sec. 3.3) aligns to.

Images are generated on the fly from ``numpy.random.SeedSequence([seed, split, index])``: the same
(seed, split, index) gives the same image on every machine, and train and val never share a stream.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset

from deeplab_ref.data.transforms import IGNORE_INDEX, Transform, eval_transform

SHAPES = ("disc", "square", "triangle", "cross")
TEXTURES = ("striped", "checked", "dotted", "plain")
# An object class is a (shape, texture) pair. "distinct": each class has its own shape and its own
# texture, so either cue names it once the network sees enough of the object (learnable by a
# small network on a CPU in minutes). "crossed": three shapes times two textures, so every class
# shares its texture with two others and its shape with one, and a pixel deep inside a large
# object needs a field of view reaching the object's outline (harder; shows what ASPP buys).
CLASS_SETS = {
    "distinct": (
        ("disc", "striped"),
        ("square", "checked"),
        ("triangle", "dotted"),
        ("cross", "plain"),
    ),
    "crossed": tuple((s, t) for s in SHAPES[:3] for t in TEXTURES[:2]),
}
SPLITS = {"train": 0, "val": 1}
DEFAULT_LENGTH = {"train": 2000, "val": 200}


def class_names(class_set: str) -> tuple[str, ...]:
    """Names of a class set's classes, background first: e.g. "striped disc"."""
    if class_set not in CLASS_SETS:
        raise ValueError(f"class_set must be one of {list(CLASS_SETS)}, got {class_set!r}")
    return ("background",) + tuple(f"{texture} {shape}" for shape, texture in CLASS_SETS[class_set])


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray, size: float) -> np.ndarray:
    """Pixels inside ``shape`` of the given size, all with the area of a disc of diameter
    ``size`` (pixels). ``u``, ``v``: pixel coordinates relative to the centre, already rotated."""
    if shape == "disc":
        return u * u + v * v <= (size / 2) ** 2
    if shape == "square":
        half_side = np.sqrt(np.pi) / 4 * size
        return np.maximum(np.abs(u), np.abs(v)) <= half_side
    if shape == "triangle":
        # An equilateral triangle is three half-planes at distance inradius from the centre.
        inradius = np.sqrt(np.pi / (12 * np.sqrt(3))) * size
        inside = np.ones(np.broadcast(u, v).shape, dtype=bool)
        for angle in np.pi / 2 + np.arange(3) * 2 * np.pi / 3:
            inside &= u * np.cos(angle) + v * np.sin(angle) <= inradius
        return inside
    if shape == "cross":
        # Two bars of length L and width L / 3: area 5 L^2 / 9.
        half_length = np.sqrt(9 * np.pi / 20) * size / 2
        long_u, long_v = np.abs(u) <= half_length, np.abs(v) <= half_length
        thin_u, thin_v = np.abs(u) <= half_length / 3, np.abs(v) <= half_length / 3
        return (long_u & thin_v) | (thin_u & long_v)
    raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")


def texture_pattern(texture: str, u: np.ndarray, v: np.ndarray, period: float) -> np.ndarray:
    """0/1 pattern in object coordinates, ``period`` pixels: stripes across ``u``, checks of side
    period / 2, dots of diameter 0.6 period on a square grid, or plain (all 0)."""
    if texture == "striped":
        return np.floor(2 * u / period).astype(np.int64) % 2
    if texture == "checked":
        return (np.floor(2 * u / period) + np.floor(2 * v / period)).astype(np.int64) % 2
    if texture == "dotted":
        du, dv = u / period % 1 - 0.5, v / period % 1 - 0.5
        return (du * du + dv * dv <= 0.3**2).astype(np.int64)
    if texture == "plain":
        return np.zeros(np.broadcast(u, v).shape, dtype=np.int64)
    raise ValueError(f"texture must be one of {TEXTURES}, got {texture!r}")


def ignore_boundaries(
    label: np.ndarray, radius: int, ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """The data's own void band: set to ``ignore_index`` every pixel with a different label
    within ``radius`` pixels (chessboard distance: a (2 radius + 1)-pixel square window), i.e. a
    band 2 * radius pixels wide along each boundary, as VOC's annotators draw one.

    This is part of the data, not the evaluation's trimap band (``deeplab_ref.boundaries``,
    Euclidean distance): with that metric a radius-1 band would leave out the diagonal neighbours,
    about 3 in 10 of the void pixels, and so change every scene's label and the models trained on
    them.
    """
    if radius <= 0:
        return label.copy()
    window = 2 * radius + 1
    mixed = ndimage.maximum_filter(label, window, mode="nearest") != ndimage.minimum_filter(
        label, window, mode="nearest"
    )
    return np.where(mixed, ignore_index, label)


def _bilinear_weights(source: int, target: int) -> np.ndarray:
    """(target, source) matrix that upsamples a 1-D signal linearly, pixel centres aligned."""
    position = np.clip((np.arange(target) + 0.5) * source / target - 0.5, 0, source - 1)
    return np.stack([np.interp(position, np.arange(source), row) for row in np.eye(source)], 1)


def _random_colour_pair(rng: np.random.Generator, min_distance: float = 90.0) -> np.ndarray:
    """Two RGB colours (2, 3) far enough apart for the texture to show."""
    while True:
        pair = rng.uniform(0, 255, size=(2, 3))
        if np.linalg.norm(pair[0] - pair[1]) >= min_distance:
            return pair


def render_scene(
    rng: np.random.Generator,
    classes: tuple[tuple[str, str], ...] = CLASS_SETS["distinct"],
    image_size: int = 96,
    object_size: tuple[float, float] = (10.0, 80.0),
    num_objects: tuple[int, int] = (2, 5),
    texture_period: tuple[float, float] = (6.0, 10.0),
    ignore_radius: int = 1,
    noise_std: float = 6.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one scene of objects of ``classes`` ((shape, texture) pairs). Returns the image, uint8
    (H, W, 3) RGB, and the label, int64 (H, W): 0 background, k for ``classes[k - 1]``, 255 on
    the void band. Sizes and periods in pixels."""
    size = image_size
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)

    # Background: a smooth colour field (a 4x4 grid of random colours, bilinearly upsampled) ...
    coarse = rng.uniform(30, 225, size=(4, 4, 3))
    upsample = _bilinear_weights(4, size)
    image = (upsample @ coarse.transpose(2, 0, 1) @ upsample.T).transpose(1, 2, 0)
    # ... with clutter: thin random line segments of random colours.
    for _ in range(rng.integers(3, 8)):
        (x0, y0), (x1, y1) = rng.uniform(0, size, size=(2, 2))
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy + 1e-9), 0, 1)
        near = np.hypot(x - x0 - t * dx, y - y0 - t * dy) <= rng.uniform(0.5, 1.5)
        image[near] = rng.uniform(0, 255, size=3)

    label = np.zeros((size, size), dtype=np.int64)
    count = rng.integers(num_objects[0], num_objects[1] + 1)
    # Log-uniform sizes cover small and large objects equally; paint the largest first.
    sizes = np.sort(np.exp(rng.uniform(*np.log(object_size), size=count)))[::-1]
    for object_diameter in sizes:
        class_index = int(rng.integers(1, len(classes) + 1))
        shape, texture = classes[class_index - 1]
        centre_x, centre_y = rng.uniform(0, size, size=2)
        angle = rng.uniform(0, 2 * np.pi)
        period = rng.uniform(*texture_period)
        colours = _random_colour_pair(rng)
        phase_u, phase_v = rng.uniform(0, period, size=2)
        u = (x - centre_x) * np.cos(angle) + (y - centre_y) * np.sin(angle)
        v = -(x - centre_x) * np.sin(angle) + (y - centre_y) * np.cos(angle)
        inside = shape_mask(shape, u, v, object_diameter)
        pattern = texture_pattern(texture, u + phase_u, v + phase_v, period)
        image[inside] = colours[pattern[inside]]
        label[inside] = class_index

    image = image + rng.normal(0.0, noise_std, size=image.shape)
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return image, ignore_boundaries(label, ignore_radius)


class SyntheticSegmentation(Dataset):
    """The synthetic scenes as a dataset with a fixed train/val split.

    Items are ``(image, label)``: image float32 (3, H, W), normalised by ``transform`` (default:
    ImageNet mean and std, no augmentation); label int64 (H, W), class indices, 255 = ignore.
    ``load_raw(index)`` gives the un-normalised uint8 (H, W, 3) RGB image and the label at the
    original resolution (for the CRF and for evaluation). Generating a 96x96 scene takes about
    2 ms; ``cache=True`` keeps each scene in memory after its first use (about 37 kB each).

    Args:
        split: "train" or "val"; each draws from its own random stream.
        seed: picks the dataset; the same seed gives the same images everywhere.
        class_set: "distinct" (4 object classes, the default) or "crossed" (6, harder); see
            ``CLASS_SETS``.
        length: number of images (default 2000 for train, 200 for val).
        image_size: side of the square images, pixels.
        object_size: smallest and largest object diameter, pixels (log-uniform between).
        num_objects: fewest and most objects per image.
        texture_period: shortest and longest texture period, pixels.
        ignore_radius: the void band covers pixels within this chessboard distance of another
            label (``ignore_boundaries``).
        transform: callable ``(image uint8 (H, W, 3), label (H, W)) -> (tensor, tensor)``.
        cache: keep generated scenes in memory.
    """

    def __init__(
        self,
        split: str = "train",
        seed: int = 0,
        class_set: str = "distinct",
        length: int | None = None,
        image_size: int = 96,
        object_size: tuple[float, float] = (10.0, 80.0),
        num_objects: tuple[int, int] = (2, 5),
        texture_period: tuple[float, float] = (6.0, 10.0),
        ignore_radius: int = 1,
        transform: Transform | None = None,
        cache: bool = False,
    ) -> None:
        self.class_names = class_names(class_set)
        self.num_classes = len(self.class_names)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        if not 0 < object_size[0] <= object_size[1]:
            raise ValueError(f"object_size must be (smallest, largest) > 0, got {object_size}")
        if not 1 <= num_objects[0] <= num_objects[1]:
            raise ValueError(f"num_objects must be (fewest, most) >= 1, got {num_objects}")
        if image_size < 8:
            raise ValueError(f"image_size must be at least 8 pixels, got {image_size}")
        self.split = split
        self.seed = seed
        self.length = DEFAULT_LENGTH[split] if length is None else length
        if self.length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        self.scene_options = dict(
            classes=CLASS_SETS[class_set],
            image_size=image_size,
            object_size=object_size,
            num_objects=num_objects,
            texture_period=texture_period,
            ignore_radius=ignore_radius,
        )
        self.transform = eval_transform() if transform is None else transform
        self.cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if cache else None

    def __len__(self) -> int:
        return self.length

    def load_raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The scene ``index``: uint8 (H, W, 3) RGB image and int64 (H, W) label."""
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} images")
        index %= self.length
        if self.cache is not None and index in self.cache:
            image, label = self.cache[index]
            return image.copy(), label.astype(np.int64)
        stream = np.random.SeedSequence([self.seed, SPLITS[self.split], index])
        image, label = render_scene(np.random.default_rng(stream), **self.scene_options)
        if self.cache is not None:
            self.cache[index] = image, label.astype(np.uint8)
        return image, label

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(*self.load_raw(index))
