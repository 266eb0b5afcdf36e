"""Plausible wrong answers to notebook 04's exercises (see README.md)."""

WRONG_ANSWERS = {
    # The branches averaged instead of summed.
    "aspp_by_hand": """
import torch.nn.functional as F


def aspp_by_hand(features, weights, biases, rates):
    branches = [
        F.conv2d(features, weight, bias, padding=rate, dilation=rate)
        for weight, bias, rate in zip(weights, biases, rates, strict=True)
    ]
    return sum(branches) / len(branches)
""",
    # The rule of thumb for sizes 8k + 1, taken as the rule for every size.
    "score_size": """
import math


def score_size(size):
    return math.ceil(size / 8)
""",
    # The span r (k - 1) + 1 compared with size + 1: one rate too many on even sizes.
    "largest_fitting_rate": """
def largest_fitting_rate(size, kernel=3):
    return size // (kernel - 1)
""",
}
