"""The command line, as a user types it: help, a tiny run end to end, and bad arguments."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from deeplab_ref.cli import main
from deeplab_ref.data.voc import read_label
from deeplab_ref.presets import get_preset
from deeplab_ref.train import read_log, train


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deeplab_ref", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "demo"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    assert "usage: python -m deeplab_ref " + command in capsys.readouterr().out


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    assert main(["train", "--out", str(run), "--max-iter", "2", "--batch-size", "2"]) == 0
    return run / "checkpoint.pt"


def test_train_evaluate_predict(checkpoint, tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--crf"]) == 0
    table = capsys.readouterr().out
    assert "| DeepLab |" in table and "| DeepLab + CRF |" in table and "mIoU" in table
    image = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "photo.png")
    out = tmp_path / "out"
    args = ["predict", str(tmp_path / "photo.png"), "--checkpoint", str(checkpoint), "--crf"]
    assert main([*args, "--out", str(out)]) == 0
    labels = read_label(out / "photo_labels.png", num_classes=5)
    assert labels.shape == (40, 50) and labels.max() < 5
    assert Image.open(out / "photo_overlay.png").size == (50, 40)


def test_resume_through_the_command_line(tmp_path):
    # A run stopped after 2 of 4 iterations and resumed by the command line, which takes the
    # checkpoint's own settings, ends with the weights and the log of a straight run.
    options = ["--max-iter", "4", "--batch-size", "2"]
    assert main(["train", "--out", str(tmp_path / "straight"), *options]) == 0
    train(get_preset("cpu-synthetic", max_iter=4, batch_size=2), tmp_path / "split", stop_after=2)
    assert main(["train", "--out", str(tmp_path / "split"), "--resume"]) == 0
    straight = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    resumed = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)
    assert resumed["iteration"] == 4
    for name, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][name]), name
    straight_log, resumed_log = read_log(tmp_path / "straight"), read_log(tmp_path / "split")
    # The stopped run also logged its last iteration, 2; each iteration appears once.
    assert [r["iteration"] for r in resumed_log] == [2, 4]
    assert resumed_log[-1]["loss"] == straight_log[-1]["loss"]


def test_train_options_reach_the_run(tmp_path):
    run = tmp_path / "run"
    args = ["--max-iter", "1", "--batch-size", "2", "--accumulation", "2", "--base-lr", "0.005"]
    assert main(["train", "--out", str(run), *args]) == 0
    assert [(r["iteration"], r["lr"]) for r in read_log(run)] == [(1, 0.005)]


def test_errors_name_the_file(checkpoint, tmp_path, capsys):
    assert main(["predict", str(tmp_path / "missing.jpg"), "--checkpoint", str(checkpoint)]) == 2
    assert "missing.jpg" in capsys.readouterr().err
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    assert main(["predict", str(tmp_path / "broken.png"), "--checkpoint", str(checkpoint)]) == 2
    assert "broken.png" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "junk.pt")]) == 2
    assert "junk.pt" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "r"), "--preset", "voc-vgg16-largefov"]) == 2
    assert "--data-root" in capsys.readouterr().err


def test_bad_arguments_exit_with_usage():
    result = run_cli("train", "--out", "x", "--max-iter", "0")
    assert result.returncode == 2 and "--max-iter" in result.stderr
    result = run_cli("train", "--out", "x", "--preset", "imagenet")
    assert result.returncode == 2 and "--preset" in result.stderr
