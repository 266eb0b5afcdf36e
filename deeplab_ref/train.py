"""Training DeepLab-v2 (Sec. 4 and 4.1), with the released configurations' details where the
paper's text is silent.

* SGD with momentum 0.9 and weight decay 5e-4 (the paper's, Sec. 4.1.1); batch 10 (the paper's,
  Sec. 4.1.2; the released ResNet-101 solver reaches it as 1 image x iter_size 10).
  ``accumulation`` splits it into smaller forward passes when memory is short, and ``torchrun``
  over several processes (``deeplab_ref.distributed``); either way the gradient is the batch's.
* The "poly" learning rate ``base_lr * (1 - iteration / max_iter) ** 0.9`` (the paper's, Table 2:
  ~1 point better than "step"); the classifier at 10x (weights) and 20x (biases), see
  ``param_groups``.
* Frozen batch normalisation (the released ResNet-101 configuration's; the paper does not mention
  it): the backbones build it frozen.
* The loss: per-pixel cross-entropy, label 255 ignored, on the output-stride-8 scores against the
  labels subsampled by 8 (the paper's, Sec. 4), by nearest neighbour; with multi-scale inputs
  summed over each scale's scores and the fused ones (the released configuration's four losses).
* Augmentation: random scaling (the paper's 0.5-1.5 for ResNet-101, drawn from the released
  discrete set in the preset; none for VGG-16), a 321x321 crop padded with the mean and 255, and
  flips (the released configurations').

Runs are reproducible and resumable exactly: sample j of the run (j = iteration * batch + k) is
image ``permutation(epoch)[j mod n]`` with its augmentation drawn from a generator seeded by
(seed, j), so the data order depends on nothing but the seed and the iteration, not on how many
processes share the batch. Checkpoints (``deeplab_ref.checkpoint``) hold the weights, the
optimiser's momentum, the iteration and the random state.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from deeplab_ref import distributed
from deeplab_ref.checkpoint import (
    CHECKPOINT_NAME,
    check_resumable,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from deeplab_ref.data.transforms import train_transform
from deeplab_ref.models import DeepLabV2
from deeplab_ref.presets import TrainConfig, build_dataset, build_model
from deeplab_ref.run_control import Progress, StopRequests, TrainingInterrupted
from deeplab_ref.train_step import TrainingStep, build_optimizer

LOG_NAME = "log.jsonl"


def poly_learning_rate(base_lr: float, iteration: int, max_iter: int, power: float = 0.9) -> float:
    """The paper's "poly" policy: base_lr (1 - iteration / max_iter) ** power."""
    if not 0 <= iteration <= max_iter:
        raise ValueError(f"iteration must be in [0, max_iter={max_iter}], got {iteration}")
    return base_lr * (1 - iteration / max_iter) ** power


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
            config.crop_size, config.scale_range, config.normalization, generator, config.scales
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
    overwrite: bool = False,
) -> DeepLabV2:
    """Train ``config`` and write ``checkpoint.pt`` and ``log.jsonl`` into ``out_dir``.

    Under ``torchrun`` (a process group, see ``deeplab_ref.distributed``) every process calls
    this; each runs its share of every batch, DistributedDataParallel sums the gradients, and
    only rank 0 writes the checkpoint and the log and shows the progress. The result is the one
    process's, up to floating-point rounding, whatever the number of processes.

    Ctrl-C or SIGTERM finishes the current step, writes a checkpoint and raises
    ``TrainingInterrupted`` (every process stops at the same iteration).

    Args:
        resume: continue from ``out_dir/checkpoint.pt``: the same weights, momentum, learning
            rate, data order and random state as an uninterrupted run, bit for bit on one
            process. Every setting that changes the result must equal the checkpoint's.
        stop_after: stop (with a checkpoint) after this many iterations of this call; for tests
            and for splitting a long run.
        progress: report progress (a bar on a terminal, plain lines otherwise).
        overwrite: start again in an ``out_dir`` that holds a checkpoint (else ValueError).

    Returns:
        The trained model, in evaluation mode.
    """
    config.validate()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file: the run needs a folder")
    checkpoint_path = out_dir / CHECKPOINT_NAME
    main_process, processes = distributed.is_main_process(), distributed.world_size()
    device = distributed.resolve_device(config.device)
    torch.manual_seed(config.seed)
    model = build_model(config).to(device)
    optimizer = build_optimizer(model, config)
    start = _restore(checkpoint_path, config, model, optimizer, resume, overwrite, device)
    if not main_process:  # dropout masks must differ between processes, which see other images
        torch.manual_seed(config.seed * 1_000_003 + distributed.rank() * 1_009 + start)
    step = TrainingStep(model, optimizer, config, device, processes)

    end = config.max_iter if stop_after is None else min(config.max_iter, start + stop_after)
    loader = DataLoader(
        TrainSamples(build_dataset(config, "train"), config),
        batch_sampler=forward_passes(config, start, end),
        num_workers=config.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=config.workers > 0,
        # Its own generator: drawing the workers' seed from the global one would shift every
        # later dropout mask, and the resumed run's masks would differ from the straight run's.
        generator=torch.Generator(),
    )
    batches = iter(loader)
    model.train()
    if main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        _cut_log(out_dir / LOG_NAME, start)
    report = Progress(start, config.max_iter, config.log_every, progress and main_process)
    log = open(out_dir / LOG_NAME, "a") if main_process else nullcontext()
    with log, StopRequests() as stop:
        for iteration in range(start, end):
            lr = step.set_learning_rate(
                poly_learning_rate(1.0, iteration, config.max_iter, config.power)
            )
            pieces = [next(batches) for _ in range(config.accumulation)]
            try:
                loss_value, interrupted = step(pieces, stop.requested)
            except FloatingPointError as error:
                raise FloatingPointError(f"{error} at iteration {iteration}") from error
            done = iteration + 1
            if main_process:
                report.update(done, loss_value, lr)
                if done % config.log_every == 0 or done == end or interrupted:
                    record = {"iteration": done, "loss": loss_value, "lr": lr}
                    log.write(json.dumps({**record, "time": time.time()}) + "\n")
                    log.flush()
                if done % config.checkpoint_every == 0 or done == end or interrupted:
                    save_checkpoint(checkpoint_path, model, optimizer, done, config)
            if interrupted:
                report.close()
                distributed.barrier()
                raise TrainingInterrupted(done, stop.signal_name or "another process")
    report.close()
    distributed.barrier()  # the last checkpoint is on disk before any process returns
    return model.eval()


def _restore(
    checkpoint_path: Path,
    config: TrainConfig,
    model: DeepLabV2,
    optimizer: torch.optim.Optimizer,
    resume: bool,
    overwrite: bool,
    device: torch.device,
) -> int:
    """Load the checkpoint to resume from (checked against ``config``) and return its iteration;
    0 for a new run, which may not replace an existing checkpoint unless ``overwrite``."""
    if not resume:
        if checkpoint_path.is_file() and not overwrite:
            state = read_checkpoint(checkpoint_path)
            saved = state["config"]
            raise ValueError(
                f"{checkpoint_path.parent} already holds a run (iteration {state['iteration']} of "
                f"{saved.get('max_iter')}, preset {saved.get('preset')}): continue it with "
                "--resume, start again with --overwrite, or choose another --out"
            )
        return 0
    if not checkpoint_path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {checkpoint_path}")
    state = read_checkpoint(checkpoint_path)
    check_resumable(checkpoint_path, state, config)
    load_checkpoint(checkpoint_path, model, optimizer)
    torch.set_rng_state(state["cpu_rng"])
    if device.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    return state["iteration"]


def _cut_log(path: Path, iteration: int) -> None:
    """Keep only the log records up to ``iteration`` (all of them gone for a new run), so that
    after a resume each iteration appears once, whatever a killed run had logged past its last
    checkpoint. Rewritten atomically, like the checkpoint."""
    kept = (
        [r for r in read_log(path.parent) if r["iteration"] <= iteration] if path.exists() else []
    )
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text("".join(json.dumps(record) + "\n" for record in kept))
    os.replace(temporary, path)


def read_log(out_dir: str | Path) -> list[dict]:
    """The JSON-lines training log of ``out_dir`` as a list of records."""
    with open(Path(out_dir) / LOG_NAME) as log:
        return [json.loads(line) for line in log if line.strip()]
