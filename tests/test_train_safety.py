"""Nothing lost, nothing silent: interrupts save, reruns do not overwrite, resume is exact with
dropout and MSC (after a clean stop or a kill -9), resume checks the run, and a diverged run
never writes a checkpoint with non-finite weights."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

import deeplab_ref.train as training
from deeplab_ref.checkpoint import CHECKPOINT_NAME, read_checkpoint, save_checkpoint
from deeplab_ref.presets import build_model
from deeplab_ref.run_control import StopRequests, TrainingInterrupted
from deeplab_ref.train import LOG_NAME, read_log, train

from small_setups import tiny_config

# A head with dropout (VGG-style fc6/fc7 branches, dropout 0.5 after each): what the VGG-16
# presets train, on a backbone small enough for a test.
DROPOUT = {"head": "largefov", "backbone_options": {"width": 8, "hidden_channels": 16}}


def dropout_config(**overrides):
    return tiny_config(**{**DROPOUT, "max_iter": 8, **overrides})


def assert_same_state(a_dir, b_dir):
    a, b = read_checkpoint(a_dir / CHECKPOINT_NAME), read_checkpoint(b_dir / CHECKPOINT_NAME)
    assert a["iteration"] == b["iteration"]
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
    momenta_a = [s["momentum_buffer"] for s in a["optimizer"]["state"].values()]
    momenta_b = [s["momentum_buffer"] for s in b["optimizer"]["state"].values()]
    assert len(momenta_a) == len(momenta_b) > 0
    assert all(torch.equal(x, y) for x, y in zip(momenta_a, momenta_b, strict=True))
    assert torch.equal(a["cpu_rng"], b["cpu_rng"])
    log_a, log_b = read_log(a_dir), read_log(b_dir)
    assert [r["iteration"] for r in log_b] == [r["iteration"] for r in log_a]
    assert [r["loss"] for r in log_b] == [r["loss"] for r in log_a]


def test_the_dropout_config_has_dropout():
    model = build_model(dropout_config())
    assert any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in model.modules())


def test_interrupt_finishes_the_step_saves_and_resumes_exactly(tmp_path, monkeypatch):
    config = dropout_config(checkpoint_every=100)
    train(config, tmp_path / "straight", progress=False)

    schedule = training.poly_learning_rate

    def signal_during_iteration_3(base_lr, iteration, max_iter, power=0.9):
        if iteration == 3:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of the fourth step
        return schedule(base_lr, iteration, max_iter, power)

    monkeypatch.setattr(training, "poly_learning_rate", signal_during_iteration_3)
    handler = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN in a background job
    with pytest.raises(TrainingInterrupted, match="at iteration 4: continue with --resume"):
        train(config, tmp_path / "split", progress=False)
    monkeypatch.setattr(training, "poly_learning_rate", schedule)
    assert read_checkpoint(tmp_path / "split" / CHECKPOINT_NAME)["iteration"] == 4
    assert signal.getsignal(signal.SIGINT) is handler  # the handler restored
    train(config, tmp_path / "split", resume=True, progress=False)
    assert_same_state(tmp_path / "straight", tmp_path / "split")


@pytest.mark.parametrize("overrides", [DROPOUT, {"msc": True}], ids=["dropout", "msc"])
def test_stop_and_resume_is_bit_exact(tmp_path, overrides):
    config = tiny_config(**{**overrides, "max_iter": 6})
    train(config, tmp_path / "straight", progress=False)
    train(config, tmp_path / "split", stop_after=3, progress=False)
    train(config, tmp_path / "split", resume=True, progress=False)
    assert_same_state(tmp_path / "straight", tmp_path / "split")


KILLED_RUN = """
import os, signal
import deeplab_ref.train as training
from small_setups import tiny_config
schedule = training.poly_learning_rate
def kill_at_5(base_lr, iteration, max_iter, power=0.9):
    if iteration == 5:  # iterations 1..5 logged, the last checkpoint at 4
        os.kill(os.getpid(), signal.SIGKILL)
    return schedule(base_lr, iteration, max_iter, power)
training.poly_learning_rate = kill_at_5
training.train(tiny_config(**{config!r}), {out!r}, progress=False)
"""


def test_kill_9_then_resume_is_exact_and_logs_each_iteration_once(tmp_path):
    overrides = {**DROPOUT, "max_iter": 8, "checkpoint_every": 2, "log_every": 1}
    train(tiny_config(**overrides), tmp_path / "straight", progress=False)
    script = KILLED_RUN.format(config=overrides, out=str(tmp_path / "killed"))
    env = {**os.environ, "PYTHONPATH": os.path.dirname(__file__)}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, timeout=120)
    assert result.returncode == -signal.SIGKILL
    assert [r["iteration"] for r in read_log(tmp_path / "killed")] == [1, 2, 3, 4, 5]
    stale = tmp_path / "killed" / f"{CHECKPOINT_NAME}.x1y2.tmp"  # as a kill mid-write leaves
    stale.write_bytes(b"half a checkpoint")
    train(tiny_config(**overrides), tmp_path / "killed", resume=True, progress=False)
    assert not stale.exists()
    assert_same_state(tmp_path / "straight", tmp_path / "killed")


def test_a_new_run_does_not_overwrite_an_old_one(tmp_path):
    train(tiny_config(max_iter=4), tmp_path, stop_after=2, progress=False)
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()
    with pytest.raises(ValueError, match=r"iteration 2 of 4, preset cpu-synthetic.*--resume"):
        train(tiny_config(max_iter=4), tmp_path, progress=False)
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before
    train(tiny_config(max_iter=3), tmp_path, overwrite=True, progress=False)
    assert [r["iteration"] for r in read_log(tmp_path)] == [1, 2, 3]


@pytest.mark.parametrize(
    ("change", "listed"),
    [
        ({"base_lr": 0.02}, "base_lr: 0.01 -> 0.02"),
        ({"seed": 3}, "seed: 0 -> 3"),
        ({"batch_size": 4}, "batch_size: 2 -> 4"),
        ({"max_iter": 9}, "max_iter: 6 -> 9"),
        ({"seed": 3, "base_lr": 0.02}, "base_lr: 0.01 -> 0.02; seed: 0 -> 3"),
    ],
)
def test_resume_refuses_changed_settings(tmp_path, change, listed):
    train(tiny_config(), tmp_path, stop_after=2, progress=False)
    with pytest.raises(ValueError, match=listed.replace("(", r"\(")):
        train(tiny_config(**change), tmp_path, resume=True, progress=False)


def test_resume_accepts_settings_that_change_nothing(tmp_path):
    train(tiny_config(), tmp_path / "straight", progress=False)
    train(tiny_config(), tmp_path / "split", stop_after=2, progress=False)
    run_only = {"checkpoint_every": 5, "log_every": 1, "workers": 0, "device": "cpu"}
    train(tiny_config(**run_only), tmp_path / "split", resume=True, progress=False)
    straight = read_checkpoint(tmp_path / "straight" / CHECKPOINT_NAME)["model"]
    resumed = read_checkpoint(tmp_path / "split" / CHECKPOINT_NAME)["model"]
    assert all(torch.equal(v, resumed[k]) for k, v in straight.items())


def test_resume_of_a_finished_run_says_so(tmp_path):
    train(tiny_config(max_iter=2), tmp_path, progress=False)
    with pytest.raises(ValueError, match="iteration 2, already the run's max_iter=2"):
        train(tiny_config(max_iter=2), tmp_path, resume=True, progress=False)


def test_a_diverged_run_writes_no_non_finite_checkpoint(tmp_path):
    with pytest.raises(FloatingPointError, match="iteration"):
        train(tiny_config(base_lr=1e6, max_iter=4, checkpoint_every=1), tmp_path, progress=False)
    if (tmp_path / CHECKPOINT_NAME).exists():  # an earlier, finite one may stay
        state = read_checkpoint(tmp_path / CHECKPOINT_NAME)
        assert all(
            torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point()
        )


def test_a_non_finite_buffer_is_named_and_not_saved(tmp_path):
    config = tiny_config()
    model = build_model(config)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    name, buffer = next((n, b) for n, b in model.named_buffers() if b.is_floating_point())
    buffer.fill_(float("inf"))
    with pytest.raises(FloatingPointError, match=rf"{name} is not finite at iteration 7"):
        save_checkpoint(tmp_path / CHECKPOINT_NAME, model, optimizer, 7, config)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    train(tiny_config(max_iter=2), tmp_path, progress=False)
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()
    config = tiny_config()
    model = build_model(config)

    def crash_half_way(state, file):
        file.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_half_way)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(
            tmp_path / CHECKPOINT_NAME, model, torch.optim.SGD(model.parameters()), 3, config
        )
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME, LOG_NAME]


def test_progress_without_a_terminal_is_a_line_every_log_every(tmp_path, capsys):
    train(tiny_config(max_iter=6, log_every=2), tmp_path, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [line for line in err.splitlines() if line.startswith("iteration")]
    assert [line.split()[1] for line in lines] == ["2/6", "4/6", "6/6"]
    for line in (tmp_path / LOG_NAME).read_text().splitlines():
        assert set(json.loads(line)) == {"iteration", "loss", "lr", "time"}


def test_stop_requests_catch_sigterm_and_restore_the_handler():
    previous = signal.getsignal(signal.SIGTERM)
    with StopRequests() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.signal_name == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is previous
