"""Checks for the exercises of notebook 04 (ASPP, DeepLab-v2 Sec. 3.2).

* ``check_aspp_by_hand``: a ResNet-style ASPP head (one 3x3 atrous convolution per branch,
  straight to the classes, the branches' scores summed) written with ``F.conv2d``, against
  ``deeplab_ref.models.ASPP`` holding the same weights;
* ``check_score_size``: the side of DeepLab-VGG-16's scores for an input side, against the
  library's network run on the ``meta`` device (shapes only);
* ``check_largest_fitting_rate``: the largest rate whose k x k filter still fits in a map,
  against a search over the rates with ``atrous.effective_kernel_size``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from deeplab_ref.atrous import effective_kernel_size
from deeplab_ref.exercises import ExerciseError, attempt, expect, passed
from deeplab_ref.models import ASPP, deeplab_v2

_HEAD_CASES = [  # (channels, classes, height, width, rates)
    (6, 5, 13, 11, (2, 4, 8, 12)),
    (4, 3, 9, 9, (6, 12, 18, 24)),
    (3, 2, 7, 10, (1,)),
]


def check_aspp_by_hand(aspp_by_hand: Callable) -> None:
    """aspp_by_hand(features, weights, biases, rates) -> summed scores, against ``ASPP``."""
    name = "aspp_by_hand"
    generator = torch.Generator().manual_seed(4)
    for channels, classes, height, width, rates in _HEAD_CASES:
        head = ASPP(channels, classes, rates).eval()
        with torch.no_grad():
            for branch in head.branches:
                branch.classifier.weight.normal_(generator=generator)
                branch.classifier.bias.normal_(generator=generator)
            features = torch.randn(2, channels, height, width, generator=generator)
            want = head(features)
            weights = [b.classifier.weight.clone() for b in head.branches]
            biases = [b.classifier.bias.clone() for b in head.branches]
            try:
                got = attempt(aspp_by_hand, features.clone(), weights, biases, tuple(rates))
            except ExerciseError as error:
                if isinstance(error.__cause__, RuntimeError) and "size" in str(error.__cause__):
                    raise ExerciseError(
                        f"{error} -- the branches' scores have different sizes, so they cannot be "
                        "summed: a 3x3 convolution at rate r keeps H and W only with padding = r "
                        "(and dilation = r)."
                    ) from error
                raise
        case = f"{len(rates)} branches at rates {rates} on (2, {channels}, {height}, {width})"
        expect(
            isinstance(got, torch.Tensor),
            f"{name} should return a torch.Tensor, got {type(got).__name__}",
        )
        expect(
            tuple(got.shape) == tuple(want.shape),
            f"for {case} expected scores of shape {tuple(want.shape)}, got {tuple(got.shape)}: "
            "a 3x3 convolution at rate r keeps H and W with padding r (and dilation r).",
        )
        if torch.allclose(got, want, atol=1e-5):
            continue
        if torch.allclose(got * len(rates), want, atol=1e-4):
            hint = " It looks like the mean of the branches: DeepLab-v2 sums them."
        else:
            hint = (
                " Each branch is F.conv2d(features, weight, bias, padding=r, dilation=r) with its "
                "own rate r, and the head's output is the sum of the branches' scores."
            )
        difference = float((got - want).abs().max())
        expect(False, f"for {case} the scores differ by up to {difference:.4g}." + hint)
    passed(name, f"{len(_HEAD_CASES)} heads, against deeplab_ref.models.ASPP")


_SIZES = (321, 513, 320, 100, 97, 33, 9)


def _library_score_size(size: int) -> int:
    with torch.device("meta"):
        model = deeplab_v2("vgg16", "largefov", width=1, hidden_channels=2).eval()
        return int(model(torch.empty(1, 3, size, size)).shape[-1])


def check_score_size(score_size: Callable) -> None:
    """score_size(size) -> the scores' side for a size x size input, against the library."""
    name = "score_size"
    for size in _SIZES:
        got = attempt(score_size, size)
        want = _library_score_size(size)
        expect(np.ndim(got) == 0, f"{name} should return one int, got {got!r}")
        if int(got) == want:
            continue
        where = f"a {size}x{size} input gives {want}x{want} scores, your function says {got}."
        if int(got) == -(-size // 8):
            hint = (
                " ceil(size / 8) is right for sizes 8k + 1 (321, 513) only: follow one 3x3 "
                "pooling with stride 2, padding 1 and ceil rounding, three times."
            )
        else:
            hint = (
                " A pooling of kernel 3, stride 2, padding 1 with ceil rounding gives "
                "ceil((n + 2 - 3) / 2) + 1 outputs; the convolutions and the stride-1 poolings "
                "keep the size."
            )
        expect(False, where + hint)
    passed(name, f"{len(_SIZES)} input sizes, against deeplab_v2('vgg16') on the meta device")


_FIT_CASES = [(41, 3), (65, 3), (12, 3), (3, 3), (41, 5), (2, 3)]


def check_largest_fitting_rate(largest_fitting_rate: Callable) -> None:
    """largest_fitting_rate(size, kernel) -> the largest rate with r (k - 1) + 1 <= size."""
    name = "largest_fitting_rate"
    for size, kernel in _FIT_CASES:
        got = attempt(largest_fitting_rate, size, kernel)
        fitting = [r for r in range(1, size + 1) if effective_kernel_size(kernel, r) <= size]
        want = max(fitting) if fitting else 0
        expect(np.ndim(got) == 0, f"{name} should return one int, got {got!r}")
        if int(got) == want:
            continue
        span = effective_kernel_size(kernel, int(got)) if int(got) >= 1 else 0
        expect(
            False,
            f"a {size}-pixel map and a {kernel}x{kernel} filter: expected rate {want}, got {got} "
            f"(span {span} feature pixels at rate {got}). The span at rate r is r (k - 1) + 1 "
            f"and must be at most {size}; 0 when not even rate 1 fits.",
        )
    passed(name, f"{len(_FIT_CASES)} map sizes and kernels, against a search over the rates")
