"""Training throughput of DeepLab-v2 ResNet-101 ASPP-L (Sec. 4) beside torchvision's DeepLab-v3.

Run: ``python benchmarks/train_throughput.py [--device cuda] [--compile]``; ``--tiny`` runs a
CPU-sized network (one bottleneck per stage, 8 channels) in seconds, for the smoke test.

Every iteration of DeepLab-v2 is the trainer's own step, ``deeplab_ref.train_step.TrainingStep``,
under the row's ``TrainConfig`` speed settings: forward, the loss (``deeplab_loss``: every MSC
scale and the fused scores), backward, SGD (momentum 0.9) with the released solvers' parameter
groups, the loss read back. Inputs are random crops already on the device; the data pipeline is measured apart
below. The peer, ``torchvision.models.segmentation.deeplabv3_resnet101`` (random weights, no
auxiliary loss, its own trainable batch norm), trains with cross-entropy on its full-resolution
scores in a step of the same shape; it runs when torchvision is importable.

Each row: images per second (batch x iterations / the median time of several synchronised runs,
after warm-up), milliseconds per step, peak memory (``torch.cuda.max_memory_allocated``) and the
achieved FLOP/s: the FLOPs of one training step counted by torch's ``FlopCounterMode``
(convolutions and matrix products, forward and backward) over the median step time. The forward
count is checked against 2 x the library's ``multiply_adds``. "x v3" is images/s over the peer's
in the same setting; "200k crops" the recipe's time at that rate. Settings on the GPU, one lever
added per row: fp32 (PyTorch's default, TF32 convolutions), bf16 autocast with channels-last
memory, cudnn.benchmark, fused SGD and, with ``--compile``, torch.compile of the forward (then also
with CUDA graphs, its "reduce-overhead" mode, on the MSC model).

The data pipeline: the trainer's ``TrainSamples`` (the released configurations' augmentation) over
VOC-layout JPEG and PNG files of 500x375 synthetic scenes, through a DataLoader with several worker counts.

Goal: the 20,000-iteration VOC recipe (200,000 MSC crops) in 20 GPU minutes, i.e.
167 images/s with MSC (170 in round figures). Measured figures, with the machine and the
versions: ``benchmarks/results/train_throughput.md`` (``--results`` writes a run's table there).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from deeplab_ref.data import SyntheticSegmentation
from deeplab_ref.data.transforms import IGNORE_INDEX
from deeplab_ref.data.voc import write_label
from deeplab_ref.loss import deeplab_loss
from deeplab_ref.models import deeplab_v2, multiply_adds
from deeplab_ref.presets import TrainConfig, build_dataset
from deeplab_ref.train import TrainSamples
from deeplab_ref.train_step import TrainingStep, build_optimizer

RECIPE_IMAGES = 200_000  # 20,000 iterations x batch 10
GOAL_MINUTES = 20
NUM_CLASSES = 21
BASE_LR, WEIGHT_DECAY = 2.5e-4, 5e-4
# --tiny: ResNet-101's layout with one bottleneck per stage, 8 channels wide.
TINY_BACKBONE = {"blocks": (1, 1, 1, 1), "width": 8}


@dataclass(frozen=True)
class Setting:
    """The speed levers of one row."""

    bf16: bool = False
    channels_last: bool = False
    cudnn_benchmark: bool = False
    fused_sgd: bool = False
    compile: bool = False
    cuda_graphs: bool = False  # torch.compile's "reduce-overhead" mode

    def train_config(self) -> TrainConfig:
        """The trainer's settings for this row."""
        return TrainConfig(
            bf16=self.bf16,
            channels_last=self.channels_last,
            cudnn_benchmark=self.cudnn_benchmark,
            fused_sgd=self.fused_sgd,
            compile=self.compile,
            compile_mode="reduce-overhead" if self.cuda_graphs else None,
            base_lr=BASE_LR,
            weight_decay=WEIGHT_DECAY,
        )

    def label(self) -> str:
        precision = ("bf16 CL" if self.channels_last else "bf16") if self.bf16 else "fp32"
        levers = {
            "bench": self.cudnn_benchmark,
            "fusedSGD": self.fused_sgd,
            "compile": self.compile,
            "graphs": self.cuda_graphs,
        }
        return " ".join([precision, *(name for name, on in levers.items() if on)])


FP32 = Setting()
BF16_CL = Setting(bf16=True, channels_last=True)
BF16_BEST = Setting(bf16=True, channels_last=True, cudnn_benchmark=True, fused_sgd=True)


@dataclass
class Row:
    model: str
    setting: Setting
    images_per_s: float
    spread: float  # (slowest - fastest) / median run time
    peak_gib: float | None
    batch: int
    forward_flops: int  # counted by FlopCounterMode
    backward_flops: int
    twice_multiply_adds: int  # 2 x the library's count, for the forward: the check

    @property
    def flops_per_step(self) -> int:
        return self.forward_flops + self.backward_flops

    def tflops(self) -> float:
        return self.flops_per_step * self.images_per_s / self.batch / 1e12


def build_deeplab_v2(msc: bool, tiny: bool):
    """DeepLab-v2 ResNet-101 ASPP-L and its loss, trained by the trainer's own step."""
    model = deeplab_v2(
        "resnet101", "aspp-l", NUM_CLASSES, msc=msc, **(TINY_BACKBONE if tiny else {})
    )

    def loss(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return deeplab_loss(model.supervised_scores(images), labels)

    return model, loss, None


def build_deeplab_v3(msc: bool, tiny: bool):
    """torchvision's DeepLab-v3 ResNet-101 (output stride 8), random weights, no auxiliary head,
    with its loss and optimiser groups for a step of the same shape as the trainer's."""
    from torchvision.models.segmentation import deeplabv3_resnet101

    model = deeplabv3_resnet101(
        weights=None, weights_backbone=None, num_classes=NUM_CLASSES, aux_loss=False
    )

    def loss(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        scores = model(images)["out"].float()
        return F.cross_entropy(scores, labels, ignore_index=IGNORE_INDEX)

    groups = [{"params": list(model.parameters()), "weight_decay": WEIGHT_DECAY}]
    return model, loss, groups


class PeerStep:
    """The peer's step, shaped like ``TrainingStep``: autocast, loss, backward, SGD, loss read."""

    def __init__(self, model, loss, groups, setting: Setting, device: torch.device) -> None:
        self.model, self.setting, self.device = model, setting, device
        if setting.channels_last:
            model.to(memory_format=torch.channels_last)
        fused = {"fused": True} if setting.fused_sgd else {}
        self.optimizer = torch.optim.SGD(groups, lr=BASE_LR, momentum=0.9, **fused)
        mode = "reduce-overhead" if setting.cuda_graphs else None
        self.loss = torch.compile(loss, mode=mode) if setting.compile else loss

    def __call__(self, pieces: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        ((images, labels),) = pieces
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.setting.bf16):
            loss = self.loss(images, labels)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        loss.item()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TimedStep:
    """One training step of a model under a setting, on fixed random crops (N, 3, S, S) and
    labels (N, S, S) with a strip of ignored pixels, as crops padded past an image's edge have.
    DeepLab-v2 runs the trainer's ``TrainingStep``; the peer a step of the same shape."""

    def __init__(self, builder, msc: bool, setting: Setting, args, device: torch.device) -> None:
        torch.backends.cudnn.benchmark = setting.cudnn_benchmark
        torch.manual_seed(0)
        self.setting, self.device = setting, device
        self.model, self.loss, groups = builder(msc, args.tiny)
        self.model.to(device).train()
        memory_format = torch.channels_last if setting.channels_last else torch.contiguous_format
        images = torch.randn(args.batch, 3, args.size, args.size, device=device)
        self.images = images.contiguous(memory_format=memory_format)
        self.labels = torch.randint(NUM_CLASSES, (args.batch, args.size, args.size), device=device)
        self.labels[:, :, : args.size // 10] = IGNORE_INDEX
        if groups is None:  # DeepLab-v2: the trainer's step and optimiser
            config = setting.train_config()
            self.step = TrainingStep(
                self.model, build_optimizer(self.model, config), config, device
            )
        else:
            self.step = PeerStep(self.model, self.loss, groups, setting, device)

    def __call__(self) -> None:
        self.step([(self.images, self.labels)])

    def count_flops(self) -> tuple[int, int]:
        """FLOPs of the forward (with the loss) and of the backward, counted on the eager model."""
        with FlopCounterMode(display=False) as forward_counter:
            loss = self.loss(self.images, self.labels)
        with FlopCounterMode(display=False) as backward_counter:
            loss.backward()
        self.model.zero_grad(set_to_none=True)
        return forward_counter.get_total_flops(), backward_counter.get_total_flops()

    def twice_multiply_adds(self) -> int:
        """2 x the library's multiply-adds of the batch's forward pass."""
        self.model.eval()  # all MSC scales run in evaluation too; a 1-image batch norm does not
        size = tuple(self.images.shape[-2:])
        count = multiply_adds(self.model, size) * len(self.images)
        self.model.train()
        return 2 * count


def measure(name: str, builder, msc: bool, setting: Setting, args, device) -> Row:
    """Time ``setting`` on one model: median of ``args.runs`` runs after ``args.warmup`` steps."""
    step = TimedStep(builder, msc, setting, args, device)
    forward_flops, backward_flops = step.count_flops()
    twice_macs = step.twice_multiply_adds()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(args.warmup):
        step()
    synchronize(device)
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        for _ in range(args.iters):
            step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    del step
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if setting.compile:
        torch._dynamo.reset()
    median = statistics.median(times)
    return Row(
        model=name,
        setting=setting,
        images_per_s=args.batch * args.iters / median,
        spread=(max(times) - min(times)) / median,
        peak_gib=peak,
        batch=args.batch,
        forward_flops=forward_flops,
        backward_flops=backward_flops,
        twice_multiply_adds=twice_macs,
    )


def cases(device: torch.device, compile_: bool, chosen: list[str], with_peer: bool):
    """(name, builder, msc, settings) for each model ``chosen``."""
    if device.type == "cuda":
        msc_settings = [
            FP32,
            BF16_CL,
            replace(BF16_CL, cudnn_benchmark=True),
            BF16_BEST,
        ]
        other_settings = [FP32, BF16_BEST]
    else:  # the trainer runs fp32 on the CPU
        msc_settings = other_settings = [FP32]
    if compile_:
        compiled = replace(msc_settings[-1], compile=True)
        graphs = replace(compiled, cuda_graphs=True)
        msc_settings, other_settings = (
            [*msc_settings, compiled, graphs],
            [*other_settings, compiled],
        )
    models = {
        "msc": ("DeepLab-v2 MSC", build_deeplab_v2, True, msc_settings),
        "single": ("DeepLab-v2", build_deeplab_v2, False, other_settings),
        "v3": ("tv DeepLab-v3", build_deeplab_v3, False, other_settings),
    }
    return [models[key] for key in chosen if key != "v3" or with_peer]


def write_voc_like(root: Path, count: int, height: int, width: int) -> None:
    """``count`` synthetic scenes as a VOC2012 folder: JPEG images, palette PNG labels, a list."""
    scenes = SyntheticSegmentation("train", length=count, image_size=max(height, width))
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True)
    ids = [f"{index:06d}" for index in range(count)]
    for index, image_id in enumerate(ids):
        image, label = scenes.load_raw(index)
        Image.fromarray(image[:height, :width]).save(
            root / "JPEGImages" / f"{image_id}.jpg", quality=90
        )
        write_label(root / "SegmentationClass" / f"{image_id}.png", label[:height, :width])
    (root / "ImageSets/Segmentation/train.txt").write_text("\n".join(ids) + "\n")


def data_pipeline_rates(args, device: torch.device) -> list[tuple[int, float]]:
    """Images per second the trainer's data path delivers, for each worker count."""
    count, (height, width) = (4, (30, 40)) if args.tiny else (64, (375, 500))
    rates = []
    with tempfile.TemporaryDirectory() as folder:
        write_voc_like(Path(folder), count, height, width)
        for workers in args.data_workers:
            config = TrainConfig(
                dataset="voc",
                data_root=folder,
                train_split="train",
                crop_size=args.size,
                batch_size=args.batch,
                workers=workers,
            )
            samples = TrainSamples(build_dataset(config, "train"), config)
            batches = 2 if args.tiny else 30 * max(workers, 1)
            loader = DataLoader(
                samples,
                batch_size=args.batch,
                sampler=range((batches + 1) * args.batch),
                num_workers=workers,
                pin_memory=device.type == "cuda",
            )
            iterator = iter(loader)
            next(iterator)  # the workers' start-up
            start = time.perf_counter()
            for _ in range(batches):
                next(iterator)
            rates.append((workers, batches * args.batch / (time.perf_counter() - start)))
            del iterator, loader
    return rates


def table_lines(rows: list[Row]) -> list[str]:
    """The Markdown table of ``rows``, one string per line."""
    peers = {row.setting: row.images_per_s for row in rows if row.model == "tv DeepLab-v3"}
    lines = [
        f"| {'model':<15} | {'setting':<38} | {'img/s':>7} | {'spread':>6} | {'ms/step':>8} "
        f"| {'peak GiB':>8} | {'TFLOP/s':>7} | {'x v3':>5} | {'200k crops':>10} |",
        "|" + "|".join("-" * width for width in (17, 40, 9, 8, 10, 10, 9, 7, 12)) + "|",
    ]
    for row in rows:
        peak = "-" if row.peak_gib is None else f"{row.peak_gib:.1f}"
        peer = peers.get(row.setting)
        ratio = "-" if peer is None else f"{row.images_per_s / peer:.2f}"
        minutes = RECIPE_IMAGES / row.images_per_s / 60
        lines.append(
            f"| {row.model:<15} | {row.setting.label():<38} | {row.images_per_s:>7.1f} "
            f"| {row.spread:>5.0%} | {row.batch / row.images_per_s * 1e3:>8.1f} | {peak:>8} "
            f"| {row.tflops():>7.1f} | {ratio:>5} | {minutes:>6.1f} min |"
        )
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="cuda, cpu or auto (cuda when present)")
    parser.add_argument("--size", type=int, default=321, help="crop side, pixels")
    parser.add_argument("--batch", type=int, default=10, help="crops per SGD step")
    parser.add_argument("--iters", type=int, default=10, help="training steps per timed run")
    parser.add_argument("--runs", type=int, default=5, help="timed runs; the median is reported")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument(
        "--compile", action="store_true", help="add torch.compile rows (minutes of compiling)"
    )
    parser.add_argument(
        "--models",
        default="msc,single,v3",
        help="which of msc (DeepLab-v2 with MSC), single (without) and v3 (the peer) to run",
    )
    parser.add_argument(
        "--data-workers",
        default="4,8,15",
        help="DataLoader worker counts to time the data pipeline with; '' skips it",
    )
    parser.add_argument(
        "--tiny", action="store_true", help="CPU smoke size: narrow backbone, 33x33, batch 2"
    )
    parser.add_argument(
        "--results",
        type=Path,
        help="also write the report there (e.g. benchmarks/results/train_throughput.md)",
    )
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.tiny:
        args.device, args.size, args.batch, args.iters, args.runs, args.warmup = (
            "cpu", 33, 2, 1, 2, 1,
        )  # fmt: skip
        args.data_workers = "0"
    args.data_workers = [int(w) for w in args.data_workers.split(",") if w.strip()]
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    if "msc" not in args.models or set(args.models) - {"msc", "single", "v3"}:
        parser.error("--models must list msc and any of single, v3")
    for name in ("size", "batch", "iters", "runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be a positive integer")
    return args


def main(argv: list[str] | None = None) -> list[Row]:
    """Measure, print the tables, and return the training rows. Leaves torch's settings as found."""
    args = parse_args(argv)
    threads, cudnn_benchmark = torch.get_num_threads(), torch.backends.cudnn.benchmark
    if args.tiny:
        torch.set_num_threads(1)  # tiny tensors gain nothing from threads; CI's cores are shared
    try:
        return run(args)
    finally:
        torch.set_num_threads(threads)
        torch.backends.cudnn.benchmark = cudnn_benchmark


def run(args: argparse.Namespace) -> list[Row]:
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    try:
        import torchvision

        tv = torchvision.__version__
    except ImportError:
        tv = None
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    report = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        report.append(line)

    say(
        f"torch {torch.__version__} on {where or 'CPU'} ({os.cpu_count()} CPU cores, "
        f"{torch.get_num_threads()} threads); torchvision {tv or 'not installed'}; "
        f"{args.size}x{args.size} crops, batch {args.batch}, {args.iters} steps per run, "
        f"median of {args.runs} runs after {args.warmup} warm-up steps; "
        f"cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}"
    )
    if tv is None:
        say("note: torchvision is not importable, so the DeepLab-v3 peer is skipped")
    elif args.tiny:
        say("note: --tiny has no CPU-sized DeepLab-v3, so the peer is skipped")
    rows, flop_lines = [], {}
    for name, builder, msc, settings in cases(
        device, args.compile, args.models, tv is not None and not args.tiny
    ):
        for setting in settings:
            row = measure(name, builder, msc, setting, args, device)
            rows.append(row)
            step, forward, check = (
                n / args.batch / 1e9
                for n in (row.flops_per_step, row.forward_flops, row.twice_multiply_adds)
            )
            flop_lines[name] = (
                f"{name}: {step:.4g} GFLOP per image per step (FlopCounterMode; forward "
                f"{forward:.4g}, 2 x multiply_adds {check:.4g})"
            )
            print(f"  measured {name}, {setting.label()}: {row.images_per_s:.1f} img/s", flush=True)
    say()
    for line in [*flop_lines.values(), "", *table_lines(rows)]:
        say(line)
    best = max((row for row in rows if row.model == "DeepLab-v2 MSC"), key=lambda r: r.images_per_s)
    goal = RECIPE_IMAGES / (GOAL_MINUTES * 60)
    say(
        f"best MSC: {best.images_per_s:.1f} img/s ({best.setting.label()}), "
        f"{best.images_per_s / goal:.2f} x the goal of {goal:.0f} img/s"
    )
    if args.data_workers:
        say()
        say("| data workers | img/s delivered | x best MSC step |")
        say("|-------------:|----------------:|----------------:|")
        for workers, rate in data_pipeline_rates(args, device):
            say(f"| {workers:>12} | {rate:>15.1f} | {rate / best.images_per_s:>15.2f} |")
    if args.results is not None:
        command = "python benchmarks/train_throughput.py " + " ".join(args.argv)
        args.results.write_text(
            f"# Training throughput\n\n`{command}`\n\n" + "\n".join(report) + "\n"
        )
    return rows


if __name__ == "__main__":
    main()
