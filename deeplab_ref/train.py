"""Training DeepLab-v2 with the paper's recipe (Sec. 4, "Training" and Sec. 4.1).

* SGD with momentum 0.9 and weight decay 5e-4; batch 10 (``accumulation`` splits it into smaller
  forward passes when memory is short; the gradient is the same).
* The "poly" learning rate ``base_lr * (1 - iteration / max_iter) ** 0.9`` (Table 2: ~1 point
  better than "step"); the classifier at 10x (weights) and 20x (biases), see ``param_groups``.
* Frozen batch normalisation (the backbones build it frozen).
* The loss: per-pixel cross-entropy, label 255 ignored, on the output-stride-8 scores against the
  labels subsampled by nearest neighbour, summed over every MSC scale and the fused scores.
* Augmentation: random scale in [0.5, 1.5], a 321x321 crop padded with the mean and 255, flips.

Runs are reproducible and resumable exactly: sample j of the run (j = iteration * batch + k) is
image ``permutation(epoch)[j mod n]`` with its augmentation drawn from a generator seeded by
(seed, j), so the data order depends on nothing but the seed and the iteration. A checkpoint
holds the weights, the optimiser's momentum, the iteration and the random state; it is written to
a temporary file and renamed, so a crash never leaves a half-written one.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from deeplab_ref.data.transforms import IGNORE_INDEX, train_transform
from deeplab_ref.models import DeepLabV2, param_groups
from deeplab_ref.presets import TrainConfig, build_dataset, build_model

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.jsonl"
# Fields that define the network: a checkpoint whose values differ belongs to another model.
MODEL_FIELDS = ("backbone", "head", "msc", "backbone_options", "num_classes")


def poly_learning_rate(base_lr: float, iteration: int, max_iter: int, power: float = 0.9) -> float:
    """The paper's "poly" policy: base_lr (1 - iteration / max_iter) ** power."""
    if not 0 <= iteration <= max_iter:
        raise ValueError(f"iteration must be in [0, max_iter={max_iter}], got {iteration}")
    return base_lr * (1 - iteration / max_iter) ** power


def downsample_labels(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Labels (N, H, W) -> (N, h, w) by nearest neighbour, corners aligned like the scores: score
    i of h sits over pixel i (H - 1) / (h - 1) (exactly 8 i for 321 -> 41)."""
    rows = _nearest_indices(labels.shape[-2], size[0], labels.device)
    cols = _nearest_indices(labels.shape[-1], size[1], labels.device)
    return labels[:, rows[:, None], cols[None, :]]


def _nearest_indices(source: int, target: int, device: torch.device) -> torch.Tensor:
    if target == 1:
        return torch.zeros(1, dtype=torch.long, device=device)
    positions = (
        torch.arange(target, device=device, dtype=torch.float64) * (source - 1) / (target - 1)
    )
    return positions.round().long()


def deeplab_loss(outputs: torch.Tensor | list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (255 ignored) of each score map against the labels subsampled to its size,
    summed over the maps (MSC: fused, 1, 0.75, 0.5). Each term is a mean over the valid pixels;
    a crop with no valid pixel contributes 0, not NaN."""
    outputs = outputs if isinstance(outputs, list) else [outputs]
    total = outputs[0].new_zeros((), dtype=torch.float32)
    for scores in outputs:
        target = downsample_labels(labels, tuple(scores.shape[-2:]))
        summed = F.cross_entropy(scores.float(), target, ignore_index=IGNORE_INDEX, reduction="sum")
        total = total + summed / (target != IGNORE_INDEX).sum().clamp(min=1)
    return total


class TrainSamples(Dataset):
    """Sample j of a run: the image at position j mod n of epoch j // n's permutation, augmented
    with a generator seeded by (seed, j). Any worker, any resume point, the same sample."""

    def __init__(self, dataset: Dataset, config: TrainConfig) -> None:
        self.dataset = dataset
        self.config = config
        self._epoch, self._order = -1, torch.empty(0)

    def __len__(self) -> int:
        return self.config.max_iter * self.config.batch_size

    def __getitem__(self, sample: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self.dataset)
        epoch = sample // n
        if epoch != self._epoch:
            seeded = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
            self._epoch, self._order = epoch, torch.randperm(n, generator=seeded)
        image, label = self.dataset.load_raw(int(self._order[sample % n]))
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_000_007 + sample)
        config = self.config
        transform = train_transform(
            config.crop_size, tuple(config.scale_range), config.normalization, generator
        )
        return transform(image, label)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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


def _check_same_model(path: Path, saved: dict, config: TrainConfig) -> None:
    current = config.to_dict()
    different = [f for f in MODEL_FIELDS if saved.get(f) != current[f]]
    if different:
        details = ", ".join(f"{f}: {saved.get(f)!r} != {current[f]!r}" for f in different)
        raise ValueError(f"checkpoint {path} was saved from another model ({details})")


def train(
    config: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
) -> DeepLabV2:
    """Train ``config`` and write ``checkpoint.pt`` and ``log.jsonl`` into ``out_dir``.

    Args:
        resume: continue from ``out_dir/checkpoint.pt`` (same learning rate, same data order,
            the same result as an uninterrupted run).
        stop_after: stop (with a checkpoint) after this many iterations of this call; for tests
            and for splitting a long run.
        progress: show a tqdm bar with the loss and the learning rate.

    Returns:
        The trained model, in evaluation mode.
    """
    config.validate()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out_dir / CHECKPOINT_NAME
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    model = build_model(config)
    optimizer = torch.optim.SGD(
        param_groups(model, config.base_lr, config.weight_decay), momentum=config.momentum
    )
    start = 0
    if resume:
        if not checkpoint_path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {checkpoint_path}")
        state = load_checkpoint(checkpoint_path, model, optimizer)
        _check_same_model(checkpoint_path, state["config"], config)
        start = state["iteration"]
        torch.set_rng_state(state["cpu_rng"])
    model.to(device)
    _move_optimizer_state(optimizer, device)
    on_gpu = device.type == "cuda"
    if on_gpu and config.channels_last:
        model.to(memory_format=torch.channels_last)

    end = config.max_iter if stop_after is None else min(config.max_iter, start + stop_after)
    micro_batch = config.batch_size // config.accumulation
    samples = TrainSamples(build_dataset(config, "train"), config)
    loader = DataLoader(
        samples,
        batch_size=micro_batch,
        sampler=range(start * config.batch_size, end * config.batch_size),
        num_workers=config.workers,
        pin_memory=on_gpu,
        persistent_workers=config.workers > 0,
    )
    batches = iter(loader)
    model.train()
    bar = tqdm(range(start, end), initial=start, total=config.max_iter, disable=not progress)
    with open(out_dir / LOG_NAME, "a" if resume else "w") as log:
        for iteration in bar:
            factor = poly_learning_rate(1.0, iteration, config.max_iter, config.power)
            for group in optimizer.param_groups:
                group["lr"] = config.base_lr * group["lr_mult"] * factor
            loss_value = 0.0
            for _ in range(config.accumulation):
                images, labels = next(batches)
                images, labels = images.to(device, non_blocking=True), labels.to(device)
                if on_gpu and config.channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, torch.bfloat16, enabled=on_gpu and config.bf16):
                    loss = deeplab_loss(model(images), labels) / config.accumulation
                loss.backward()
                loss_value += loss.item()
            if not math.isfinite(loss_value):
                raise FloatingPointError(f"the loss became {loss_value} at iteration {iteration}")
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            lr = config.base_lr * factor
            bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.2e}")
            if (iteration + 1) % config.log_every == 0 or iteration + 1 == end:
                record = {"iteration": iteration + 1, "loss": loss_value, "lr": lr}
                log.write(json.dumps({**record, "time": time.time()}) + "\n")
                log.flush()
            if (iteration + 1) % config.checkpoint_every == 0 or iteration + 1 == end:
                save_checkpoint(checkpoint_path, model, optimizer, iteration + 1, config)
    bar.close()
    return model.eval()


def _move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                state[key] = value.to(device)


def read_log(out_dir: str | Path) -> list[dict]:
    """The JSON-lines training log of ``out_dir`` as a list of records."""
    with open(Path(out_dir) / LOG_NAME) as log:
        return [json.loads(line) for line in log if line.strip()]


def load_trained_model(path: str | Path) -> tuple[DeepLabV2, TrainConfig]:
    """The model a ``train`` checkpoint holds, rebuilt from the settings saved with it, in
    evaluation mode (no ImageNet file needed: the checkpoint has every weight)."""
    path, state = _read_checkpoint(path)
    config = TrainConfig.from_dict({**state["config"], "imagenet_weights": None})
    model = build_model(config)
    load_checkpoint(path, model)
    return model.eval(), config
