"""Fully connected CRF: our NumPy/SciPy version against pydensecrf's C++ (pydensecrf2).

Run: ``python benchmarks/crf.py [--repeats 7]``. Both run in this one process on the same inputs,
interleaved; the table gives medians of several runs, with the lattice build (setting up the
kernels) and the mean-field iterations timed apart, and the ratio ours / pydensecrf.
Inputs: a photo from ``deeplab_ref/crf/examples`` mirror-padded to 500x375 (VOC's typical
size, keeping the photo's own texture) or as it is (320x240), and class probabilities made like
DeepLab's: random scores on the output-stride-8 grid, upsampled bilinearly, then softmax.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import pydensecrf.densecrf as dcrf
import scipy
from PIL import Image

from deeplab_ref.crf import DenseCRF, unary_from_probs
from deeplab_ref.crf.examples import example_path

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


def ours(image, probs, iterations, p):
    start = time.perf_counter()
    crf = DenseCRF(unary_from_probs(probs))
    crf.add_gaussian(p["pos_xy_std"], p["pos_w"])
    crf.add_bilateral(image, p["bi_xy_std"], p["bi_rgb_std"], p["bi_w"])
    built = time.perf_counter()
    q = crf.inference(iterations)
    return built - start, time.perf_counter() - built, q


def theirs(image, probs, iterations, p):
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(
        f"numpy {np.__version__}, scipy {scipy.__version__}, {os.cpu_count()} cores; "
        f"median of {args.repeats} runs, seconds (build + iterations = total)"
    )
    header = (
        "| case | pydensecrf | ours | ratio total (build, iterations) | labels agree | max dQ |"
    )
    print(header)
    print("|" + "---|" * 6)
    for name, (height, width, labels, iterations, p) in CASES.items():
        image, probs = make_inputs(height, width, labels)
        runs = {"ours": [], "theirs": []}
        for _ in range(args.repeats + 1):  # the first round is a warm-up
            for key, fn in (("theirs", theirs), ("ours", ours)):
                runs[key].append(fn(image, probs, iterations, p))
        q_ours, q_theirs = runs["ours"][-1][2], runs["theirs"][-1][2]
        med = {
            key: [statistics.median(r[i] for r in rows[1:]) for i in (0, 1)]
            for key, rows in runs.items()
        }
        (tb, ti), (ob, oi) = med["theirs"], med["ours"]
        agree = (q_ours.argmax(0) == q_theirs.argmax(0)).mean()
        print(
            f"| {name}, {iterations} it | {tb:.3f} + {ti:.3f} = {tb + ti:.3f} "
            f"| {ob:.3f} + {oi:.3f} = {ob + oi:.3f} "
            f"| **{(ob + oi) / (tb + ti):.2f}x** ({ob / tb:.2f}x, {oi / ti:.2f}x) "
            f"| {agree:.4%} | {np.abs(q_ours - q_theirs).max():.1e} |"
        )


if __name__ == "__main__":
    main()
