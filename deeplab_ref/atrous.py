"""Atrous (dilated) convolution in NumPy, three ways.

Implements DeepLab's Sec. 3.1 and Eq. 1 (Chen et al., TPAMI 2018). In one dimension, an input
signal x filtered by w of length K with atrous rate r gives

    y[i] = sum_k x[i + r * k] w[k],        k = 0 .. K - 1            (Eq. 1)

Rate 1 is the ordinary convolution (cross-correlation, as deep-learning libraries compute it).
The paper describes two equivalent ways to compute it, and we add the one fast libraries use:

* ``"kernel_dilation"``: upsample the filter by inserting r - 1 zeros between its taps ("holes",
  *trous* in French) and run an ordinary convolution. The field of view grows to r (K - 1) + 1
  while the number of non-zero weights stays K.
* ``"space_to_batch"``: subsample the input by r in each direction into r * r images, run the
  ordinary convolution with the original filter on each, and interleave the results. This is the
  view of Sec. 3.1's last paragraph and of TensorFlow's implementation.
* ``"im2col"``: gather the dilated patches as a strided view, then one matrix product.

No torch here: this module is the from-first-principles version, tested against
``torch.nn.functional.conv2d(..., dilation=rate)``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import as_strided

Method = Literal["im2col", "kernel_dilation", "space_to_batch"]
METHODS: tuple[str, ...] = ("im2col", "kernel_dilation", "space_to_batch")


def _check_int(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def effective_kernel_size(kernel: int, rate: int = 1) -> int:
    """Width of a kernel of ``kernel`` taps at atrous rate ``rate``: r (k - 1) + 1 pixels."""
    kernel = _check_int("kernel", kernel, 1)
    rate = _check_int("rate", rate, 1)
    return rate * (kernel - 1) + 1


def conv_output_size(
    size: int, kernel: int, stride: int = 1, padding: int = 0, rate: int = 1
) -> int:
    """Output length of a convolution: floor((i + 2p - k - (k - 1)(r - 1)) / s) + 1.

    The result can be zero or negative when the dilated kernel is wider than the padded input;
    the convolutions below refuse such arguments.
    """
    size = _check_int("size", size, 1)
    stride = _check_int("stride", stride, 1)
    padding = _check_int("padding", padding, 0)
    return (size + 2 * padding - effective_kernel_size(kernel, rate)) // stride + 1


def atrous_conv1d(x: np.ndarray, w: np.ndarray, rate: int = 1) -> np.ndarray:
    """Eq. 1 in one dimension, written as the paper writes it (no padding).

    Args:
        x: the input signal, shape (L,).
        w: the filter, shape (K,).
        rate: the atrous rate r >= 1.

    Returns:
        y of shape (L - r (K - 1),) with y[i] = sum_k x[i + r k] w[k].
    """
    x, w = np.asarray(x), np.asarray(w)
    if x.ndim != 1 or w.ndim != 1:
        raise ValueError(f"x and w must be 1-D, got x {x.shape} and w {w.shape}")
    rate = _check_int("rate", rate, 1)
    n_out = conv_output_size(len(x), len(w), rate=rate)
    if n_out < 1:
        raise ValueError(
            f"the dilated filter ({effective_kernel_size(len(w), rate)} taps wide) is longer "
            f"than x ({len(x)} samples)"
        )
    # One shifted copy of x per tap: tap k reads x[i + r k] for every output i at once.
    return sum(w[k] * x[rate * k : rate * k + n_out] for k in range(len(w)))


def dilate_kernel(w: np.ndarray, rate: int) -> np.ndarray:
    """Insert rate - 1 zeros between the taps of the last two axes of ``w``.

    (..., kh, kw) -> (..., r (kh - 1) + 1, r (kw - 1) + 1): the "upsampled filter" of Sec. 3.1.
    """
    w = np.asarray(w)
    if w.ndim < 2:
        raise ValueError(f"w must have at least 2 dimensions (..., kh, kw), got shape {w.shape}")
    rate = _check_int("rate", rate, 1)
    kh, kw = w.shape[-2:]
    dilated = np.zeros(
        w.shape[:-2] + (effective_kernel_size(kh, rate), effective_kernel_size(kw, rate)),
        dtype=w.dtype,
    )
    dilated[..., ::rate, ::rate] = w
    return dilated


def space_to_batch(x: np.ndarray, rate: int) -> np.ndarray:
    """Split each image into its rate * rate subsampled images (the paper's subsampling view).

    (N, C, H, W) -> (r * r * N, C, H / r, W / r); H and W must be multiples of r. Batch entry
    (i * r + j) * N + n holds x[n, :, i::r, j::r].
    """
    x = _check_4d("x", x)
    rate = _check_int("rate", rate, 1)
    n, c, h, w = x.shape
    if h % rate or w % rate:
        raise ValueError(f"x's height and width {h}x{w} must be multiples of rate={rate}")
    blocks = x.reshape(n, c, h // rate, rate, w // rate, rate)
    return blocks.transpose(3, 5, 0, 1, 2, 4).reshape(rate * rate * n, c, h // rate, w // rate)


def batch_to_space(y: np.ndarray, rate: int) -> np.ndarray:
    """Interleave rate * rate subsampled images back into full ones: the inverse of
    :func:`space_to_batch`, (r * r * N, C, h, w) -> (N, C, h * r, w * r)."""
    y = _check_4d("y", y)
    rate = _check_int("rate", rate, 1)
    b, c, h, w = y.shape
    if b % (rate * rate):
        raise ValueError(f"y's batch size {b} must be a multiple of rate * rate = {rate * rate}")
    n = b // (rate * rate)
    blocks = y.reshape(rate, rate, n, c, h, w)
    return blocks.transpose(2, 3, 4, 0, 5, 1).reshape(n, c, h * rate, w * rate)


def _check_4d(name: str, a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 4:
        raise ValueError(f"{name} must be 4-D (N, C, H, W), got shape {a.shape}")
    return a


def _conv2d_valid(x: np.ndarray, w: np.ndarray, rate: int, stride: int) -> np.ndarray:
    """Unpadded cross-correlation by im2col: every output's (dilated) patch as one column.

    x (N, C, H, W) and w (O, C, kh, kw) -> (N, O, Ho, Wo) with a single matrix product, the
    batch laid side by side as columns (one large product is faster than N small ones).
    """
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    ho = (h - effective_kernel_size(kh, rate)) // stride + 1
    wo = (wd - effective_kernel_size(kw, rate)) // stride + 1
    sn, sc, sh, sw = x.strides
    # A view, no copy: axes (kh, kw) step by the atrous rate inside the kernel,
    # axes (ho, wo) by the stride between outputs.
    patches = as_strided(
        x,
        shape=(c, kh, kw, n, ho, wo),
        strides=(sc, rate * sh, rate * sw, sn, stride * sh, stride * sw),
        writeable=False,
    )
    columns = patches.reshape(c * kh * kw, n * ho * wo)  # the copy happens here
    y = w.reshape(o, c * kh * kw) @ columns
    return y.reshape(o, n, ho, wo).transpose(1, 0, 2, 3)


def atrous_conv2d(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None = None,
    rate: int = 1,
    stride: int = 1,
    padding: int = 0,
    method: Method = "im2col",
) -> np.ndarray:
    """2-D atrous convolution (cross-correlation), equal to
    ``torch.nn.functional.conv2d(x, w, bias, stride, padding, dilation=rate)``.

    Args:
        x: input, shape (N, C, H, W).
        w: filters, shape (O, C, kh, kw).
        bias: optional, shape (O,).
        rate: atrous rate r >= 1 (PyTorch's ``dilation``).
        stride: output step s >= 1 (``"space_to_batch"`` needs s = 1).
        padding: zeros added on each side, p >= 0; p = r (k - 1) / 2 keeps the size ("same").
        method: ``"im2col"``, ``"kernel_dilation"`` or ``"space_to_batch"`` (see the module).

    Returns:
        y, shape (N, O, Ho, Wo) with Ho = :func:`conv_output_size` (H, kh, s, p, r).
    """
    x, w = _check_4d("x", x), _check_4d("w", w)
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"channel mismatch: x has C={x.shape[1]} channels but w expects {w.shape[1]} "
            f"(w has shape (O, C, kh, kw) = {w.shape})"
        )
    rate = _check_int("rate", rate, 1)
    stride = _check_int("stride", stride, 1)
    padding = _check_int("padding", padding, 0)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "space_to_batch" and stride != 1:
        raise ValueError(f"method='space_to_batch' needs stride=1, got stride={stride}")
    o, _, kh, kw = w.shape
    h, wd = x.shape[2:]
    ho = conv_output_size(h, kh, stride, padding, rate)
    wo = conv_output_size(wd, kw, stride, padding, rate)
    if ho < 1 or wo < 1:
        raise ValueError(
            f"output size {ho}x{wo} is below 1: the dilated kernel "
            f"({effective_kernel_size(kh, rate)}x{effective_kernel_size(kw, rate)} at rate={rate}) "
            f"is larger than the padded input ({h + 2 * padding}x{wd + 2 * padding})"
        )
    if bias is not None:
        bias = np.asarray(bias)
        if bias.shape != (o,):
            raise ValueError(f"bias must have shape ({o},), got {bias.shape}")

    dtype = np.result_type(x, w)
    if not np.issubdtype(dtype, np.floating):
        if not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
            raise ValueError(f"x and w must be real numbers, got dtypes {x.dtype} and {w.dtype}")
        dtype = np.float64
    x, w = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))

    if method == "im2col":
        y = _conv2d_valid(x, w, rate, stride)
    elif method == "kernel_dilation":
        y = _conv2d_valid(x, dilate_kernel(w, rate), rate=1, stride=stride)
    else:
        # Pad up to a multiple of the rate; the extra zeros only feed outputs that are cropped.
        hp, wp = x.shape[2:]
        x = np.pad(x, ((0, 0), (0, 0), (0, -hp % rate), (0, -wp % rate)))
        sub_outputs = _conv2d_valid(space_to_batch(x, rate), w, rate=1, stride=1)
        y = batch_to_space(sub_outputs, rate)[:, :, :ho, :wo]
    if bias is not None:
        y = y + bias.astype(dtype).reshape(1, o, 1, 1)
    return y
