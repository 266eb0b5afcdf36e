"""Plausible wrong answers to notebook 01's exercises (see README.md)."""

WRONG_ANSWERS = {
    # The filter flipped, as in the textbook convolution; deep-learning libraries do not flip it.
    "atrous_conv2d_loops": """
import numpy as np


def atrous_conv2d_loops(x, w, rate, padding):
    xp = np.pad(x, padding)
    kh, kw = w.shape
    out = np.zeros((xp.shape[0] - rate * (kh - 1), xp.shape[1] - rate * (kw - 1)))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            for a in range(kh):
                for b in range(kw):
                    out[i, j] += xp[i + rate * a, j + rate * b] * w[kh - 1 - a, kw - 1 - b]
    return out
""",
    # The rate forgotten: right for ordinary convolutions only.
    "output_size": """
def output_size(size, kernel, stride=1, padding=0, rate=1):
    return (size + 2 * padding - kernel) // stride + 1
""",
    # The padding forgotten: the sub-images are cut from the unpadded input.
    "space_to_batch_conv": """
import numpy as np


def space_to_batch_conv(x, w, rate, padding, conv):
    kh, kw = w.shape
    out = np.zeros((x.shape[0] - rate * (kh - 1), x.shape[1] - rate * (kw - 1)))
    for a in range(rate):
        for b in range(rate):
            out[a::rate, b::rate] = conv(x[a::rate, b::rate], w)
    return out
""",
}
