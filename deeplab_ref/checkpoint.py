"""Training checkpoints: written atomically, read safely, checked against the run.

A checkpoint holds the weights, the optimiser's state (SGD momentum), the iteration, the
training settings (``TrainConfig.to_dict``) and the random state (CPU, and CUDA when training
ran there), which is all an exact resume needs. It is written to a temporary file in the same
folder and renamed over the old one, so a crash or a ``kill -9`` never leaves a half-written
checkpoint; a temporary file such a kill left behind is removed at the next save. A checkpoint
is read with ``weights_only=True``, so loading one runs no code from the file, and its contents
are checked before use, so a foreign or damaged file gives an error that names it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from deeplab_ref.models import DeepLabV2
from deeplab_ref.presets import TrainConfig, build_model

CHECKPOINT_NAME = "checkpoint.pt"
# Settings that do not change what a run computes (where it runs, how often it reports, where
# the data and the initial weights are read from, how the batch is split): a resumed run may
# change them. Every other setting must equal the checkpoint's.
RUN_FIELDS = (
    "preset",
    "data_root",
    "imagenet_weights",
    "accumulation",
    "checkpoint_every",
    "log_every",
    "workers",
    "device",
    "channels_last",
    "fused_sgd",
    "cudnn_benchmark",
    "compile",
    "compile_mode",
)


def first_non_finite(model: torch.nn.Module) -> str | None:
    """The name of the first weight or buffer of ``model`` holding a NaN or an infinity."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            return name
    return None


def save_checkpoint(
    path: Path,
    model: DeepLabV2,
    optimizer: torch.optim.Optimizer,
    iteration: int,
    config: TrainConfig,
) -> None:
    """Write atomically: to a temporary file in the same folder, then rename over ``path``.

    Raises FloatingPointError, and writes nothing, when a weight or a buffer (e.g. a batch-norm
    statistic) is no longer finite: the last good checkpoint stays."""
    bad = first_non_finite(model)
    if bad is not None:
        raise FloatingPointError(
            f"{bad} is not finite at iteration {iteration} (is the learning rate too high?): "
            f"not written; {path} keeps the last finite checkpoint"
        )
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "iteration": iteration,
        "config": config.to_dict(),
        "cpu_rng": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda_rng"] = torch.cuda.get_rng_state()
    for stale in path.parent.glob(f"{path.name}.*.tmp"):  # left by a killed write
        stale.unlink(missing_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# What each entry of a checkpoint must be, for the error that names a foreign file.
_ENTRIES = {"model": dict, "optimizer": dict, "iteration": int, "config": dict}


def read_checkpoint(path: str | Path) -> dict:
    """The contents of a ``train`` checkpoint, checked: a dict with the weights (a dict of
    tensors), the optimiser's state, the iteration and the settings. Raises FileNotFoundError
    for a missing file and ValueError naming the file for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and EOF errors all mean "not a checkpoint"
        raise ValueError(f"{path} is not a readable deeplab_ref checkpoint: {error}") from error
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a deeplab_ref training checkpoint")
    for key, kind in _ENTRIES.items():
        if not isinstance(state.get(key), kind):
            found = type(state[key]).__name__ if key in state else "nothing"
            raise ValueError(
                f"{path} is not a deeplab_ref training checkpoint: its {key!r} should be a "
                f"{kind.__name__}, found {found}"
            )
    if not all(isinstance(v, torch.Tensor) for v in state["model"].values()):
        raise ValueError(f"{path}: its 'model' entry should map names to tensors")
    return state


def saved_config(path: str | Path, state: dict | None = None) -> TrainConfig:
    """The training settings stored in checkpoint ``path`` (ValueError naming it if unusable)."""
    state = read_checkpoint(path) if state is None else state
    try:
        return TrainConfig.from_dict(state["config"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"checkpoint {path} holds unusable training settings: {error}") from error


def load_checkpoint(path: str | Path, model: DeepLabV2, optimizer=None) -> dict:
    """Load weights (and the optimiser's state) from a checkpoint written by ``train``.

    Raises FileNotFoundError for a missing file and ValueError naming the file for one that is
    not a checkpoint or belongs to another model."""
    state = read_checkpoint(path)
    try:
        model.load_state_dict(state["model"])
        if optimizer is not None:
            optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as error:
        raise ValueError(f"checkpoint {path} was saved from another model: {error}") from error
    return state


def changed_settings(saved: TrainConfig, config: TrainConfig) -> list[str]:
    """Each setting that changes the result and differs, as "name: saved -> now"."""
    before, now = saved.to_dict(), config.to_dict()
    return [
        f"{name}: {before[name]!r} -> {now[name]!r}"
        for name in now
        if name not in RUN_FIELDS and before.get(name) != now[name]
    ]


def check_resumable(path: Path, state: dict, config: TrainConfig) -> None:
    """Raise ValueError naming ``path`` unless ``config`` continues the checkpoint's run exactly:
    every setting that changes the result equal, and iterations left to train."""
    differences = changed_settings(saved_config(path, state), config)
    if differences:
        raise ValueError(
            f"--resume: {path} was trained with other settings; a resumed run must keep them "
            "(the poly schedule, the data order and the model depend on them): "
            + "; ".join(differences)
        )
    if state["iteration"] >= config.max_iter:
        raise ValueError(
            f"--resume: {path} is at iteration {state['iteration']}, already the run's "
            f"max_iter={config.max_iter}: nothing is left to train (a longer run is another "
            "schedule under poly: train it from the start with --overwrite or another --out)"
        )


def load_trained_model(path: str | Path) -> tuple[DeepLabV2, TrainConfig]:
    """The model a ``train`` checkpoint holds, rebuilt from the settings saved with it, in
    evaluation mode (no ImageNet file needed: the checkpoint has every weight)."""
    state = read_checkpoint(path)
    config = saved_config(path, state)
    config.imagenet_weights = None
    model = build_model(config)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise ValueError(f"checkpoint {path} does not fit its own settings: {error}") from error
    return model.eval(), config
