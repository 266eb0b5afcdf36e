"""Training DeepLab-v2 with the paper's recipe (Sec. 4, "Training" and Sec. 4.1).

* SGD with momentum 0.9 and weight decay 5e-4; batch 10 (``accumulation`` splits it into smaller
  forward passes when memory is short, and ``torchrun`` over several processes, see
  ``deeplab_ref.distributed``; either way the gradient is the batch's).
* The "poly" learning rate ``base_lr * (1 - iteration / max_iter) ** 0.9`` (Table 2: ~1 point
  better than "step"); the classifier at 10x (weights) and 20x (biases), see ``param_groups``.
* Frozen batch normalisation (the backbones build it frozen).
* The loss: per-pixel cross-entropy, label 255 ignored, on the output-stride-8 scores against the
  labels subsampled by nearest neighbour, summed over every MSC scale and the fused scores.
* Augmentation: random scale in [0.5, 1.5], a 321x321 crop padded with the mean and 255, flips.

Runs are reproducible and resumable exactly: sample j of the run (j = iteration * batch + k) is
image ``permutation(epoch)[j mod n]`` with its augmentation drawn from a generator seeded by
(seed, j), so the data order depends on nothing but the seed and the iteration, not on how many
processes share the batch. Checkpoints (``deeplab_ref.checkpoint``) hold the weights, the
optimiser's momentum, the iteration and the random state.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from deeplab_ref import distributed
from deeplab_ref.checkpoint import (
    CHECKPOINT_NAME,
    check_same_model,
    load_checkpoint,
    save_checkpoint,
)
from deeplab_ref.data.transforms import IGNORE_INDEX, train_transform
from deeplab_ref.models import DeepLabV2, param_groups
from deeplab_ref.presets import TrainConfig, build_dataset, build_model

LOG_NAME = "log.jsonl"


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


def valid_pixel_counts(labels: torch.Tensor, sizes: list[tuple[int, int]]) -> torch.Tensor:
    """For each score size, how many of ``labels`` (N, H, W) subsampled to it are not 255."""
    return torch.stack([(downsample_labels(labels, size) != IGNORE_INDEX).sum() for size in sizes])


def deeplab_loss(
    outputs: torch.Tensor | list[torch.Tensor],
    labels: torch.Tensor,
    valid_pixels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy (255 ignored) of each score map against the labels subsampled to its size,
    summed over the maps (MSC: fused, 1, 0.75, 0.5). Each term is a mean over the valid pixels;
    a crop with no valid pixel contributes 0, not NaN.

    ``valid_pixels`` (one count per map) replaces this batch's own counts when the batch is one
    piece of a larger one (accumulation, several processes): every piece then divides by the
    whole batch's count, and the pieces' losses and gradients add up to the whole batch's."""
    outputs = outputs if isinstance(outputs, list) else [outputs]
    total = outputs[0].new_zeros((), dtype=torch.float32)
    for index, scores in enumerate(outputs):
        target = downsample_labels(labels, tuple(scores.shape[-2:]))
        summed = F.cross_entropy(scores.float(), target, ignore_index=IGNORE_INDEX, reduction="sum")
        count = (target != IGNORE_INDEX).sum() if valid_pixels is None else valid_pixels[index]
        total = total + summed / count.clamp(min=1)
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


def forward_passes(config: TrainConfig, start: int, end: int) -> list[list[int]]:
    """The samples this process reads, one list per forward pass, for iterations start ... end-1.
    Iteration i's batch is samples i B ... (i + 1) B - 1 (B = batch_size); this process takes its
    share of it (``distributed.batch_share``) in ``accumulation`` near-equal pieces."""
    first, last = distributed.batch_share(config.batch_size, config.accumulation)
    pieces = torch.arange(first, last).tensor_split(config.accumulation)
    return [
        (iteration * config.batch_size + piece).tolist()
        for iteration in range(start, end)
        for piece in pieces
    ]


def train(
    config: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
) -> DeepLabV2:
    """Train ``config`` and write ``checkpoint.pt`` and ``log.jsonl`` into ``out_dir``.

    Under ``torchrun`` (a process group, see ``deeplab_ref.distributed``) every process calls
    this; each runs its share of every batch, DistributedDataParallel sums the gradients, and
    only rank 0 writes the checkpoint and the log and shows the bar. The result is the one
    process's, up to floating-point rounding, whatever the number of processes.

    Args:
        resume: continue from ``out_dir/checkpoint.pt`` (same learning rate, same data order,
            the same result as an uninterrupted run, on any number of processes).
        stop_after: stop (with a checkpoint) after this many iterations of this call; for tests
            and for splitting a long run.
        progress: show a tqdm bar with the loss and the learning rate.

    Returns:
        The trained model, in evaluation mode.
    """
    config.validate()
    out_dir = Path(out_dir)
    checkpoint_path = out_dir / CHECKPOINT_NAME
    main_process, processes = distributed.is_main_process(), distributed.world_size()
    device = distributed.resolve_device(config.device)
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
        check_same_model(checkpoint_path, state["config"], config)
        start = state["iteration"]
        torch.set_rng_state(state["cpu_rng"])
    if not main_process:  # dropout masks must differ between processes, which see other images
        torch.manual_seed(config.seed * 1_000_003 + distributed.rank() * 1_009 + start)
    model.to(device)
    _move_optimizer_state(optimizer, device)
    on_gpu = device.type == "cuda"
    if on_gpu and config.channels_last:
        model.to(memory_format=torch.channels_last)
    # DDP averages the gradients over processes, but each process's loss below is already its
    # share of the whole batch's loss (divided by the batch's pixel count): scaling it by the
    # number of processes turns the average back into the batch's gradient.
    network = model if processes == 1 else DistributedDataParallel(model)

    end = config.max_iter if stop_after is None else min(config.max_iter, start + stop_after)
    loader = DataLoader(
        TrainSamples(build_dataset(config, "train"), config),
        batch_sampler=forward_passes(config, start, end),
        num_workers=config.workers,
        pin_memory=on_gpu,
        persistent_workers=config.workers > 0,
    )
    batches = iter(loader)
    model.train()
    if main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
    bar = tqdm(
        range(start, end),
        initial=start,
        total=config.max_iter,
        disable=not (progress and main_process),
    )
    with open(out_dir / LOG_NAME, "a" if resume else "w") if main_process else nullcontext() as log:
        for iteration in bar:
            factor = poly_learning_rate(1.0, iteration, config.max_iter, config.power)
            for group in optimizer.param_groups:
                group["lr"] = config.base_lr * group["lr_mult"] * factor
            pieces = [
                [tensor.to(device, non_blocking=True) for tensor in next(batches)]
                for _ in range(config.accumulation)
            ]
            loss_value = torch.zeros((), device=device)
            for piece, (images, labels) in enumerate(pieces):
                if on_gpu and config.channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                last = piece == len(pieces) - 1
                # Gradients are exchanged once per step, after the last forward pass.
                with nullcontext() if last or processes == 1 else network.no_sync():
                    with torch.autocast(
                        device.type, torch.bfloat16, enabled=on_gpu and config.bf16
                    ):
                        outputs = network(images)
                        if piece == 0:
                            valid_pixels = _batch_valid_pixels(outputs, pieces)
                        loss = deeplab_loss(outputs, labels, valid_pixels)
                    (loss * processes).backward()
                loss_value += loss.detach()
            loss_value = distributed.sum_tensor_over_processes(loss_value).item()
            if not math.isfinite(loss_value):
                raise FloatingPointError(f"the loss became {loss_value} at iteration {iteration}")
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            lr = config.base_lr * factor
            bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.2e}")
            if not main_process:
                continue
            if (iteration + 1) % config.log_every == 0 or iteration + 1 == end:
                record = {"iteration": iteration + 1, "loss": loss_value, "lr": lr}
                log.write(json.dumps({**record, "time": time.time()}) + "\n")
                log.flush()
            if (iteration + 1) % config.checkpoint_every == 0 or iteration + 1 == end:
                save_checkpoint(checkpoint_path, model, optimizer, iteration + 1, config)
    bar.close()
    distributed.barrier()  # the last checkpoint is on disk before any process returns
    return model.eval()


def _batch_valid_pixels(
    outputs: torch.Tensor | list[torch.Tensor], pieces: list[list[torch.Tensor]]
) -> torch.Tensor:
    """The whole step's count of valid pixels at each score size: over this process's forward
    passes, summed over the processes."""
    outputs = outputs if isinstance(outputs, list) else [outputs]
    sizes = [tuple(scores.shape[-2:]) for scores in outputs]
    counts = sum(valid_pixel_counts(labels, sizes) for _, labels in pieces)
    return distributed.sum_tensor_over_processes(counts)


def _move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                state[key] = value.to(device)


def read_log(out_dir: str | Path) -> list[dict]:
    """The JSON-lines training log of ``out_dir`` as a list of records."""
    with open(Path(out_dir) / LOG_NAME) as log:
        return [json.loads(line) for line in log if line.strip()]
