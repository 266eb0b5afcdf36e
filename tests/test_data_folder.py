"""Your own images: the folder dataset, its errors, the colour-mask conversion, and a folder
trained, evaluated and predicted on through the command line."""

import numpy as np
import pytest
from PIL import Image

from deeplab_ref.cli import main
from deeplab_ref.data.folder import (
    FolderSegmentation,
    convert_masks,
    split_of,
    write_example,
)
from deeplab_ref.data.folder import main as folder_main
from deeplab_ref.data.voc import read_label, write_label


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    return write_example(tmp_path_factory.mktemp("folder"), count=24, num_classes=3)


def test_the_example_folder_is_a_dataset(example):
    train, val = FolderSegmentation(example, "train"), FolderSegmentation(example, "val")
    assert train.class_names == ("background", "striped disc", "checked square")
    assert len(train) + len(val) == 24 and len(val) >= 1
    image, label = train.load_raw(0)
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    assert set(np.unique(label)) <= {0, 1, 2, 255}
    tensor, target = train[0]
    assert tuple(tensor.shape) == (3, 96, 96) and tuple(target.shape) == (96, 96)


def test_the_hashed_split_is_deterministic_and_stable():
    stems = [f"img{i}" for i in range(2000)]
    first = [split_of(s) for s in stems]
    assert first == [split_of(s) for s in stems]
    assert 0.08 < first.count("val") / len(stems) < 0.12
    assert [split_of(s, seed=1) for s in stems] != first


def test_split_files_are_used_and_checked(tmp_path):
    root = write_example(tmp_path, count=6)
    (root / "train.txt").write_text("scene_0000\nscene_0001\n")
    (root / "val.txt").write_text("scene_0005\nmissing_one\n")
    assert len(FolderSegmentation(root, "train")) == 2
    with pytest.raises(ValueError, match="val.txt.*missing_one"):
        FolderSegmentation(root, "val")


def _folder(tmp_path, count=3):
    return write_example(tmp_path / "data", count=count)


def test_an_image_without_a_mask_and_a_mask_without_an_image(tmp_path):
    root = _folder(tmp_path)
    (root / "masks" / "scene_0001.png").unlink()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "masks" / "stray.png")
    with pytest.raises(
        ValueError, match=r"images have no mask.*scene_0001.*masks have no image.*stray"
    ):
        FolderSegmentation(root, "train")


def test_sizes_that_differ(tmp_path):
    root = _folder(tmp_path)
    write_label(root / "masks" / "scene_0000.png", np.zeros((50, 60), np.int64))
    with pytest.raises(ValueError, match=r"scene_0000.png is 60x50 but image .* is 96x96"):
        FolderSegmentation(root, "train", val_fraction=0.0)


def test_values_outside_the_classes(tmp_path):
    root = _folder(tmp_path)
    write_label(root / "masks" / "scene_0002.png", np.full((96, 96), 7))
    with pytest.raises(
        ValueError, match=r"scene_0002.png has values \[7\] outside the classes 0..2"
    ):
        FolderSegmentation(root, "train", val_fraction=0.0)


def test_a_colour_mask_is_refused_with_the_way_out(tmp_path):
    root = _folder(tmp_path)
    Image.fromarray(np.zeros((96, 96, 3), np.uint8)).save(root / "masks" / "scene_0000.png")
    with pytest.raises(ValueError, match=r"scene_0000.png is a RGB image.*convert-masks"):
        FolderSegmentation(root, "train", val_fraction=0.0)


def test_empty_and_incomplete_folders(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(ValueError, match="no images"):
        FolderSegmentation(tmp_path, "train", num_classes=3)
    with pytest.raises(ValueError, match="classes.txt"):
        FolderSegmentation(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="images"):
        FolderSegmentation(tmp_path / "nowhere", "train", num_classes=3)


def test_convert_masks_turns_colours_into_indices(tmp_path):
    colours = [(0, 0, 0), (200, 0, 0), (0, 0, 200)]
    label = np.random.default_rng(0).integers(0, 3, (20, 30))
    label[0] = 255
    rgb = np.zeros((20, 30, 3), np.uint8)
    for index, colour in enumerate([*colours]):
        rgb[label == index] = colour
    rgb[label == 255] = (255, 255, 255)
    (tmp_path / "masks").mkdir()
    Image.fromarray(rgb).save(tmp_path / "masks" / "a.png")
    args = ["convert-masks", str(tmp_path), "--colors", "0,0,0", "200,0,0", "0,0,200"]
    assert folder_main([*args, "--ignore-color", "255,255,255"]) == 0
    np.testing.assert_array_equal(read_label(tmp_path / "masks" / "a.png", 3), label)
    assert (tmp_path / "masks_colour" / "a.png").is_file()  # the originals are kept
    with pytest.raises(ValueError, match=r"a.png has colours not in --colors: 255,255,255"):
        convert_masks(tmp_path / "masks_colour", tmp_path / "out", colours)


def test_a_folder_trains_evaluates_and_predicts_from_the_command_line(example, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--dataset", "folder", "--data-root", str(example), "--out", str(run)]
    assert main([*args, "--max-iter", "2", "--batch-size", "2"]) == 0
    assert main(["evaluate", "--checkpoint", str(run / "checkpoint.pt")]) == 0
    table = capsys.readouterr().out
    assert "| striped disc |" in table and "| checked square |" in table
    image = next((example / "images").iterdir())
    assert (
        main(
            [
                "predict",
                str(image),
                "--checkpoint",
                str(run / "checkpoint.pt"),
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert read_label(tmp_path / f"{image.stem}_labels.png", 3).shape == (96, 96)


def test_folder_options_are_checked(example, tmp_path, capsys):
    args = ["train", "--dataset", "folder", "--out", str(tmp_path / "r")]
    assert main(args) == 2 and "--data-root" in capsys.readouterr().err
    assert main([*args, "--data-root", str(example), "--num-classes", "4"]) == 2
    assert "classes.txt names 3 classes" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "s"), "--num-classes", "4"]) == 2
    assert "--dataset folder" in capsys.readouterr().err
