"""Your own images: a folder of images and masks as a segmentation dataset.

Layout::

    root/images/<stem>.jpg (or .jpeg, .png)   the photos, any size
    root/masks/<stem>.png                     class indices 0..K-1, 255 = ignore, same size
    root/classes.txt                          optional: one class name per line, background first
    root/train.txt, root/val.txt              optional: the stems of each split, one per line

Masks are palette or 8-bit greyscale PNGs holding class *indices* (what VOC's masks hold), not
colours: a mask saved as an RGB colour picture is refused with the command that converts it,
``python -m deeplab_ref.data.folder convert-masks ROOT --colors 0,0,0 255,0,0 ...``. Without
``classes.txt`` the number of classes K is given (``num_classes``, ``--num-classes``). Without the
split files each stem goes to ``val`` when a hash of (seed, stem) falls in the first
``val_fraction`` of its range: deterministic, and adding an image moves no other one.

Every problem is found when the dataset is built and named with its file: an image without a
mask or the reverse, an image and a mask of different sizes, a mask value >= K other than 255,
a colour mask, an empty folder. ``python -m deeplab_ref.data.folder example DIR`` writes a small
example folder (synthetic scenes as files) to try it on.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from deeplab_ref.data.synthetic import CLASS_SETS, class_names, render_scene
from deeplab_ref.data.transforms import IGNORE_INDEX, Transform, eval_transform
from deeplab_ref.data.voc import check_label_values, read_id_list, read_image, write_label

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
SPLITS = ("train", "val")
CONVERT_HINT = (
    "masks must hold class indices (a palette or 8-bit greyscale PNG); turn colour masks into "
    "indices with: python -m deeplab_ref.data.folder convert-masks ROOT --colors R,G,B R,G,B ... "
    "(one colour per class, background first)"
)


def split_of(stem: str, seed: int = 0, val_fraction: float = 0.1) -> str:
    """ "val" for about ``val_fraction`` of the stems, chosen by a hash of (seed, stem)."""
    digest = hashlib.sha256(f"{seed}:{stem}".encode()).digest()
    return "val" if int.from_bytes(digest[:8], "big") / 2**64 < val_fraction else "train"


def read_class_names(root: Path, num_classes: int | None) -> tuple[str, ...]:
    """The class names of ``root/classes.txt``, or ``class 0`` .. ``class K-1`` without it."""
    path = root / "classes.txt"
    if path.is_file():
        names = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
        if len(names) < 2:
            raise ValueError(f"{path} must name at least two classes (background first)")
        if num_classes is not None and num_classes != len(names):
            raise ValueError(
                f"num_classes={num_classes} (--num-classes) but {path} names {len(names)} classes"
            )
        return names
    if num_classes is None or num_classes < 2:
        raise ValueError(
            f"{root} has no classes.txt: give the number of classes, background included "
            "(num_classes, --num-classes), or write classes.txt with one name per line"
        )
    return tuple(f"class {k}" for k in range(num_classes))


def read_mask(path: Path, num_classes: int) -> np.ndarray:
    """A mask PNG as int64 (H, W) class indices, checked (ValueError naming the file)."""
    with Image.open(path) as mask:
        if mask.mode not in ("P", "L"):
            raise ValueError(f"mask {path} is a {mask.mode} image: {CONVERT_HINT}")
        label = np.asarray(mask, dtype=np.int64)
    check_label_values(label, num_classes, f"mask {path}")
    return label


def _stems(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    files = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in suffixes:
            if path.stem in files:
                raise ValueError(f"{files[path.stem]} and {path} share the stem {path.stem!r}")
            files[path.stem] = path
    return files


def _missing(stems: list[str], folder: Path, kind: str) -> str:
    shown = ", ".join(stems[:5]) + (f" and {len(stems) - 5} more" if len(stems) > 5 else "")
    return f"{len(stems)} {kind} without a file in {folder}: {shown}"


class FolderSegmentation(Dataset):
    """A split of a folder of images and masks (layout in the module's docstring).

    Items are ``(image, label)`` after ``transform`` (default: ImageNet normalisation);
    ``load_raw(index)`` gives the uint8 (H, W, 3) image and the int64 (H, W) label.

    Args:
        root: the folder holding ``images/`` and ``masks/``.
        split: "train" or "val".
        num_classes: K, background included; required without ``classes.txt``.
        val_fraction, seed: the hashed split, used when there are no split files.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        num_classes: int | None = None,
        transform: Transform | None = None,
        val_fraction: float = 0.1,
        seed: int = 0,
    ) -> None:
        root = Path(root)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        images_dir, masks_dir = root / "images", root / "masks"
        for folder in (images_dir, masks_dir):
            if not folder.is_dir():
                raise FileNotFoundError(
                    f"{folder} not found: a folder dataset holds images/ and masks/ "
                    "(see python -m deeplab_ref.data.folder --help)"
                )
        self.class_names = read_class_names(root, num_classes)
        self.num_classes = len(self.class_names)
        images, masks = _stems(images_dir, IMAGE_SUFFIXES), _stems(masks_dir, (".png",))
        if not images and not masks:
            raise ValueError(f"{root} holds no images ({', '.join(IMAGE_SUFFIXES)}) and no masks")
        problems = []
        if missing := sorted(set(images) - set(masks)):
            problems.append(_missing(missing, masks_dir, "images have no mask"))
        if missing := sorted(set(masks) - set(images)):
            problems.append(_missing(missing, images_dir, "masks have no image"))
        if problems:
            raise ValueError("; ".join(problems))
        split_file = root / f"{split}.txt"
        if split_file.is_file():
            stems = read_id_list(split_file)
            if unknown := [s for s in stems if s not in images]:
                raise ValueError(f"{split_file} lists {_missing(unknown, images_dir, 'stems')}")
        else:
            stems = [s for s in images if split_of(s, seed, val_fraction) == split]
        if not stems:
            raise ValueError(f"the {split} split of {root} is empty (val_fraction={val_fraction})")
        self.files = [(images[s], masks[s]) for s in stems]
        for image_path, mask_path in self.files:  # sizes and values, before any training
            with Image.open(image_path) as image:
                image_size = image.size
            label = read_mask(mask_path, self.num_classes)
            if label.shape[::-1] != image_size:
                raise ValueError(
                    f"mask {mask_path} is {label.shape[1]}x{label.shape[0]} but image "
                    f"{image_path} is {image_size[0]}x{image_size[1]}: they must match"
                )
        self.transform = eval_transform() if transform is None else transform

    def __len__(self) -> int:
        return len(self.files)

    def load_raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, mask_path = self.files[index]
        return read_image(image_path), read_mask(mask_path, self.num_classes)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(*self.load_raw(index))


def convert_masks(
    source: Path, destination: Path, colors: list[tuple[int, int, int]], ignore_color=None
) -> int:
    """Turn the colour masks (RGB PNGs) of ``source`` into index masks in ``destination``:
    ``colors[k]`` becomes class k, ``ignore_color`` 255; any other colour is an error naming
    the file and the colour. Returns the number of masks written."""
    lookup = {tuple(c): k for k, c in enumerate(colors)}
    if ignore_color is not None:
        lookup[tuple(ignore_color)] = IGNORE_INDEX
    paths = sorted(source.glob("*.png"))
    if not paths:
        raise ValueError(f"no PNG masks in {source}")
    destination.mkdir(parents=True, exist_ok=True)
    for path in paths:
        with Image.open(path) as mask:
            rgb = np.asarray(mask.convert("RGB")).astype(np.int64)
        packed = rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]
        label = np.full(packed.shape, -1, np.int64)
        for (r, g, b), index in lookup.items():
            label[packed == (r << 16 | g << 8 | b)] = index
        if (label < 0).any():
            unknown = np.unique(packed[label < 0])[:5]
            shown = ", ".join(f"{v >> 16},{v >> 8 & 255},{v & 255}" for v in unknown)
            raise ValueError(f"mask {path} has colours not in --colors: {shown}")
        write_label(destination / path.name, label)
    return len(paths)


def write_example(root: Path, count: int = 40, num_classes: int = 3, seed: int = 0) -> Path:
    """A folder dataset of ``count`` synthetic 96x96 scenes with ``num_classes`` classes
    (background and up to four shape-and-texture objects), with classes.txt."""
    if not 2 <= num_classes <= len(CLASS_SETS["distinct"]) + 1:
        raise ValueError(f"num_classes must be 2..5, got {num_classes}")
    classes = CLASS_SETS["distinct"][: num_classes - 1]
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    for index in range(count):
        rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
        image, label = render_scene(rng, classes)
        Image.fromarray(image).save(root / "images" / f"scene_{index:04d}.png")
        write_label(root / "masks" / f"scene_{index:04d}.png", label)
    names = class_names("distinct")[:num_classes]
    (root / "classes.txt").write_text("\n".join(names) + "\n")
    return root


def _color(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) <= 255 for p in parts):
        raise argparse.ArgumentTypeError(f"a colour is R,G,B with values 0..255, got {text!r}")
    return tuple(int(p) for p in parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deeplab_ref.data.folder",
        description="Folder datasets (images/ and masks/): an example, and colour-mask conversion.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    example = commands.add_parser("example", help="write a small example folder dataset")
    example.add_argument("root", type=Path)
    example.add_argument("--count", type=int, default=40)
    example.add_argument("--num-classes", type=int, default=3)
    convert = commands.add_parser("convert-masks", help="colour masks -> index masks")
    convert.add_argument("root", type=Path, help="folder whose masks/ holds colour PNGs")
    convert.add_argument("--colors", type=_color, nargs="+", required=True, help="R,G,B per class")
    convert.add_argument("--ignore-color", type=_color, help="R,G,B of pixels to ignore (255)")
    convert.add_argument(
        "--out", type=Path, help="default: ROOT/masks (colour masks kept in ROOT/masks_colour)"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "example":
            print(f"wrote {write_example(args.root, args.count, args.num_classes)}")
            return 0
        masks = args.root / "masks"
        if args.out is None:  # keep the originals: nothing is overwritten
            kept = args.root / "masks_colour"
            if kept.exists():
                raise ValueError(f"{kept} exists already: give --out for the converted masks")
            masks.rename(kept)
            try:
                count = convert_masks(kept, masks, args.colors, args.ignore_color)
            except BaseException:  # put the user's masks back where they were
                shutil.rmtree(masks, ignore_errors=True)
                kept.rename(masks)
                raise
        else:
            count = convert_masks(masks, args.out, args.colors, args.ignore_color)
        print(f"converted {count} masks")
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
