"""The training loop: the paper's schedule and loss, and exact resumption from a checkpoint."""

import json

import pytest
import torch
import torch.nn.functional as F

from deeplab_ref.checkpoint import CHECKPOINT_NAME, load_checkpoint
from deeplab_ref.loss import deeplab_loss, downsample_labels
from deeplab_ref.presets import build_dataset, build_model
from deeplab_ref.train import LOG_NAME, poly_learning_rate, read_log, train

from small_setups import FROZEN_BN, tiny_config


def test_poly_schedule_hand_worked():
    assert poly_learning_rate(0.01, 0, 100) == 0.01
    assert poly_learning_rate(0.01, 100, 100) == 0.0
    assert poly_learning_rate(1.0, 50, 100) == pytest.approx(0.5**0.9)
    with pytest.raises(ValueError, match="iteration"):
        poly_learning_rate(0.01, 101, 100)


def test_downsample_labels_picks_every_eighth_pixel_for_321():
    labels = torch.arange(321 * 321).reshape(1, 321, 321)
    small = downsample_labels(labels, (41, 41))
    torch.testing.assert_close(small, labels[:, ::8, ::8])


def test_loss_sums_the_scales_and_ignores_255():
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (2, 17, 17))
    labels[:, :4] = 255
    scores = [torch.randn(2, 3, 9, 9), torch.randn(2, 3, 5, 5)]
    expected = sum(
        F.cross_entropy(s, downsample_labels(labels, s.shape[-2:]), ignore_index=255)
        for s in scores
    )
    torch.testing.assert_close(deeplab_loss(scores, labels), expected)
    all_ignored = torch.full((2, 17, 17), 255)
    assert deeplab_loss(scores, all_ignored).item() == 0.0


def test_resume_continues_exactly(tmp_path):
    config = tiny_config()
    straight = train(config, tmp_path / "straight", progress=False)
    train(config, tmp_path / "split", stop_after=3, progress=False)
    assert (
        load_checkpoint(tmp_path / "split" / CHECKPOINT_NAME, build_model(config))["iteration"] == 3
    )
    resumed = train(config, tmp_path / "split", resume=True, progress=False)
    for (name, a), b in zip(
        straight.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    log = read_log(tmp_path / "split")
    assert [r["iteration"] for r in log] == list(range(1, 7))
    assert [r["loss"] for r in log] == [r["loss"] for r in read_log(tmp_path / "straight")]


@pytest.mark.parametrize("accumulation", [2, 3])
def test_accumulation_gives_the_same_step(tmp_path, accumulation):
    # Every forward pass divides by the whole batch's count of valid pixels, so the pieces add up
    # to the batch exactly, void bands and padded crops included (3 pieces of 4 images: 2, 1, 1).
    # Batch norm is frozen, as in the paper: trained batch norm would see different batches.
    frozen = {**FROZEN_BN, "batch_size": 4, "max_iter": 2}
    whole = train(tiny_config(**frozen), tmp_path / "whole", progress=False)
    split = train(
        tiny_config(accumulation=accumulation, **frozen), tmp_path / "split", progress=False
    )
    for a, b in zip(whole.parameters(), split.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    for a, b in zip(read_log(tmp_path / "whole"), read_log(tmp_path / "split"), strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)


def test_training_lowers_the_loss(tmp_path):
    # Judged on the training scenes themselves, whole and without augmentation, before and after:
    # robust to the run's noisy per-batch losses (which differ with the thread count). Frozen
    # batch norm, so that evaluation mode does not depend on 40 steps of running statistics.
    config = tiny_config(max_iter=40, base_lr=0.01, **FROZEN_BN)
    scenes = build_dataset(config, "train")
    images = torch.stack([scenes[i][0] for i in range(len(scenes))])
    labels = torch.stack([scenes[i][1] for i in range(len(scenes))])

    def loss_of(model):
        with torch.no_grad():
            return deeplab_loss(model.eval().supervised_scores(images), labels).item()

    torch.manual_seed(config.seed)  # train() builds its model after the same seeding
    before = loss_of(build_model(config))
    after = loss_of(train(config, tmp_path, progress=False))
    assert after < 0.8 * before


def test_checkpoint_errors_name_the_file(tmp_path):
    model = build_model(tiny_config())
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        load_checkpoint(tmp_path / "nothing.pt", model)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pt"):
        load_checkpoint(garbage, model)
    train(tiny_config(max_iter=1), tmp_path / "run", progress=False)
    other = build_model(tiny_config(head="largefov"))
    with pytest.raises(ValueError, match="another model"):
        load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME, other)
    with pytest.raises(ValueError, match="num_classes: 5 -> 7"):
        train(tiny_config(num_classes=7, max_iter=1), tmp_path / "run", resume=True, progress=False)


def test_resume_without_checkpoint_says_where(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / CHECKPOINT_NAME)):
        train(tiny_config(), tmp_path, resume=True, progress=False)


def test_a_run_folder_holds_the_checkpoint_and_the_log(tmp_path):
    train(tiny_config(max_iter=2), tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME, LOG_NAME]
    for line in (tmp_path / LOG_NAME).read_text().splitlines():
        assert set(json.loads(line)) == {"iteration", "loss", "lr", "time"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2, "accumulation": 3}, "accumulation"),
        ({"base_lr": -1.0}, "base_lr"),
        ({"dataset": "coco"}, "dataset"),
        ({"dataset": "voc"}, "data_root"),
    ],
)
def test_bad_settings_are_named(overrides, field, tmp_path):
    with pytest.raises(ValueError, match=field):
        train(tiny_config(**overrides), tmp_path, progress=False)
