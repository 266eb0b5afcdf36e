"""Fully connected CRF: pydensecrf's C++ (pydensecrf2), our NumPy/SciPy version and our PyTorch one.

Run: ``python benchmarks/crf.py [--repeats 7] [--results benchmarks/results/crf.md]``; ``--tiny``
runs small inputs once, for the smoke test.

CPU: the three run in this one process on the same inputs, interleaved; the table gives the
median of several runs in milliseconds per image, the lattice build (setting up the kernels) and
the mean-field iterations timed apart, and the ratios of the PyTorch version's total to the
others'. The PyTorch version runs at torch's thread count and at one thread (NumPy's sparse
products and pydensecrf use one). Inputs: a photo from ``deeplab_ref/crf/examples`` mirror-padded
to 500x375 (VOC's typical size, keeping the photo's own texture) or as it is (320x240), and class
probabilities made like DeepLab's: random scores on the output-stride-8 grid, upsampled
bilinearly, then softmax.

GPU (rows only when CUDA is available): ``dense_crf_torch`` on batches of 500x375 images, 21
labels, 10 iterations, DeepLab's parameters: images per second over the median of synchronised
runs, with the peak memory.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pydensecrf.densecrf as dcrf
import scipy
import torch
from PIL import Image

from deeplab_ref.crf import DenseCRF, dense_crf_torch, unary_from_probs
from deeplab_ref.crf.checks import PROBABILITY_CLIP
from deeplab_ref.crf.examples import example_path
from deeplab_ref.crf.torch_mean_field import PixelBatch, deeplab_kernels, label_softmax, mean_field

PHOTO = example_path("im1.png")
DEEPLAB = dict(pos_xy_std=1.0, pos_w=3.0, bi_xy_std=67.0, bi_rgb_std=3.0, bi_w=4.0)
README = dict(pos_xy_std=3.0, pos_w=3.0, bi_xy_std=80.0, bi_rgb_std=13.0, bi_w=10.0)
CASES = {
    # name: (height, width, labels, iterations, parameters)
    "500x375, 21 labels, DeepLab": (375, 500, 21, 10, DEEPLAB),
    "500x375, 21 labels, README": (375, 500, 21, 10, README),
    "320x240, 3 labels, DeepLab": (240, 320, 3, 10, DEEPLAB),
    "320x240, 3 labels, README": (240, 320, 3, 10, README),
}
TINY_CASES = {"64x48, 3 labels, DeepLab": (48, 64, 3, 5, DEEPLAB)}
GPU_BATCHES = (1, 8, 32)


def make_inputs(height: int, width: int, labels: int, seed: int = 0):
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    pad = ((0, max(height - photo.shape[0], 0)), (0, max(width - photo.shape[1], 0)), (0, 0))
    image = np.ascontiguousarray(np.pad(photo, pad, mode="reflect")[:height, :width])
    rng = np.random.default_rng(seed)
    coarse = rng.normal(scale=3.0, size=(labels, height // 8 + 1, width // 8 + 1))
    rows = np.linspace(0, coarse.shape[1] - 1, height)
    cols = np.linspace(0, coarse.shape[2] - 1, width)
    r0, c0 = (
        rows.astype(int).clip(max=coarse.shape[1] - 2),
        cols.astype(int).clip(max=coarse.shape[2] - 2),
    )
    fr, fc = (rows - r0)[:, None], (cols - c0)[None, :]
    scores = (
        coarse[:, r0][:, :, c0] * (1 - fr) * (1 - fc)
        + coarse[:, r0 + 1][:, :, c0] * fr * (1 - fc)
        + coarse[:, r0][:, :, c0 + 1] * (1 - fr) * fc
        + coarse[:, r0 + 1][:, :, c0 + 1] * fr * fc
    )
    probs = np.exp(scores - scores.max(axis=0))
    return image, (probs / probs.sum(axis=0)).astype(np.float32)


def numpy_crf(image, probs, iterations, p):
    start = time.perf_counter()
    crf = DenseCRF(unary_from_probs(probs))
    crf.add_gaussian(p["pos_xy_std"], p["pos_w"])
    crf.add_bilateral(image, p["bi_xy_std"], p["bi_rgb_std"], p["bi_w"])
    built = time.perf_counter()
    q = crf.inference(iterations)
    return built - start, time.perf_counter() - built, q


def pydensecrf_crf(image, probs, iterations, p):
    labels, height, width = probs.shape
    start = time.perf_counter()
    crf = dcrf.DenseCRF2D(width, height, labels)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_probs(probs).reshape(labels, -1)))
    crf.addPairwiseGaussian(sxy=p["pos_xy_std"], compat=p["pos_w"])
    crf.addPairwiseBilateral(
        sxy=p["bi_xy_std"], srgb=p["bi_rgb_std"], rgbim=image, compat=p["bi_w"]
    )
    built = time.perf_counter()
    q = np.array(crf.inference(iterations)).reshape(labels, height, width)
    return built - start, time.perf_counter() - built, q


@torch.no_grad()
def torch_crf(image, probs, iterations, p):
    """``dense_crf_torch``'s steps, the kernels' build timed apart from the iterations."""
    start = time.perf_counter()
    image_t, probs_t = torch.from_numpy(image), torch.from_numpy(probs)
    pixels = PixelBatch([probs.shape[1:]], probs_t.device)
    kernels = deeplab_kernels(pixels, [image_t], p["pos_xy_std"], p["bi_xy_std"], p["bi_rgb_std"])
    built = time.perf_counter()
    unary = -torch.log(pixels.rows([probs_t]).clamp(PROBABILITY_CLIP, 1.0))
    energy = mean_field(unary, kernels, (p["pos_w"], p["bi_w"]), iterations)
    q = pixels.images(label_softmax(energy))[0].numpy()
    return built - start, time.perf_counter() - built, q


@contextmanager
def torch_threads(count: int):
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def one_thread(fn: Callable) -> Callable:
    def run(*args):
        with torch_threads(1):
            return fn(*args)

    return run


def cpu_rows(cases: dict, repeats: int) -> list[dict]:
    """Medians (ms per image) of build and iterations for each version, after a warm-up."""
    versions = {
        "pydensecrf": pydensecrf_crf,
        "numpy": numpy_crf,
        "torch": torch_crf,
        "torch 1 thread": one_thread(torch_crf),
    }
    rows = []
    for name, (height, width, labels, iterations, p) in cases.items():
        image, probs = make_inputs(height, width, labels)
        runs = {key: [] for key in versions}
        for _ in range(repeats + 1):  # the first round is a warm-up
            for key, fn in versions.items():
                runs[key].append(fn(image, probs, iterations, p))
        row = {"case": f"{name}, {iterations} it"}
        for key, results in runs.items():
            timed = results[1:] or results
            row[key] = [1000 * statistics.median(r[i] for r in timed) for i in (0, 1)]
        q_torch, q_theirs, q_numpy = (runs[k][-1][2] for k in ("torch", "pydensecrf", "numpy"))
        row["agree"] = (q_torch.argmax(0) == q_theirs.argmax(0)).mean()
        row["max_dq"] = float(np.abs(q_torch - q_theirs).max())
        row["max_dq_numpy"] = float(np.abs(q_torch - q_numpy).max())
        rows.append(row)
    return rows


def gpu_rows(repeats: int, batches=GPU_BATCHES) -> list[dict]:
    """Images per second of dense_crf_torch on CUDA, 500x375, 21 labels, 10 iterations."""
    rows = []
    for batch in batches:
        inputs = [make_inputs(375, 500, 21, seed) for seed in range(batch)]
        images = torch.from_numpy(np.stack([i for i, _ in inputs])).cuda()
        probs = torch.from_numpy(np.stack([p for _, p in inputs])).cuda()
        torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(repeats + 1):
            torch.cuda.synchronize()
            start = time.perf_counter()
            dense_crf_torch(images, probs, **DEEPLAB)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        seconds = statistics.median(times[1:])
        peak = torch.cuda.max_memory_allocated() / 2**30
        rows.append(
            {
                "batch": batch,
                "images_per_s": batch / seconds,
                "ms": 1000 * seconds,
                "peak_gib": peak,
            }
        )
    return rows


def cpu_table(rows: list[dict]) -> str:
    def ms(build_and_iterations):
        build, iterations = build_and_iterations
        return f"{build:.0f} + {iterations:.0f} = {build + iterations:.0f}"

    lines = [
        "| case | pydensecrf | NumPy | PyTorch | PyTorch, 1 thread | PyTorch / NumPy "
        "(1 thread) | PyTorch / pydensecrf | labels agree | max dQ |",
        "|" + "---|" * 9,
    ]
    for row in rows:
        total = {key: sum(row[key]) for key in ("pydensecrf", "numpy", "torch", "torch 1 thread")}
        lines.append(
            f"| {row['case']} | {ms(row['pydensecrf'])} | {ms(row['numpy'])} "
            f"| {ms(row['torch'])} | {ms(row['torch 1 thread'])} "
            f"| **{total['torch'] / total['numpy']:.2f}x** "
            f"({total['torch 1 thread'] / total['numpy']:.2f}x) "
            f"| {total['torch'] / total['pydensecrf']:.2f}x | {row['agree']:.4%} "
            f"| {row['max_dq']:.1e} |"
        )
    return "\n".join(lines)


def gpu_table(rows: list[dict]) -> str:
    lines = ["| batch | images/s | ms per batch | peak GiB |", "|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['batch']} | {row['images_per_s']:.1f} | {row['ms']:.0f} | {row['peak_gib']:.2f} |"
        )
    return "\n".join(lines)


def machine() -> str:
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores{gpu}; numpy "
        f"{np.__version__}, scipy {scipy.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)"
    )


def main(argv: list[str] | None = None) -> dict[str, list[dict]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--tiny", action="store_true", help="small inputs, one run (smoke test)")
    parser.add_argument("--results", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    repeats = 1 if args.tiny else args.repeats
    report = [
        machine(),
        f"CPU, one process, median of {repeats} runs after a warm-up, ms per image "
        "(build + iterations = total):",
        "",
    ]
    rows = {"cpu": cpu_rows(TINY_CASES if args.tiny else CASES, repeats)}
    report.append(cpu_table(rows["cpu"]))
    if torch.cuda.is_available():
        rows["gpu"] = gpu_rows(repeats, (1, 2) if args.tiny else GPU_BATCHES)
        report += [
            "",
            "CUDA, dense_crf_torch, 500x375, 21 labels, 10 iterations, DeepLab's parameters:",
            "",
        ]
        report.append(gpu_table(rows["gpu"]))
    text = "\n".join(report)
    print(text)
    if args.results:
        args.results.write_text(text + "\n", encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()
