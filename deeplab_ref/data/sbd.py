"""Build VOC 2012's ``train_aug`` split from the Semantic Boundaries Dataset (DeepLab Sec. 4.1).

DeepLab trains on "train_aug": the 10,582 images of VOC 2012 train plus SBD (Hariharan et al.,
2011) train and val, minus every image of VOC 2012 val (SBD's own split overlaps VOC val, so it
must never be used for validation). SBD keeps its labels in MATLAB files, ``cls/<id>.mat``, a
struct ``GTcls`` whose field ``Segmentation`` holds the class indices. This command writes them as
palette PNGs into ``VOC2012/SegmentationClassAug/`` and writes the list
``VOC2012/ImageSets/SegmentationAug/train_aug.txt``::

    python -m deeplab_ref.data.sbd --sbd benchmark_RELEASE/dataset --voc VOCdevkit/VOC2012

An image that VOC 2012 itself annotates keeps VOC's label (finer, with the void band on
boundaries); the others take SBD's. SBD's images are all in VOC 2012's ``JPEGImages``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
from scipy.io import loadmat
from scipy.io.matlab import MatReadError

from deeplab_ref.data.voc import (
    AUG_LABEL_DIR,
    SPLIT_LISTS,
    VOC_CLASSES,
    check_label_values,
    read_id_list,
    read_split,
    resolve_voc_root,
    write_label,
)


def read_sbd_label(path: Path) -> np.ndarray:
    """``GTcls.Segmentation`` of an SBD ``cls/<id>.mat`` file, int64 (H, W) class indices."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SBD label file {path} not found")
    try:
        label = np.asarray(
            loadmat(path, squeeze_me=True, struct_as_record=False)["GTcls"].Segmentation
        )
    except (MatReadError, ValueError, OSError, KeyError, AttributeError, TypeError) as error:
        raise ValueError(
            f"SBD label file {path} is corrupt or has no GTcls.Segmentation: {error!r}"
        ) from error
    if label.ndim != 2 or not np.issubdtype(label.dtype, np.integer):
        raise ValueError(
            f"SBD label file {path} holds a {label.dtype} {label.shape} array, not (H, W)"
        )
    label = label.astype(np.int64)
    check_label_values(label, len(VOC_CLASSES), f"SBD label file {path}")
    return label


def resolve_sbd_root(root: str | Path) -> Path:
    """SBD's ``dataset`` folder (with ``cls/``, ``train.txt``, ``val.txt``), given it or
    ``benchmark_RELEASE`` above it."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"SBD root {root} not found: pass SBD's benchmark_RELEASE/dataset")
    if not (root / "cls").is_dir() and (root / "dataset" / "cls").is_dir():
        root = root / "dataset"
    for name in ("cls", "train.txt", "val.txt"):
        if not (root / name).exists():
            raise FileNotFoundError(
                f"SBD root {root} has no {name}; expected benchmark_RELEASE/dataset with cls/, "
                "train.txt and val.txt"
            )
    return root


def build_train_aug(sbd_root: str | Path, voc_root: str | Path) -> list[str]:
    """Write ``SegmentationClassAug/<id>.png`` for every train_aug image and the train_aug list;
    returns the ids (10,582 for the full datasets)."""
    sbd_root, voc_root = resolve_sbd_root(sbd_root), resolve_voc_root(voc_root)
    voc_train, voc_val = (set(read_split(voc_root, split)) for split in ("train", "val"))
    sbd_ids = read_id_list(sbd_root / "train.txt") + read_id_list(sbd_root / "val.txt")
    ids = sorted((voc_train | set(sbd_ids)) - voc_val)

    missing = [i for i in ids if not (voc_root / "JPEGImages" / f"{i}.jpg").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} train_aug image(s) are missing from {voc_root / 'JPEGImages'}, "
            f"e.g. {missing[0]}.jpg: is this VOC 2012 (SBD's images are a subset of it)?"
        )
    label_dir = voc_root / AUG_LABEL_DIR
    label_dir.mkdir(exist_ok=True)
    for image_id in ids:
        voc_label = voc_root / "SegmentationClass" / f"{image_id}.png"
        if voc_label.is_file():
            shutil.copyfile(voc_label, label_dir / f"{image_id}.png")
        else:
            write_label(
                label_dir / f"{image_id}.png", read_sbd_label(sbd_root / "cls" / f"{image_id}.mat")
            )
    list_path = voc_root / SPLIT_LISTS["train_aug"]
    list_path.parent.mkdir(parents=True, exist_ok=True)
    list_path.write_text("".join(f"{i}\n" for i in ids))
    return ids


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m deeplab_ref.data.sbd",
        description="Build VOC 2012's train_aug labels and list from SBD's cls/*.mat files.",
    )
    parser.add_argument("--sbd", required=True, type=Path, help="SBD's benchmark_RELEASE/dataset")
    parser.add_argument("--voc", required=True, type=Path, help="VOCdevkit/VOC2012")
    args = parser.parse_args(argv)
    try:
        ids = build_train_aug(args.sbd, args.voc)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    voc_root = resolve_voc_root(args.voc)
    print(
        f"wrote {len(ids)} labels to {voc_root / AUG_LABEL_DIR} and the list "
        f"{voc_root / SPLIT_LISTS['train_aug']} (the full VOC 2012 + SBD give 10,582)"
    )


if __name__ == "__main__":
    main()
