"""Argument checks of the fully connected CRF (DeepLab Sec. 3.3), shared by the NumPy and the
PyTorch versions so that both refuse the same inputs with the same ValueError, naming the
argument at fault.

The checks take plain facts (a dtype's name, a shape, a minimum) that each version computes with
its own library: a CUDA tensor is checked where it lies, without a copy to the host.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral

PROBABILITY_CLIP = 1e-5  # pydensecrf's unary_from_softmax clips P to [1e-5, 1] before the log
SUM_TOLERANCE = 1e-3  # how far from 1 the probabilities of a pixel may sum


def positive(name: str, value: float) -> float:
    """``value`` as a float, or a ValueError unless it is a finite number > 0."""
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def finite(name: str, value: float) -> float:
    """``value`` as a float, or a ValueError unless it is finite."""
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def iterations(value: int) -> int:
    """The number of mean-field updates: an integer >= 0 (not a bool, not 2.5)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"iterations must be an integer, got {value!r}")
    if value < 0:
        raise ValueError(f"iterations must be >= 0, got {value}")
    return int(value)


def check_image(name: str, is_uint8: bool, kind: str, found: object, shape: Sequence[int]) -> None:
    """An RGB image (H, W, 3) of uint8 with at least one pixel. ``kind`` says what was expected
    ("numpy array", "tensor"), ``found`` what came instead (its dtype, or the object)."""
    shape = tuple(shape)
    if not is_uint8:
        raise ValueError(f"{name} must be a uint8 {kind}, got {found}")
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"{name} must be RGB (H, W, 3), got shape {shape}")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{name} has no pixels: shape {shape}; the CRF needs H, W >= 1")


def check_probs_shape(
    name: str,
    is_float: bool,
    kind: str,
    found: object,
    shape: Sequence[int],
    image_shape: Sequence[int],
) -> None:
    """Class probabilities (C, H, W) of a float type, C >= 1, over the image's H x W pixels."""
    shape = tuple(shape)
    if not is_float:
        raise ValueError(f"{name} must be a float {kind}, got {found}")
    if len(shape) != 3 or shape[0] < 1:
        raise ValueError(f"{name} must be (C, H, W), got shape {shape}")
    if shape[1:] != tuple(image_shape[:2]):
        raise ValueError(f"{name} is {shape[1:]} pixels but image is {tuple(image_shape[:2])}")


def check_probs_values(
    name: str, all_finite: bool, minimum: float, sum_min: float, sum_max: float
) -> None:
    """Probabilities are finite, >= 0 and sum to 1 over the classes (to SUM_TOLERANCE): what the
    caller found over its array(s), the sums per pixel computed in float64."""
    if not all_finite:
        raise ValueError(f"{name} contains NaN or infinite values")
    if minimum < 0:
        raise ValueError(f"{name} must be >= 0, found {minimum}")
    if max(abs(sum_min - 1.0), abs(sum_max - 1.0)) > SUM_TOLERANCE:
        raise ValueError(f"{name} must sum to 1 over classes; sums range {sum_min}..{sum_max}")
