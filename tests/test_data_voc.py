"""PASCAL VOC 2012 and SBD readers on a small fake VOCdevkit and SBD tree made here."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from deeplab_ref.data import VOCSegmentation
from deeplab_ref.data.sbd import build_train_aug, main, read_sbd_label
from deeplab_ref.data.voc import read_label, voc_colormap, write_label

VOC_TRAIN, VOC_VAL = ["a", "b"], ["c", "d"]
SBD_TRAIN, SBD_VAL = ["b", "c", "e"], ["f", "d"]
HEIGHT, WIDTH = 10, 14


def _label(seed, with_void=True):
    rng = np.random.default_rng(seed)
    label = rng.choice([0, 5, 15, 20], size=(HEIGHT, WIDTH))
    if with_void:
        label[0, :] = 255
    return label.astype(np.int64)


def _save_mat(path, label):
    savemat(path, {"GTcls": {"Segmentation": label.astype(np.uint8), "CategoriesPresent": 1}})


@pytest.fixture
def tree(tmp_path):
    """VOCdevkit/VOC2012 with 6 images, VOC labels for a-d, and SBD's dataset folder."""
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for image_id in "abcdef":
        pixels = rng.integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(voc / "JPEGImages" / f"{image_id}.jpg")
    for seed, image_id in enumerate(VOC_TRAIN + VOC_VAL):
        write_label(voc / "SegmentationClass" / f"{image_id}.png", _label(seed))
    lists = {"train": VOC_TRAIN, "val": VOC_VAL, "trainval": VOC_TRAIN + VOC_VAL}
    for split, ids in lists.items():
        (voc / "ImageSets/Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    sbd = tmp_path / "benchmark_RELEASE" / "dataset"
    (sbd / "cls").mkdir(parents=True)
    for seed, image_id in enumerate(sorted(set(SBD_TRAIN + SBD_VAL))):
        _save_mat(sbd / "cls" / f"{image_id}.mat", _label(100 + seed, with_void=False))
    (sbd / "train.txt").write_text("\n".join(SBD_TRAIN) + "\n")
    (sbd / "val.txt").write_text("\n".join(SBD_VAL) + "\n")
    return voc, sbd


def test_voc_colormap_matches_published_colours():
    colours = voc_colormap()
    assert colours.shape == (256, 3) and colours.dtype == np.uint8
    assert colours[0].tolist() == [0, 0, 0]
    assert colours[1].tolist() == [128, 0, 0]  # aeroplane
    assert colours[15].tolist() == [192, 128, 128]  # person
    assert colours[20].tolist() == [0, 64, 128]  # tvmonitor
    assert colours[255].tolist() == [224, 224, 192]  # void


def test_train_split_items(tree):
    voc, _ = tree
    dataset = VOCSegmentation(voc, "train")
    assert len(dataset) == 2 and dataset.num_classes == 21
    image, label = dataset[1]
    assert image.dtype == torch.float32 and image.shape == (3, HEIGHT, WIDTH)
    assert label.dtype == torch.int64
    # Read as indices, not colours: the written label comes back exactly.
    np.testing.assert_array_equal(label.numpy(), _label(1))
    raw_image, raw_label = dataset.load_raw(0)
    assert raw_image.dtype == np.uint8 and raw_image.shape == (HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(raw_label, _label(0))
    assert len(VOCSegmentation(voc.parent, "trainval")) == 4  # the VOCdevkit folder works too


def test_label_files_are_indices_or_an_error_naming_the_file(tree, tmp_path):
    path = tmp_path / "greyscale.png"
    Image.fromarray(_label(3).astype(np.uint8), mode="L").save(path)
    np.testing.assert_array_equal(read_label(path), _label(3))
    colour = tmp_path / "colour.png"
    Image.fromarray(voc_colormap()[_label(3)]).save(colour)
    with pytest.raises(ValueError, match="colour.png"):
        read_label(colour)
    out_of_range = tmp_path / "bad.png"
    write_label(out_of_range, np.full((3, 3), 30))
    with pytest.raises(ValueError, match=r"bad.png has values \[30\]"):
        read_label(out_of_range)


def test_corrupt_image_names_the_file(tree):
    voc, _ = tree
    (voc / "JPEGImages" / "a.jpg").write_bytes(b"not a jpeg")
    dataset = VOCSegmentation(voc, "train")
    with pytest.raises(ValueError, match="a.jpg"):
        dataset.load_raw(0)


def test_size_mismatch_names_both_files(tree):
    voc, _ = tree
    write_label(voc / "SegmentationClass" / "b.png", np.zeros((4, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="b.png.*b.jpg"):
        VOCSegmentation(voc, "train").load_raw(1)


@pytest.mark.parametrize(
    "remove, match",
    [
        ("", "VOC root"),
        ("JPEGImages", "JPEGImages"),
        ("SegmentationClass", "SegmentationClass"),
        ("ImageSets/Segmentation/train.txt", "train.txt"),
        ("ImageSets/Segmentation", "ImageSets/Segmentation"),
        ("JPEGImages/b.jpg", "b.jpg"),
        ("SegmentationClass/a.png", "a.png"),
    ],
)
def test_layout_errors_say_what_is_missing(tree, remove, match):
    voc, _ = tree
    target = voc / remove
    if target.is_dir():
        for child in sorted(target.rglob("*"), reverse=True):
            child.unlink() if child.is_file() else child.rmdir()
        target.rmdir()
    else:
        target.unlink()
    with pytest.raises(FileNotFoundError, match=match):
        VOCSegmentation(voc, "train")


def test_empty_split_list(tree):
    voc, _ = tree
    (voc / "ImageSets/Segmentation/val.txt").write_text("\n")
    with pytest.raises(ValueError, match="val.txt is empty"):
        VOCSegmentation(voc, "val")


def test_train_aug_needs_the_builder_first(tree):
    voc, _ = tree
    with pytest.raises(FileNotFoundError, match="deeplab_ref.data.sbd"):
        VOCSegmentation(voc, "train_aug")
    with pytest.raises(ValueError, match="split"):
        VOCSegmentation(voc, "test")


def test_build_train_aug(tree, capsys):
    voc, sbd = tree
    main(["--sbd", str(sbd.parent), "--voc", str(voc)])
    assert "wrote 4 labels" in capsys.readouterr().out
    # VOC train + SBD train and val, minus VOC val (c and d are in SBD but also in VOC val).
    expected = sorted({"a", "b", "e", "f"})
    listed = (voc / "ImageSets/SegmentationAug/train_aug.txt").read_text().split()
    assert listed == expected
    dataset = VOCSegmentation(voc, "train_aug")
    assert dataset.ids == expected
    labels = {i: dataset.load_raw(k)[1] for k, i in enumerate(dataset.ids)}
    # b is annotated by both: VOC's label wins; e and f come from SBD's .mat files.
    np.testing.assert_array_equal(labels["b"], _label(1))
    for image_id in "ef":
        np.testing.assert_array_equal(
            labels[image_id], read_sbd_label(sbd / "cls" / f"{image_id}.mat")
        )
    assert Image.open(voc / "SegmentationClassAug" / "e.png").mode == "P"


def test_builder_runs_as_a_command(tree):
    voc, sbd = tree
    result = subprocess.run(
        [sys.executable, "-m", "deeplab_ref.data.sbd", "--sbd", str(sbd), "--voc", str(voc)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "wrote 4 labels" in result.stdout


def test_sbd_errors_name_the_file(tree):
    voc, sbd = tree
    (sbd / "cls" / "e.mat").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="e.mat"):
        build_train_aug(sbd, voc)
    _save_mat(sbd / "cls" / "e.mat", np.full((3, 3), 40))
    with pytest.raises(ValueError, match=r"e.mat has values \[40\]"):
        read_sbd_label(sbd / "cls" / "e.mat")
    savemat(sbd / "cls" / "e.mat", {"other": 1})
    with pytest.raises(ValueError, match="GTcls"):
        read_sbd_label(sbd / "cls" / "e.mat")
    (sbd / "cls" / "f.mat").unlink()
    with pytest.raises(FileNotFoundError, match="f.mat"):
        read_sbd_label(sbd / "cls" / "f.mat")


def test_sbd_layout_errors(tree, capsys):
    voc, sbd = tree
    with pytest.raises(SystemExit):
        main(["--sbd", str(sbd / "missing"), "--voc", str(voc)])
    assert "SBD root" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="SBD root"):
        build_train_aug(sbd / "missing", voc)
    (sbd / "val.txt").unlink()
    with pytest.raises(FileNotFoundError, match="val.txt"):
        build_train_aug(sbd, voc)


def test_builder_reports_missing_images(tree):
    voc, sbd = tree
    (voc / "JPEGImages" / "f.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="f.jpg"):
        build_train_aug(sbd, voc)


def test_builder_needs_voc_train_and_val_lists(tree):
    voc, sbd = tree
    (voc / "ImageSets/Segmentation/val.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"split list .*val\.txt not found"):
        build_train_aug(sbd, voc)
