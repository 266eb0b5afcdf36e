"""Several processes (gloo on the CPU, as torchrun would start them) against one process.

The oracle is the one-process run: two processes sharing each batch must take the same SGD steps
(up to the order of floating-point additions) and score a split with the same confusion matrix
(exactly: the counts are integers). Frozen batch norm throughout, as in the paper: trained batch
norm normalises each process's share on its own, which is not the one-process computation.
"""

import datetime
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from deeplab_ref import distributed
from deeplab_ref.checkpoint import CHECKPOINT_NAME, load_checkpoint
from deeplab_ref.cli import main
from deeplab_ref.crf_evaluation import evaluate_crf
from deeplab_ref.data import SyntheticSegmentation
from deeplab_ref.evaluate import evaluate
from deeplab_ref.presets import build_model, get_preset
from deeplab_ref.run_control import TrainingInterrupted
from deeplab_ref.train import LOG_NAME, forward_passes, read_log, train

from small_setups import FROZEN_BN, tiny_config

# The paper's frozen batch norm; the default scale range and void band give crops with padding
# and ignored pixels.
FROZEN_RUN = {**FROZEN_BN, "batch_size": 4, "max_iter": 3}
WIDTHS = (1, 3)


def frozen_config(**overrides):
    return tiny_config(**{**FROZEN_RUN, **overrides})


def _process(rank, world_size, rendezvous, job, args):
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{rendezvous}",
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=120),
    )
    try:
        job(*args)
    finally:
        dist.destroy_process_group()


def on_processes(tmp_path, job, *args, processes=2):
    """Run ``job(*args)`` on ``processes`` fresh processes joined in one gloo group."""
    mp.spawn(_process, args=(processes, str(tmp_path / "rendezvous"), job, args), nprocs=processes)


def _train_job(config_dict, out_dir, resume):
    config = get_preset("cpu-synthetic", **config_dict)
    train(config, out_dir, resume=resume, progress=False)


def _weights(path, config):
    model = build_model(config)
    load_checkpoint(path / CHECKPOINT_NAME, model)
    return model.state_dict()


def assert_same_weights(expected, actual):
    for name, value in expected.items():
        torch.testing.assert_close(actual[name], value, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize(
    ("batch_size", "accumulation"),
    # 4 = 2 + 2; 5 = 2 + 3, in forward passes of 1 + 1 and 1 + 2.
    [(4, 1), (5, 2)],
)
def test_two_processes_take_the_steps_of_one(tmp_path, batch_size, accumulation):
    config = frozen_config(batch_size=batch_size, accumulation=accumulation)
    one = train(frozen_config(batch_size=batch_size), tmp_path / "one", progress=False)
    on_processes(tmp_path, _train_job, config.to_dict(), tmp_path / "two", False)
    assert_same_weights(one.state_dict(), _weights(tmp_path / "two", config))
    losses = [record["loss"] for record in read_log(tmp_path / "two")]
    assert losses == pytest.approx([r["loss"] for r in read_log(tmp_path / "one")], rel=1e-5)
    # Rank 0 alone writes: one checkpoint, one log, nothing else.
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [CHECKPOINT_NAME, LOG_NAME]


def test_resume_on_another_number_of_processes(tmp_path):
    config = frozen_config(max_iter=4)
    straight = train(config, tmp_path / "straight", progress=False)
    train(config, tmp_path / "run", stop_after=2, progress=False)
    on_processes(tmp_path, _train_job, config.to_dict(), tmp_path / "run", True)
    assert_same_weights(straight.state_dict(), _weights(tmp_path / "run", config))
    assert [r["iteration"] for r in read_log(tmp_path / "run")] == [1, 2, 3, 4]


def _interrupted_job(config_dict, out_dir):
    import deeplab_ref.train as training

    schedule = training.poly_learning_rate

    def signal_rank_1(base_lr, iteration, max_iter, power=0.9):
        if iteration == 1 and distributed.rank() == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # only one process is told to stop
        return schedule(base_lr, iteration, max_iter, power)

    training.poly_learning_rate = signal_rank_1
    try:
        train(get_preset("cpu-synthetic", **config_dict), out_dir, progress=False)
    except TrainingInterrupted as stop:
        (out_dir / f"stopped_{distributed.rank()}").write_text(str(stop.iteration))


def test_a_signal_to_one_process_stops_every_process_at_the_same_iteration(tmp_path):
    config = frozen_config(max_iter=6)
    on_processes(tmp_path, _interrupted_job, config.to_dict(), tmp_path / "run")
    stopped = [(tmp_path / "run" / f"stopped_{r}").read_text() for r in (0, 1)]
    assert stopped == ["2", "2"]
    assert (
        load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME, build_model(config))["iteration"] == 2
    )


def _scores_job(config_dict, out_dir):
    config = get_preset("cpu-synthetic", **config_dict)
    torch.manual_seed(0)
    model = build_model(config)
    split = SyntheticSegmentation("val", length=5, image_size=40, ignore_radius=1)
    network = evaluate(model, split, config.num_classes, WIDTHS)
    crf = evaluate_crf(model, split, config.num_classes, trimap_widths=WIDTHS, processes=1)
    matrices = {
        "network": network.confusion.matrix,
        "trimap": np.stack([m.matrix for m in network.trimap.matrices]),
        "crf": crf["crf"].confusion.matrix,
        "crf_network": crf["network"].confusion.matrix,
    }
    np.savez(out_dir / f"scores{distributed.rank()}.npz", **matrices)


def test_evaluation_on_two_processes_counts_the_same_pixels(tmp_path):
    config = frozen_config()
    _scores_job(config.to_dict(), tmp_path)
    one = dict(np.load(tmp_path / "scores0.npz"))
    (tmp_path / "scores0.npz").unlink()
    on_processes(tmp_path, _scores_job, config.to_dict(), tmp_path)
    for rank in (0, 1):  # every process returns the whole split's counts
        two = np.load(tmp_path / f"scores{rank}.npz")
        for name, matrix in one.items():
            assert np.array_equal(two[name], matrix), (rank, name)
    assert one["network"].sum() > 0 and one["crf"].sum() == one["network"].sum()


def test_batch_shares_hand_worked():
    shares = [distributed.batch_share(10, process=p, processes=4) for p in range(4)]
    assert shares == [(0, 2), (2, 5), (5, 7), (7, 10)]
    assert distributed.batch_share(10) == (0, 10)  # one process: the whole batch
    with pytest.raises(ValueError, match="batch_size >= 16"):
        distributed.batch_share(10, accumulation=2, process=0, processes=8)


def test_each_process_takes_its_share_of_every_batch(monkeypatch):
    config = frozen_config(batch_size=10, accumulation=2, max_iter=3)
    monkeypatch.setattr(distributed, "world_size", lambda: 4)
    plans = []
    for rank in range(4):
        monkeypatch.setattr(distributed, "rank", lambda rank=rank: rank)
        plans.append(forward_passes(config, 1, 3))
    # 10 images over 4 processes: 2, 3, 2, 3, each in two forward passes (1 + 1 or 2 + 1).
    assert plans[0][:2] == [[10], [11]] and plans[1][:2] == [[12, 13], [14]]
    for step in range(2):  # iterations 1 and 2: samples 10-19, 20-29, each read once
        read = sorted(s for plan in plans for piece in plan[2 * step : 2 * step + 2] for s in piece)
        assert read == list(range(10 * (step + 1), 10 * (step + 2)))
    with pytest.raises(ValueError, match="batch_size=10 cannot be split over 4 processes"):
        forward_passes(frozen_config(batch_size=10, accumulation=3), 0, 1)


def test_device_choice_under_several_processes(monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert distributed.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="LOCAL_RANK"):
        distributed.resolve_device("cuda:1")


def test_one_process_commands_refuse_torchrun(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["demo"]) == 2
    assert "not torchrun" in capsys.readouterr().err


def test_torchrun_command_line(tmp_path):
    # The command the README gives, on two CPU processes: rank 0 alone prints and writes.
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node=2", "-m", "deeplab_ref", "train", "--preset", "cpu-synthetic"]
    command += ["--max-iter", "2", "--workers", "0", "--out", str(tmp_path / "run")]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("checkpoint and log in") == 1
    assert [r["iteration"] for r in read_log(tmp_path / "run")] == [2]
