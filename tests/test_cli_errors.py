"""The command line under bad input and faults: each case exits with status 2 (130 when
interrupted) and a message naming the argument or the file, never a traceback."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from deeplab_ref.cli import main
from deeplab_ref.data.voc import read_image


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    assert main(["train", "--out", str(folder), "--max-iter", "2", "--batch-size", "2"]) == 0
    return folder


def fails_with(capsys, args, *phrases):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for phrase in phrases:
        assert phrase in err, (phrase, err)
    return err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_a_missing_gpu_is_named(tmp_path, capsys, device):
    fails_with(capsys, ["train", "--out", str(tmp_path), "--device", device], device, "no CUDA")


def test_an_unknown_device_is_named(tmp_path, capsys, run):
    fails_with(capsys, ["train", "--out", str(tmp_path), "--device", "gpu"], "'gpu'", "cpu, cuda")
    checkpoint = str(run / "checkpoint.pt")
    fails_with(capsys, ["evaluate", "--checkpoint", checkpoint, "--device", "gpu"], "'gpu'")


def test_out_naming_a_file(tmp_path, capsys, run):
    file = tmp_path / "a_file"
    file.write_text("")
    fails_with(capsys, ["train", "--out", str(file), "--max-iter", "1"], "a_file", "is a file")
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(photo)
    args = ["predict", str(photo), "--checkpoint", str(run / "checkpoint.pt"), "--out", str(file)]
    fails_with(capsys, args, "a_file", "is a file")


@pytest.mark.parametrize(
    ("entries", "phrase"),
    [({"model": torch.zeros(3)}, "'model'"), ({"config": "cpu-synthetic"}, "'config'")],
)
def test_crafted_checkpoints_are_refused(tmp_path, capsys, run, entries, phrase):
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    crafted = tmp_path / "crafted.pt"
    torch.save({**state, **entries}, crafted)
    fails_with(capsys, ["evaluate", "--checkpoint", str(crafted)], "crafted.pt", phrase)


def test_unusable_settings_in_a_checkpoint_are_refused(tmp_path, capsys, run):
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    crafted = tmp_path / "odd.pt"
    torch.save({**state, "config": {**state["config"], "learning": 1}}, crafted)
    fails_with(capsys, ["evaluate", "--checkpoint", str(crafted)], "odd.pt", "learning")


def test_a_16_bit_image_is_scaled_not_saturated(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    image = read_image(tmp_path / "deep.png")
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[..., 0], np.round(ramp / 257).astype(np.uint8))
    assert (image == 255).mean() < 0.01


def test_a_diverging_learning_rate_exits_2_and_names_the_tensor(tmp_path, capsys):
    args = ["train", "--out", str(tmp_path), "--max-iter", "3", "--batch-size", "2"]
    err = fails_with(capsys, [*args, "--base-lr", "1e6", "--checkpoint-every", "1"], "iteration")
    assert "not finite" in err or "loss became" in err


def test_arguments_the_preset_does_not_use(tmp_path, capsys, run):
    train = ["train", "--out", str(tmp_path), "--max-iter", "1"]
    fails_with(capsys, [*train, "--data-root", str(tmp_path)], "--data-root", "synthetic")
    fails_with(capsys, [*train, "--imagenet-weights", "w.pth"], "--imagenet-weights")
    evaluate = ["evaluate", "--checkpoint", str(run / "checkpoint.pt")]
    fails_with(capsys, [*evaluate, "--split", "bogus"], "--split", "bogus")
    fails_with(capsys, [*evaluate, "--data-root", str(tmp_path)], "--data-root", "synthetic")


def test_a_rerun_names_the_run_it_would_replace(capsys, run):
    args = ["train", "--out", str(run), "--max-iter", "2", "--batch-size", "2"]
    fails_with(capsys, args, "iteration 2 of 2", "cpu-synthetic", "--resume", "--overwrite")


def test_resume_names_each_changed_setting(tmp_path, capsys):
    out = str(tmp_path)
    assert main(["train", "--out", out, "--max-iter", "4", "--batch-size", "2"]) == 0
    # The finished run cannot be extended; a changed setting is listed with both values.
    fails_with(capsys, ["train", "--out", out, "--resume"], "nothing is left")
    args = ["train", "--out", out, "--resume", "--base-lr", "0.5", "--seed", "4"]
    fails_with(capsys, args, "base_lr: 0.01 -> 0.5", "seed: 0 -> 4")
    fails_with(
        capsys, ["train", "--out", out, "--resume", "--preset", "voc-vgg16-aspp-l"], "preset"
    )


def test_overwrite_starts_again(capsys, tmp_path):
    args = ["train", "--out", str(tmp_path), "--max-iter", "1", "--batch-size", "2"]
    assert main(args) == 0
    assert main([*args, "--overwrite"]) == 0
    fails_with(capsys, [*args, "--overwrite", "--resume"], "--resume", "--overwrite")


def test_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path):
    command = [sys.executable, "-m", "deeplab_ref", "train", "--out", str(tmp_path)]
    command += ["--max-iter", "100000", "--batch-size", "2", "--checkpoint-every", "100000"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stderr:  # without a terminal: one progress line every 50 iterations
            if line.startswith("iteration"):
                break
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        err = process.stderr.read()
        assert process.wait(timeout=60) == 130
    finally:
        process.kill()
    assert "Traceback" not in err
    assert "interrupted (SIGINT) at iteration" in err and "continue with --resume" in err
    stopped_at = int(err.split("at iteration ")[1].split(":")[0])
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["iteration"] == stopped_at >= 50
