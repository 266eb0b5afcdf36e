"""The command line: ``python -m deeplab_ref {train,evaluate,predict,demo} --help``.

Each command is a thin layer over the library: ``train`` over ``deeplab_ref.train.train``,
``evaluate`` over ``deeplab_ref.evaluate``, ``predict`` over a model and the CRF, ``demo`` over
``deeplab_ref.demo``. Errors name the argument or the file at fault and exit with status 2.

``train`` and ``evaluate`` also run on several processes, one per GPU:
``torchrun --nproc_per_node=8 -m deeplab_ref train --preset ...`` (see ``deeplab_ref.distributed``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from deeplab_ref import distributed
from deeplab_ref.presets import PRESETS, TrainConfig, get_preset
from deeplab_ref.run_control import TrainingInterrupted


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deeplab_ref",
        description="DeepLab-v2 (Chen et al., TPAMI 2018): train, evaluate, predict, demo.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a preset; checkpoints and a JSON-lines log")
    train.add_argument(
        "--preset", choices=list(PRESETS), help="default: cpu-synthetic, or the resumed run's"
    )
    train.add_argument("--out", type=Path, required=True, help="run folder (checkpoint, log)")
    train.add_argument(
        "--dataset",
        choices=["folder"],
        help="folder: train on your own images (--data-root holds images/ and masks/)",
    )
    train.add_argument(
        "--data-root", help="VOCdevkit/VOC2012 (VOC presets), or your folder (--dataset folder)"
    )
    train.add_argument(
        "--num-classes", type=_positive_int, help="with --dataset folder and no classes.txt"
    )
    train.add_argument(
        "--resume", action="store_true", help="continue --out's run with its own settings"
    )
    train.add_argument(
        "--overwrite", action="store_true", help="start again in an --out that holds a run"
    )
    train.add_argument("--checkpoint-every", type=_positive_int, help="iterations between saves")
    train.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        help="the forward pass through torch.compile (default: the preset's; on for VOC)",
    )
    train.add_argument(
        "--compile-mode", help="torch.compile's mode, e.g. reduce-overhead (CUDA graphs)"
    )
    train.add_argument("--max-iter", type=_positive_int, help="override the preset's iterations")
    train.add_argument("--batch-size", type=_positive_int, help="images per SGD step")
    train.add_argument("--accumulation", type=_positive_int, help="forward passes per step")
    train.add_argument("--base-lr", type=float, help="learning rate at iteration 0 (poly after)")
    train.add_argument("--seed", type=int)
    train.add_argument("--device", help="cpu, cuda, cuda:1 or auto")
    train.add_argument("--workers", type=int, help="data-loading processes")
    train.add_argument("--imagenet-weights", help="torchvision .pth file for the backbone")

    evaluate = commands.add_parser("evaluate", help="mIoU, per-class IoU and trimap of a model")
    evaluate.add_argument("--checkpoint", type=Path, required=True)
    evaluate.add_argument("--data-root", help="VOCdevkit/VOC2012 (default: the checkpoint's)")
    evaluate.add_argument("--split", help="split to score (default: the preset's validation split)")
    evaluate.add_argument("--crf", action="store_true", help="also score with the dense CRF")
    evaluate.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 or auto")

    predict = commands.add_parser("predict", help="segment an image file; PNGs out")
    predict.add_argument("image", type=Path, help="an RGB image file (PNG, JPEG)")
    predict.add_argument("--checkpoint", type=Path, required=True)
    predict.add_argument("--out", type=Path, default=Path("."), help="folder for the PNGs")
    predict.add_argument("--crf", action="store_true", help="refine with the dense CRF")

    demo = commands.add_parser("demo", help="train the CPU preset on synthetic data, end to end")
    demo.add_argument("--out", type=Path, default=Path("results/demo"), help="run folder")
    demo.add_argument("--figures", type=Path, default=Path("figures"), help="figures folder")
    demo.add_argument("--max-iter", type=_positive_int, help="override the preset's iterations")
    demo.add_argument("--overwrite", action="store_true", help="train again over --out's run")
    return parser


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The run's settings: the preset's with the options given, or with ``--resume`` the
    checkpoint's own with the options given (which must then agree with it)."""
    names = (
        "data_root",
        "max_iter",
        "batch_size",
        "accumulation",
        "base_lr",
        "seed",
        "device",
        "workers",
        "checkpoint_every",
        "imagenet_weights",
        "compile",
        "compile_mode",
    )
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if args.dataset == "folder":
        if args.data_root is None:
            raise ValueError("--dataset folder needs --data-root: the folder of images/ and masks/")
        from deeplab_ref.data.folder import read_class_names

        names = read_class_names(Path(args.data_root), args.num_classes)
        overrides.update(dataset="folder", dataset_options={}, num_classes=len(names))
    elif args.num_classes is not None:
        raise ValueError("--num-classes applies to --dataset folder (the presets fix theirs)")
    if not args.resume:
        return get_preset(args.preset or "cpu-synthetic", **overrides)
    if args.overwrite:
        raise ValueError("--resume continues a run and --overwrite replaces it: give one")
    from deeplab_ref.checkpoint import CHECKPOINT_NAME, saved_config

    path = args.out / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    saved = saved_config(path)
    if args.preset is not None and args.preset != saved.preset:
        raise ValueError(
            f"--resume: {path} was trained from --preset {saved.preset}, not {args.preset}"
        )
    return TrainConfig.from_dict({**saved.to_dict(), **overrides})


def run_train(args: argparse.Namespace) -> None:
    from deeplab_ref.train import train

    train(train_config(args), args.out, resume=args.resume, overwrite=args.overwrite)
    if distributed.is_main_process():
        print(f"checkpoint and log in {args.out}")


def _evaluation_split(args: argparse.Namespace, config: TrainConfig) -> str:
    """Apply ``--data-root`` and ``--split`` to a trained run's settings; the split to build."""
    if config.dataset == "synthetic" and args.data_root is not None:
        raise ValueError(
            f"--data-root: {args.checkpoint} was trained on the built-in synthetic scenes, "
            "which have no data folder"
        )
    if args.data_root is not None:
        config.data_root = args.data_root
    if config.dataset == "voc":
        if args.split is not None:
            config.val_split = args.split  # a VOC split list; a missing one is named
        return "val"
    if args.split not in (None, "train", "val"):
        raise ValueError(
            f"--split must be train or val for {config.dataset} data, got {args.split!r}"
        )
    return args.split or "val"


def run_evaluate(args: argparse.Namespace) -> None:
    from deeplab_ref.checkpoint import load_trained_model
    from deeplab_ref.crf_evaluation import evaluate_crf
    from deeplab_ref.evaluate import evaluate
    from deeplab_ref.prediction import test_network
    from deeplab_ref.presets import build_dataset
    from deeplab_ref.report import TRIMAP_WIDTHS, results_table

    model, config = load_trained_model(args.checkpoint)
    dataset = build_dataset(config, _evaluation_split(args, config))
    device = distributed.resolve_device(args.device)
    model.to(device)
    if args.crf:
        # The run's test protocol (VOC: padded to 513 as released), with and without the CRF.
        results = evaluate_crf(
            test_network(model, config.eval_padding),
            dataset,
            config.num_classes,
            vars(config.crf),
            TRIMAP_WIDTHS,
            device=device,
        )
    else:
        scores = evaluate(
            model, dataset, config.num_classes, TRIMAP_WIDTHS, device, config.eval_padding
        )
        results = {"network": scores}
    if distributed.is_main_process():
        print(results_table(results, dataset.class_names))


def run_predict(args: argparse.Namespace) -> None:
    from deeplab_ref.checkpoint import load_trained_model
    from deeplab_ref.crf import dense_crf
    from deeplab_ref.data.transforms import eval_transform
    from deeplab_ref.data.voc import read_image
    from deeplab_ref.prediction import predict_probabilities
    from deeplab_ref.viz.segmentation import save_segmentation

    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file: the PNGs need a folder")
    model, config = load_trained_model(args.checkpoint)
    image = read_image(args.image)
    tensor, _ = eval_transform(config.normalization)(image, np.zeros(image.shape[:2], np.int64))
    probs = predict_probabilities(model, tensor[None], config.eval_padding)[0].numpy()
    if args.crf:
        probs = dense_crf(image, probs, **vars(config.crf))
    args.out.mkdir(parents=True, exist_ok=True)
    for path in save_segmentation(image, probs.argmax(0), args.out / args.image.stem):
        print(f"wrote {path}")


def run_demo(args: argparse.Namespace) -> None:
    from deeplab_ref.demo import run_demo as demo

    demo(args.out, args.figures, max_iter=args.max_iter, overwrite=args.overwrite)


COMMANDS = {"train": run_train, "evaluate": run_evaluate, "predict": run_predict, "demo": run_demo}
# Commands that spread their work over the processes torchrun starts; the others run on one.
DISTRIBUTED_COMMANDS = ("train", "evaluate")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command not in DISTRIBUTED_COMMANDS and int(os.environ.get("WORLD_SIZE", 1)) > 1:
            raise ValueError(
                f"{args.command} runs on one process: start it with python -m deeplab_ref, "
                "not torchrun"
            )
        with distributed.process_group():
            COMMANDS[args.command](args)
    except TrainingInterrupted as stop:
        if distributed.is_main_process():
            print(stop, file=sys.stderr)
        return 130  # the shell's code for a process stopped by Ctrl-C
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, FloatingPointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
