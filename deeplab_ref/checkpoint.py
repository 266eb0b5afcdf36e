"""Training checkpoints: written atomically, read safely, checked against the model.

A checkpoint holds the weights, the optimiser's state (SGD momentum), the iteration, the
training settings (``TrainConfig.to_dict``) and the CPU random state. It is written to a
temporary file and renamed over the old one, so a crash never leaves a half-written checkpoint;
it is read with ``weights_only=True``, so loading one runs no code from the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from deeplab_ref.models import DeepLabV2
from deeplab_ref.presets import TrainConfig, build_model

CHECKPOINT_NAME = "checkpoint.pt"
# Fields that define the network: a checkpoint whose values differ belongs to another model.
MODEL_FIELDS = ("backbone", "head", "msc", "backbone_options", "num_classes")


def save_checkpoint(
    path: Path,
    model: DeepLabV2,
    optimizer: torch.optim.Optimizer,
    iteration: int,
    config: TrainConfig,
) -> None:
    """Write atomically: to a temporary file in the same folder, then rename over ``path``."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "iteration": iteration,
        "config": config.to_dict(),
        "cpu_rng": torch.get_rng_state(),
    }
    temporary = path.with_name(path.name + ".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def _read_checkpoint(path: str | Path) -> tuple[Path, dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and EOF errors all mean "not a checkpoint"
        raise ValueError(f"{path} is not a readable deeplab_ref checkpoint: {error}") from error
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ValueError(f"{path} is not a deeplab_ref training checkpoint")
    return path, state


def load_checkpoint(path: str | Path, model: DeepLabV2, optimizer=None) -> dict:
    """Load weights (and the optimiser's state) from a checkpoint written by ``train``.

    Raises FileNotFoundError for a missing file and ValueError naming the file for one that is
    not a checkpoint or belongs to another model."""
    path, state = _read_checkpoint(path)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise ValueError(f"checkpoint {path} was saved from another model: {error}") from error
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    return state


def check_same_model(path: Path, saved: dict, config: TrainConfig) -> None:
    """Raise ValueError naming ``path`` when the settings ``saved`` with a checkpoint describe
    another network than ``config``."""
    current = config.to_dict()
    different = [f for f in MODEL_FIELDS if saved.get(f) != current[f]]
    if different:
        details = ", ".join(f"{f}: {saved.get(f)!r} != {current[f]!r}" for f in different)
        raise ValueError(f"checkpoint {path} was saved from another model ({details})")


def load_trained_model(path: str | Path) -> tuple[DeepLabV2, TrainConfig]:
    """The model a ``train`` checkpoint holds, rebuilt from the settings saved with it, in
    evaluation mode (no ImageNet file needed: the checkpoint has every weight)."""
    path, state = _read_checkpoint(path)
    config = TrainConfig.from_dict({**state["config"], "imagenet_weights": None})
    model = build_model(config)
    load_checkpoint(path, model)
    return model.eval(), config
