"""Data parallelism over several processes, the PyTorch way: ``torchrun`` and
``DistributedDataParallel`` (DDP).

The paper trains with batches of 10 for 20,000 iterations (Sec. 4.1.2; the released ResNet-101
solver as 10 accumulated passes of one image); data parallelism spreads each batch over several
GPUs. Every process holds a whole copy of the network, runs the forward and backward passes on
its share of the batch, and DDP combines the gradients across processes (an all-reduce,
overlapped with the backward pass), so every copy takes the same SGD step. Batch normalisation
is frozen (as in the released DeepLab-v2), so no statistic has to be synchronised between
processes: the gradient of the batch is the sum of the gradients of its shares, exactly (up to
the order of floating-point additions).

``torchrun --nproc_per_node=N -m deeplab_ref train ...`` starts N processes and gives each the
variables RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT; ``process_group`` reads
them. Without them (a plain ``python -m deeplab_ref``) there is one process, ``rank() == 0`` and
``world_size() == 1``: one share is the whole batch, and sums over processes change nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.distributed as dist

TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def world_size() -> int:
    """The number of processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    """This process's index, 0 ... world_size() - 1 (0 without a process group)."""
    return dist.get_rank() if dist.is_initialized() else 0


def is_main_process() -> bool:
    """True on the process that writes files and prints: rank 0."""
    return rank() == 0


def local_rank() -> int:
    """This process's index on its machine: which GPU it drives."""
    return int(os.environ.get("LOCAL_RANK", 0)) if dist.is_initialized() else 0


@contextmanager
def process_group() -> Iterator[None]:
    """Join the process group ``torchrun`` describes in the environment, for the duration of the
    block; do nothing when not started by torchrun (or when a group already exists).

    Tensors on the CPU travel by gloo and tensors on a GPU by NCCL, so one group serves both the
    gradients (on the GPU) and the confusion matrices (NumPy, on the CPU)."""
    launched = all(name in os.environ for name in TORCHRUN_VARIABLES)
    if not launched or dist.is_initialized():
        yield
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        backend = "cpu:gloo,cuda:nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend)
    try:
        yield
    finally:
        dist.destroy_process_group()


def resolve_device(name: str) -> torch.device:
    """``auto``: the GPU when there is one, else the CPU. Under torchrun, ``auto`` and ``cuda``
    mean this process's GPU, cuda:LOCAL_RANK; naming one GPU for every process is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be cpu, cuda, cuda:N or auto, got {name!r}") from error
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu, cuda, cuda:N or auto, got {name!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={name!r}, but this machine has no CUDA GPU (or this torch is a CPU "
                "build): use cpu or auto"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={name!r}, but this machine has {torch.cuda.device_count()} GPU(s): "
                f"cuda:0 .. cuda:{torch.cuda.device_count() - 1}"
            )
    if device.type == "cuda" and world_size() > 1:
        if device.index is not None:
            raise ValueError(
                f"device={name!r}: under torchrun give 'cuda' or 'auto'; each process then "
                "takes the GPU of its LOCAL_RANK"
            )
        device = torch.device("cuda", local_rank())
    return device


def batch_share(
    batch_size: int,
    accumulation: int = 1,
    process: int | None = None,
    processes: int | None = None,
) -> tuple[int, int]:
    """Process ``process``'s slice [start, stop) of a global batch of ``batch_size`` split over
    ``processes`` (default: this process, in the current group): contiguous and as even as
    possible (10 over 4 processes: 2, 3, 2, 3 images). Raises ValueError unless every process
    gets at least ``accumulation`` images (one per forward pass)."""
    process = rank() if process is None else process
    processes = world_size() if processes is None else processes
    if batch_size // processes < accumulation:
        raise ValueError(
            f"batch_size={batch_size} cannot be split over {processes} processes with "
            f"accumulation={accumulation}: each process needs at least {accumulation} image(s) "
            f"per step (batch_size >= {processes * accumulation})"
        )
    return process * batch_size // processes, (process + 1) * batch_size // processes


def shard(indices: Sequence[int]) -> Sequence[int]:
    """This process's share of ``indices`` for evaluation: every world_size()-th item."""
    return indices[rank() :: world_size()]


def sum_tensor_over_processes(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor``, replaced in place by its sum over all processes (an all-reduce)."""
    if world_size() > 1:
        dist.all_reduce(tensor)
    return tensor


def sum_over_processes(arrays: Sequence[np.ndarray]) -> None:
    """Replace each array, in place, by its sum over all processes (an all-reduce)."""
    if world_size() == 1 or not arrays:
        return  # nothing to add: spare the copies
    stacked = sum_tensor_over_processes(torch.from_numpy(np.stack(arrays)))
    for array, total in zip(arrays, stacked.numpy(), strict=True):
        array[...] = total


def barrier() -> None:
    """Wait until every process gets here (no-op on one process)."""
    if world_size() > 1:
        dist.barrier()
