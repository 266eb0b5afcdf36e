"""Atrous convolution: the three NumPy methods against torch's CPU convolution.

Run: ``python benchmarks/atrous.py [--repeats 7]``. Every method runs in this one process on the
same inputs; the table gives the median time of several runs and its ratio to torch.
Shapes: DeepLab-LargeFOV's fc6 on a 321x321 crop (output stride 8 gives 41x41 features; 3x3
kernel, 512 -> 1024 channels, rate 12, padding 12) and a small teaching shape.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from deeplab_ref.atrous import METHODS, atrous_conv2d

SHAPES = {
    # name: (x shape (N, C, H, W), w shape (O, C, kh, kw), rate, padding)
    "LargeFOV fc6 (1x512x41x41, 512->1024, 3x3, r 12)": (
        (1, 512, 41, 41),
        (1024, 512, 3, 3),
        12,
        12,
    ),
    "teaching (1x3x64x64, 3->8, 3x3, rate 4)": ((1, 3, 64, 64), (8, 3, 3, 3), 4, 4),
}


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: first-call allocations and thread start-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; numpy {np.__version__}, "
        f"{os.cpu_count()} cores; median of {args.repeats} runs"
    )
    print(f"| {'shape':<52} | {'method':<16} | {'median ms':>9} | {'x torch':>7} |")
    print(f"|{'-' * 54}|{'-' * 18}|{'-' * 11}|{'-' * 9}|")
    rng = np.random.default_rng(0)
    for name, (x_shape, w_shape, rate, padding) in SHAPES.items():
        x = rng.standard_normal(x_shape, dtype=np.float32)
        w = rng.standard_normal(w_shape, dtype=np.float32) * 0.01
        rows = time_methods(x, w, rate, padding, args.repeats)
        reference = rows["torch conv2d"]
        for label, seconds in rows.items():
            print(
                f"| {name:<52} | {label:<16} | {seconds * 1e3:>9.2f} | {seconds / reference:>7.2f} |"
            )
            name = ""


def time_methods(x, w, rate: int, padding: int, repeats: int) -> dict[str, float]:
    """Median seconds of torch's convolution and of each NumPy method on the same inputs."""
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    with torch.no_grad():
        rows = {
            "torch conv2d": median_seconds(
                lambda: F.conv2d(xt, wt, padding=padding, dilation=rate), repeats
            )
        }
    for method in METHODS:
        rows[method] = median_seconds(
            lambda m=method: atrous_conv2d(x, w, rate=rate, padding=padding, method=m), repeats
        )
    return rows


if __name__ == "__main__":
    main()
