"""The training step the trainer and the benchmark share, compiled and eager (on the CPU)."""

import pytest
import torch

from deeplab_ref.checkpoint import CHECKPOINT_NAME, read_checkpoint
from deeplab_ref.train import read_log, train

from small_setups import tiny_config

# A tiny network: torch.compile's C++ code generation dominates the test's time.
TINY_NET = {"backbone_options": {"width": 8}, "max_iter": 3, "log_every": 1}


@pytest.fixture(scope="module")
def eager_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("eager")
    train(tiny_config(**TINY_NET), out, progress=False)
    return out


def test_compiled_training_gives_the_eager_losses_and_resumes_exactly(eager_run, tmp_path):
    compiled = tiny_config(**TINY_NET, compile=True)
    train(compiled, tmp_path / "straight", progress=False)
    eager_losses = [r["loss"] for r in read_log(eager_run)]
    compiled_losses = [r["loss"] for r in read_log(tmp_path / "straight")]
    assert compiled_losses == pytest.approx(eager_losses, abs=1e-4, rel=1e-4)
    train(compiled, tmp_path / "split", stop_after=2, progress=False)
    train(compiled, tmp_path / "split", resume=True, progress=False)
    straight = read_checkpoint(tmp_path / "straight" / CHECKPOINT_NAME)["model"]
    resumed = read_checkpoint(tmp_path / "split" / CHECKPOINT_NAME)["model"]
    for name, value in straight.items():
        assert torch.equal(value, resumed[name]), name


def test_a_run_may_resume_without_compiling(eager_run, tmp_path):
    # compile changes the rounding, not the computation: it is a run setting, like the device.
    train(tiny_config(**TINY_NET, compile=True), tmp_path, stop_after=2, progress=False)
    train(tiny_config(**TINY_NET), tmp_path, resume=True, progress=False)
    assert [r["iteration"] for r in read_log(tmp_path)] == [1, 2, 3]


def test_bad_compile_mode_is_named():
    with pytest.raises(ValueError, match="compile_mode"):
        tiny_config(compile=True, compile_mode="fastest").validate()


def test_bf16_only_where_the_hardware_has_it(monkeypatch):
    from deeplab_ref.train_step import native_bf16

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert not native_bf16(torch.device("cpu"))
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert native_bf16(torch.device("cpu"))


def test_a_bf16_step_on_this_cpu_trains(tmp_path):
    from deeplab_ref.presets import build_model
    from deeplab_ref.train_step import TrainingStep, build_optimizer, native_bf16

    config = tiny_config(**TINY_NET, bf16=True)
    model = build_model(config)
    step = TrainingStep(model, build_optimizer(model, config), config, torch.device("cpu"))
    assert step.bf16 == native_bf16(torch.device("cpu"))
    torch.manual_seed(0)
    images, labels = torch.randn(2, 3, 33, 33), torch.randint(0, 5, (2, 33, 33))
    losses = [step([(images, labels)])[0] for _ in range(8)]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
