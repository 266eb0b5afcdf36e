"""NumPy atrous convolution against torch.nn.functional.conv2d, the independent oracle."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

from deeplab_ref.atrous import (
    METHODS,
    atrous_conv1d,
    atrous_conv2d,
    batch_to_space,
    conv_output_size,
    dilate_kernel,
    space_to_batch,
)


def torch_conv2d(x, w, bias, rate, stride, padding):
    as_tensor = torch.from_numpy
    return F.conv2d(
        as_tensor(x),
        as_tensor(w),
        None if bias is None else as_tensor(bias),
        stride=stride,
        padding=padding,
        dilation=rate,
    ).numpy()


@st.composite
def conv_cases(draw, same_padding=False, max_stride=4):
    kernel = draw(st.integers(1, 7))
    rate = draw(st.integers(1, 24))
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    if same_padding:
        assume(kernel % 2 == 1)
        stride, padding = 1, rate * (kernel - 1) // 2
    else:
        stride, padding = draw(st.integers(1, max_stride)), draw(st.integers(0, 30))
    # Rates whose dilated kernel is wider than the input are fine as long as padding makes room.
    assume(conv_output_size(height, kernel, stride, padding, rate) >= 1)
    assume(conv_output_size(width, kernel, stride, padding, rate) >= 1)
    batch, channels, out_channels = (
        draw(st.integers(1, 2)),
        draw(st.integers(1, 4)),
        draw(st.integers(1, 4)),
    )
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, channels, height, width), dtype=np.float32)
    w = rng.standard_normal((out_channels, channels, kernel, kernel), dtype=np.float32)
    bias = draw(st.none() | st.just(rng.standard_normal(out_channels, dtype=np.float32)))
    return x, w, bias, rate, stride, padding


def assert_matches_torch(case, method):
    x, w, bias, rate, stride, padding = case
    expected = torch_conv2d(x, w, bias, rate, stride, padding)
    got = atrous_conv2d(x, w, bias, rate=rate, stride=stride, padding=padding, method=method)
    assert got.shape == expected.shape
    assert got.dtype == np.float32
    # float32 sums of up to C * k * k products of unit normals
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * w.shape[1] * w.shape[2] ** 2)


@pytest.mark.parametrize("method", ["im2col", "kernel_dilation"])
@given(case=conv_cases())
def test_strided_methods_match_torch(method, case):
    assert_matches_torch(case, method)


@given(case=conv_cases(max_stride=1))
def test_space_to_batch_matches_torch(case):
    assert_matches_torch(case, "space_to_batch")


@pytest.mark.parametrize("method", METHODS)
@given(case=conv_cases(same_padding=True))
def test_same_padding_keeps_size_and_matches_torch(method, case):
    x = case[0]
    assert_matches_torch(case, method)
    assert (
        atrous_conv2d(*case[:3], rate=case[3], padding=case[5], method=method).shape[2:]
        == x.shape[2:]
    )


@given(
    size=st.integers(1, 60),
    kernel=st.integers(1, 7),
    stride=st.integers(1, 5),
    padding=st.integers(0, 10),
    rate=st.integers(1, 24),
)
def test_conv_output_size_matches_torch(size, kernel, stride, padding, rate):
    expected = conv_output_size(size, kernel, stride, padding, rate)
    assume(expected >= 1)
    x = torch.zeros(1, 1, size, 1)
    w = torch.zeros(1, 1, kernel, 1)
    out = F.conv2d(x, w, stride=(stride, 1), padding=(padding, 0), dilation=(rate, 1))
    assert out.shape[2] == expected


def test_atrous_conv1d_hand_worked():
    # y[i] = x[i] - x[i + 2r] for w = (1, 0, -1): with x = 0..9 and r = 2, every y is -4.
    np.testing.assert_array_equal(atrous_conv1d(np.arange(10), np.array([1, 0, -1]), 2), [-4] * 6)
    # rate 1 is numpy's correlate in 'valid' mode
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(20), rng.standard_normal(4)
    np.testing.assert_allclose(atrous_conv1d(x, w, 1), np.correlate(x, w, mode="valid"))


@given(length=st.integers(1, 50), taps=st.integers(1, 6), rate=st.integers(1, 12))
def test_atrous_conv1d_matches_torch(length, taps, rate):
    assume(conv_output_size(length, taps, rate=rate) >= 1)
    rng = np.random.default_rng(length * 1000 + taps * 10 + rate)
    x, w = rng.standard_normal(length), rng.standard_normal(taps)
    expected = F.conv1d(
        torch.from_numpy(x)[None, None], torch.from_numpy(w)[None, None], dilation=rate
    )
    np.testing.assert_allclose(atrous_conv1d(x, w, rate), expected.numpy().ravel(), atol=1e-12)


def test_dilate_kernel_places_taps_rate_apart():
    w = np.arange(1, 10).reshape(3, 3)
    dilated = dilate_kernel(w, 3)
    assert dilated.shape == (7, 7)
    np.testing.assert_array_equal(dilated[::3, ::3], w)
    assert np.count_nonzero(dilated) == 9
    np.testing.assert_array_equal(dilate_kernel(w, 1), w)


@given(rate=st.integers(1, 5), blocks=st.integers(1, 4), batch=st.integers(1, 3))
def test_space_to_batch_round_trip(rate, blocks, batch):
    x = np.random.default_rng(rate).standard_normal((batch, 2, rate * blocks, rate * (blocks + 1)))
    sub = space_to_batch(x, rate)
    assert sub.shape == (rate * rate * batch, 2, blocks, blocks + 1)
    # sub-image (i, j) of image n is x[n, :, i::r, j::r]
    i, j, n = rate - 1, 0, batch - 1
    np.testing.assert_array_equal(sub[(i * rate + j) * batch + n], x[n, :, i::rate, j::rate])
    np.testing.assert_array_equal(batch_to_space(sub, rate), x)


def test_integer_inputs_are_computed_in_float64():
    x = np.arange(16).reshape(1, 1, 4, 4)
    w = np.ones((1, 1, 2, 2), dtype=np.int64)
    y = atrous_conv2d(x, w, rate=2)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y[0, 0], [[20, 24], [36, 40]])


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"rate": 0}, "rate"),
        ({"rate": 1.5}, "rate"),
        ({"stride": 0}, "stride"),
        ({"padding": -1}, "padding"),
        ({"method": "fft"}, "method"),
        ({"method": "space_to_batch", "stride": 2}, "stride"),
        ({"rate": 24}, "output size"),
        ({"bias": np.zeros(3)}, "bias"),
    ],
)
def test_bad_arguments_are_named(kwargs, argument):
    x, w = np.zeros((1, 2, 9, 9)), np.zeros((4, 2, 3, 3))
    with pytest.raises(ValueError, match=argument):
        atrous_conv2d(x, w, **kwargs)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="x must be 4-D"):
        atrous_conv2d(np.zeros((2, 9, 9)), np.zeros((4, 2, 3, 3)))
    with pytest.raises(ValueError, match="w must be 4-D"):
        atrous_conv2d(np.zeros((1, 2, 9, 9)), np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="channel mismatch"):
        atrous_conv2d(np.zeros((1, 2, 9, 9)), np.zeros((4, 3, 3, 3)))
    with pytest.raises(ValueError, match="real numbers"):
        atrous_conv2d(np.zeros((1, 2, 9, 9), dtype=complex), np.zeros((4, 2, 3, 3)))
    with pytest.raises(ValueError, match="multiples of rate"):
        space_to_batch(np.zeros((1, 1, 5, 6)), 2)
    with pytest.raises(ValueError, match="rate"):
        atrous_conv1d(np.zeros(5), np.zeros(3), rate=0)
    with pytest.raises(ValueError, match="longer than x"):
        atrous_conv1d(np.zeros(5), np.zeros(3), rate=3)
