"""One SGD step of the recipe (Sec. 4, "Training"), shared by the trainer and the benchmark.

A step takes the batch in pieces (``accumulation`` forward passes on each process), runs the
forward pass under bf16 autocast where the hardware computes bf16 natively (a GPU, or a CPU with
AVX-512 BF16 or AMX: 42 -> 24 ms a CPU-preset step on this project's 2-core machine) and with
channels-last memory on a GPU, divides each piece's loss by
the whole batch's count of valid pixels (so the pieces add up to the batch's loss exactly, see
``deeplab_ref.loss``), exchanges gradients once (DistributedDataParallel, after the last piece)
and steps SGD. ``benchmarks/train_throughput.py`` times this very object, so the speed it reports
is the trainer's.

The speed levers the benchmark measured are settings of ``TrainConfig``: ``compile`` (the forward
through ``torch.compile``; ``compile_mode="reduce-overhead"`` adds CUDA graphs), ``fused_sgd`` (one
kernel for the whole optimiser step, on CUDA) and ``cudnn_benchmark``. They change the rounding,
not the computation.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from deeplab_ref import distributed
from deeplab_ref.loss import deeplab_loss, valid_pixel_counts
from deeplab_ref.models import DeepLabV2, param_groups
from deeplab_ref.presets import TrainConfig


class SupervisedScores(nn.Module):
    """The model's ``supervised_scores`` as a module's forward, so that DistributedDataParallel
    and ``torch.compile``, which wrap a forward, see the call."""

    def __init__(self, model: DeepLabV2) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.model.supervised_scores(images)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: a CUDA GPU that supports it, or a CPU with
    AVX-512 BF16 or AMX. Elsewhere bf16 is emulated and slower than fp32, so it stays off."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def build_optimizer(model: DeepLabV2, config: TrainConfig) -> torch.optim.SGD:
    """SGD with momentum over the paper's parameter groups; fused on CUDA when configured.
    Build it after the model is on its device (a fused optimiser checks where its tensors are)."""
    on_gpu = next(model.parameters()).device.type == "cuda"
    return torch.optim.SGD(
        param_groups(model, config.base_lr, config.weight_decay),
        momentum=config.momentum,
        fused=True if on_gpu and config.fused_sgd else None,
    )


class TrainingStep:
    """``step(pieces, stop_requested)`` trains one batch given as a list of (images, labels)
    pieces on ``device``; returns the batch's loss (summed over the processes) and whether any
    process asked to stop. ``set_learning_rate`` applies the poly factor to every group."""

    def __init__(
        self,
        model: DeepLabV2,
        optimizer: torch.optim.Optimizer,
        config: TrainConfig,
        device: torch.device,
        processes: int = 1,
    ) -> None:
        self.model, self.optimizer, self.config, self.device = model, optimizer, config, device
        self.processes = processes
        self.on_gpu = device.type == "cuda"
        self.bf16 = config.bf16 and native_bf16(device)
        self.channels_last = self.on_gpu and config.channels_last
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        if self.on_gpu:
            torch.backends.cudnn.benchmark = config.cudnn_benchmark
        network = SupervisedScores(model)
        self.network = network if processes == 1 else DistributedDataParallel(network)
        self.forward = (
            torch.compile(self.network, mode=config.compile_mode)
            if config.compile
            else self.network
        )

    def set_learning_rate(self, factor: float) -> float:
        """Every group at ``base_lr * lr_mult * factor``; returns the base group's rate."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.base_lr * group["lr_mult"] * factor
        return self.config.base_lr * factor

    def __call__(
        self, pieces: list[tuple[torch.Tensor, torch.Tensor]], stop_requested: bool = False
    ) -> tuple[float, bool]:
        loss_value = torch.zeros((), device=self.device)
        valid_pixels = None
        for piece, (images, labels) in enumerate(pieces):
            images, labels = images.to(self.device, non_blocking=True), labels.to(self.device)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            last = piece == len(pieces) - 1
            # Gradients are exchanged once per step, after the last forward pass.
            with nullcontext() if last or self.processes == 1 else self.network.no_sync():
                with torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16):
                    outputs = self.forward(images)
                    if valid_pixels is None:
                        valid_pixels = _batch_valid_pixels(outputs, pieces, self.device)
                    loss = deeplab_loss(outputs, labels, valid_pixels)
                # DDP averages the gradients over processes, but each process's loss is already
                # its share of the whole batch's loss: scaling it by the number of processes
                # turns the average back into the batch's gradient.
                (loss * self.processes).backward()
            loss_value += loss.detach()
        # One exchange gives every process the batch's loss and whether any was asked to stop.
        stop = torch.tensor(float(stop_requested), device=self.device)
        total, stops = distributed.sum_tensor_over_processes(torch.stack([loss_value, stop]))
        if not torch.isfinite(total):
            raise FloatingPointError(f"the loss became {total.item()}")
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total.item(), stops.item() > 0


def _batch_valid_pixels(
    outputs: list[torch.Tensor],
    pieces: list[tuple[torch.Tensor, torch.Tensor]],
    device: torch.device,
) -> torch.Tensor:
    """The whole step's count of valid pixels at each score size: over this process's forward
    passes, summed over the processes."""
    sizes = [tuple(scores.shape[-2:]) for scores in outputs]
    counts = sum(valid_pixel_counts(labels.to(device), sizes) for _, labels in pieces)
    return distributed.sum_tensor_over_processes(counts)
