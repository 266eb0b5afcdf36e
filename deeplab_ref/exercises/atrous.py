"""Checks for the exercises of notebook 01 (atrous convolution, DeepLab Sec. 3.1, Eq. 1).

* ``check_atrous_conv2d_loops``: Eq. 1 in two dimensions as explicit loops, a (H, W) image and a
  (kh, kw) filter at rate r with p zeros of padding, against
  ``torch.nn.functional.conv2d(..., padding=p, dilation=r)``;
* ``check_output_size``: the output length of a convolution with kernel k, stride s, padding p
  and rate r, against the length torch's convolution returns;
* ``check_space_to_batch_conv``: atrous convolution computed as ordinary convolutions of the
  r * r subsampled images (the paper's second method), interleaved back; against torch, and
  the ordinary convolution it is given must be called once per subsampled image.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from deeplab_ref.atrous import atrous_conv2d
from deeplab_ref.exercises import attempt, expect, passed

# (image height, image width, kernel height, kernel width, rate, padding)
_CASES = [
    (7, 9, 3, 3, 1, 0),
    (12, 10, 3, 3, 2, 2),
    (11, 13, 2, 3, 3, 1),
    (9, 8, 3, 3, 4, 4),
    (6, 14, 3, 2, 2, 0),
]


def _torch_atrous(x: np.ndarray, w: np.ndarray, rate: int, padding: int) -> np.ndarray:
    as_4d = lambda a: torch.from_numpy(a)[None, None]  # noqa: E731
    return F.conv2d(as_4d(x), as_4d(w), padding=padding, dilation=rate)[0, 0].numpy()


def _inputs(case: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    height, width, kh, kw = case[:4]
    rng = np.random.default_rng(seed)
    # Integer-valued floats: sums are exact, so any difference is a real one.
    x = rng.integers(-4, 5, size=(height, width)).astype(np.float64)
    w = rng.integers(-3, 4, size=(kh, kw)).astype(np.float64)
    return x, w


def _compare(name: str, got: object, want: np.ndarray, case: str) -> None:
    expect(
        isinstance(got, np.ndarray),
        f"{name} should return a numpy array, got {type(got).__name__}",
    )
    got = np.asarray(got, dtype=np.float64)
    expect(
        got.shape == want.shape,
        f"for {case}: your output has shape {got.shape}, torch's has {want.shape}. The output "
        "has H + 2p - r (kh - 1) rows and W + 2p - r (kw - 1) columns.",
    )
    if not np.allclose(got, want):
        i, j = np.unravel_index(np.argmax(np.abs(got - want)), want.shape)
        expect(
            False,
            f"for {case}: output [{i}, {j}] is {got[i, j]:g}, torch gives {want[i, j]:g}. Output "
            "(i, j) is the sum over the taps (a, b) of x_padded[i + r a, j + r b] * w[a, b] "
            "(the filter is not flipped).",
        )


def check_atrous_conv2d_loops(atrous_conv2d_loops: Callable) -> None:
    """atrous_conv2d_loops(x, w, rate, padding) -> (Ho, Wo) against torch's dilated conv2d."""
    name = "atrous_conv2d_loops"
    for seed, case in enumerate(_CASES):
        x, w = _inputs(case, seed)
        rate, padding = case[4:]
        got = attempt(atrous_conv2d_loops, x.copy(), w.copy(), rate, padding)
        described = f"a {x.shape} image, a {w.shape} filter, rate {rate}, padding {padding}"
        _compare(name, got, _torch_atrous(x, w, rate, padding), described)
    passed(name, f"{len(_CASES)} cases, against torch.nn.functional.conv2d(dilation=rate)")


def check_output_size(output_size: Callable) -> None:
    """output_size(size, kernel, stride, padding, rate) -> int against torch's output length."""
    name = "output_size"
    cases = [
        (41, 3, 1, 0, 1),
        (41, 3, 1, 0, 12),
        (41, 3, 1, 12, 12),
        (41, 3, 1, 24, 24),
        (321, 7, 2, 3, 1),
        (321, 3, 2, 1, 1),
        (40, 4, 1, 0, 4),
        (10, 3, 1, 12, 12),
        (16, 3, 1, 0, 6),
        (33, 5, 3, 2, 2),
        (20, 3, 2, 0, 3),
        (7, 1, 2, 0, 5),
    ]
    for size, kernel, stride, padding, rate in cases:
        got = attempt(output_size, size, kernel, stride, padding, rate)
        want = F.conv1d(
            torch.zeros(1, 1, size),
            torch.zeros(1, 1, kernel),
            stride=stride,
            padding=padding,
            dilation=rate,
        ).shape[-1]
        described = f"size={size}, kernel={kernel}, stride={stride}, padding={padding}, rate={rate}"
        expect(
            isinstance(got, int | np.integer) and not isinstance(got, bool),
            f"output_size({described}) should return an int, got {got!r}",
        )
        expect(
            got == want,
            f"output_size({described}) returned {got}, torch's convolution gives {want}. The "
            "dilated kernel covers r (k - 1) + 1 pixels; count how many times it fits in the "
            "padded input, moving s pixels each step (floor division).",
        )
    passed(name, f"{len(cases)} cases, against torch's output shapes")


def _counting_conv(filter_shape: tuple[int, ...]) -> tuple[Callable, list]:
    """An ordinary convolution (a 2-D image, a filter of ``filter_shape``, no padding, rate 1)
    that records the shape of every image it is given, and the list it records into."""
    calls: list[tuple[int, ...]] = []

    def conv(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
        image, weights = np.asarray(image, dtype=np.float64), np.asarray(weights)
        expect(
            image.ndim == 2 and weights.shape == tuple(filter_shape),
            f"conv takes a 2-D sub-image and the {tuple(filter_shape)} filter as it is (not "
            f"dilated); got shapes {image.shape} and {weights.shape}",
        )
        calls.append(image.shape)
        return atrous_conv2d(image[None, None], weights[None, None])[0, 0]

    return conv, calls


def check_space_to_batch_conv(space_to_batch_conv: Callable) -> None:
    """space_to_batch_conv(x, w, rate, padding, conv) -> (Ho, Wo), built from ``conv``, an
    unpadded rate-1 convolution, called once per subsampled image; against torch."""
    name = "space_to_batch_conv"
    for seed, case in enumerate(_CASES):
        x, w = _inputs(case, seed)
        rate, padding = case[4:]
        conv, calls = _counting_conv(w.shape)
        got = attempt(space_to_batch_conv, x.copy(), w.copy(), rate, padding, conv)
        described = f"a {x.shape} image, a {w.shape} filter, rate {rate}, padding {padding}"
        expect(
            len(calls) == rate * rate,
            f"for {described}: conv was called {len(calls)} times; the input splits into "
            f"rate * rate = {rate * rate} subsampled images, one ordinary convolution each.",
        )
        _compare(name, got, _torch_atrous(x, w, rate, padding), described)
    passed(name, f"{len(_CASES)} cases, r * r ordinary convolutions each, equal to torch")
