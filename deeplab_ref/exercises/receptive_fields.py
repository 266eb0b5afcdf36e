"""Checks for the exercises of notebook 03 (receptive fields and atrous rates, DeepLab Sec. 3.1).

* ``check_input_span``: the first and last input pixel that output u of a chain of layers reads,
  against ``ReceptiveField.input_region`` of ``receptive_field.layer_stack``;
* ``check_path_counts``: along one axis, the number of paths from each input pixel to one output
  of a stack of atrous layers, against a brute-force count over every choice of taps (in 2-D,
  ``receptive_field.atrous_footprint`` is the outer product of these counts);
* ``check_hdc_max_gap``: Wang et al.'s maximum gap M_2 of a stack of 3x3 atrous layers, against
  ``receptive_field.hdc_max_gap``; the message relates it to the holes of ``atrous_footprint``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from deeplab_ref.exercises import attempt, expect, passed
from deeplab_ref.receptive_field import atrous_footprint, hdc_max_gap, layer_stack

_CONV = {"kernel": 3, "padding": 1}
_POOL = {"kernel": 3, "stride": 2, "padding": 1}
_STRIDE_1_POOL = {"kernel": 3, "stride": 1, "padding": 1}
# DeepLab-LargeFOV (VGG-16 at output stride 8) up to fc6, as in notebook 03.
_LARGEFOV = (
    [_CONV] * 2 + [_POOL] + [_CONV] * 2 + [_POOL] + [_CONV] * 3 + [_POOL] + [_CONV] * 3
    + [_STRIDE_1_POOL] + [{"kernel": 3, "padding": 2, "rate": 2}] * 3 + [_STRIDE_1_POOL]
    + [{"kernel": 3, "padding": 12, "rate": 12}]
)  # fmt: skip
_SPAN_CASES = [
    ("one 3x3 convolution, padding 1", [_CONV], 0),
    ("one 3x3 convolution at rate 4, no padding", [{"kernel": 3, "rate": 4}], 2),
    (
        "a 7x7 convolution with stride 2 and padding 3",
        [{"kernel": 7, "stride": 2, "padding": 3}],
        5,
    ),
    ("two strided poolings then a 3x3 at rate 2", [_POOL, _POOL, {"kernel": 3, "rate": 2}], 3),
    ("DeepLab-LargeFOV up to fc6", _LARGEFOV, 0),
    ("DeepLab-LargeFOV up to fc6", _LARGEFOV, 20),
]


def check_input_span(input_span: Callable) -> None:
    """input_span(layers, u) -> (first, last) input pixel read by output u, both included."""
    name = "input_span"
    for case, layers, u in _SPAN_CASES:
        got = attempt(input_span, [dict(layer) for layer in layers], u)
        (start, stop), _ = layer_stack(layers).input_region(u, u)
        want = (start, stop - 1)
        expect(
            isinstance(got, tuple | list) and len(got) == 2,
            f"{name} should return two ints (first, last), got {got!r}",
        )
        got = (int(got[0]), int(got[1]))
        if got == want:
            continue
        where = f"for {case}, output u = {u}: expected {want}, got {got}."
        if got == (want[0], want[1] + 1):
            hint = " The last pixel is first + R - 1: both ends are included."
        elif got[1] - got[0] == want[1] - want[0]:
            hint = (
                " The field's size is right but it sits in the wrong place: the first pixel is "
                "u * S - P, with P = sum_l p_l * (the jump before layer l)."
            )
        else:
            hint = (
                " The size is wrong: R grows by (k' - 1) * J at each layer, with the dilated "
                "kernel k' = r (k - 1) + 1 and J the product of the strides before it."
            )
        expect(False, where + hint)
    passed(name, f"{len(_SPAN_CASES)} layer chains, against layer_stack(...).input_region")


def _brute_force_paths(rates: list[int], kernel: int) -> np.ndarray:
    """Count, over every choice of one tap per layer, the input offset it reaches."""
    half = (kernel - 1) // 2
    reach = sum(rate * (kernel - 1) for rate in rates)
    counts = np.zeros(reach + 1, dtype=np.int64)
    for choice in itertools.product(range(kernel), repeat=len(rates)):
        counts[
            sum(rate * (tap - half) for rate, tap in zip(rates, choice, strict=True)) + reach // 2
        ] += 1
    return counts


_PATH_CASES = [([2, 2], 3), ([1, 2, 5], 3), ([3, 4], 3), ([1, 2, 4, 8], 3), ([6], 3), ([1, 3], 5)]


def check_path_counts(path_counts: Callable) -> None:
    """path_counts(rates, kernel) -> paths per input pixel along one axis, by brute force."""
    name = "path_counts"
    for rates, kernel in _PATH_CASES:
        got = attempt(path_counts, list(rates), kernel)
        want = _brute_force_paths(rates, kernel)
        case = f"{kernel}-tap layers at rates {rates}"
        got = np.asarray(got)
        expect(
            got.shape == want.shape,
            f"for {case} expected {want.size} counts (the field of view, 1 + sum_l r_l (k - 1)), "
            f"got shape {got.shape}",
        )
        if np.array_equal(got, want):
            continue
        if (got > 0).all() and (want == 0).any():
            hint = (
                " Your counts have no zeros, but this stack skips pixels: a layer at rate r has "
                "only its k taps, r pixels apart, with zeros between them."
            )
        else:
            hint = (
                " One layer's taps are 1 at offsets 0, r, ..., (k - 1) r; stacking layers "
                "convolves their tap patterns (np.convolve)."
            )
        expect(False, f"for {case} expected {want.tolist()}, got {got.tolist()}." + hint)
    passed(name, f"{len(_PATH_CASES)} stacks, against a count over every choice of taps")


_GAP_CASES = [[1, 2, 5], [1, 2, 9], [1, 2, 4, 8], [1, 5], [3, 4], [1, 3, 7], [1, 2, 3, 5, 8]]


def check_hdc_max_gap(hdc_max_gap_fn: Callable) -> None:
    """hdc_max_gap(rates) -> Wang et al.'s M_2, against the library."""
    name = getattr(hdc_max_gap_fn, "__name__", "hdc_max_gap")
    for rates in _GAP_CASES:
        got = attempt(hdc_max_gap_fn, list(rates))
        want = hdc_max_gap(rates)
        expect(np.ndim(got) == 0, f"{name} should return one int (M_2), got {got!r}")
        if int(got) == want:
            continue
        holes = int((atrous_footprint(rates) == 0).sum())
        where = (
            f"rates {rates}: expected M_2 = {want}, got {got} (this stack leaves {holes} "
            "holes in its field)."
        )
        if len(rates) > 2 and int(got) == max(want - 2 * rates[0], 2 * rates[0] - want, rates[0]):
            hint = " That is M_1: stop at M_2, the gap the first layer has to fill."
        elif len(rates) == 2 and int(got) != rates[-1]:
            hint = " With two layers there is nothing to recurse over: M_2 = M_n = r_2."
        else:
            hint = (
                " Start from M_n = r_n and go down to i = 2 with "
                "M_i = max(M_{i+1} - 2 r_i, M_{i+1} - 2 (M_{i+1} - r_i), r_i)."
            )
        expect(False, where + hint)
    summary = "; ".join(
        f"{rates}: M_2 = {hdc_max_gap(rates)}, {int((atrous_footprint(rates) == 0).sum())} holes"
        for rates in _GAP_CASES
    )
    passed(name, f"{len(_GAP_CASES)} rate lists, against receptive_field.hdc_max_gap ({summary})")
