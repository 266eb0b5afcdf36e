"""Plausible wrong answers to notebook 03's exercises (see README.md)."""

WRONG_ANSWERS = {
    # The padding accumulated without the jump: right for stride-1 chains only.
    "input_span": """
def input_span(layers, u):
    field, jump, padding = 1, 1, 0
    for layer in layers:
        dilated = layer.get("rate", 1) * (layer["kernel"] - 1) + 1
        field += (dilated - 1) * jump
        padding += layer.get("padding", 0)
        jump *= layer.get("stride", 1)
    first = u * jump - padding
    return first, first + field - 1
""",
    # The dilated kernel's whole width filled: a box instead of taps r pixels apart.
    "path_counts": """
import numpy as np


def path_counts(rates, kernel=3):
    counts = np.ones(1, dtype=int)
    for rate in rates:
        counts = np.convolve(counts, np.ones(rate * (kernel - 1) + 1, dtype=int))
    return counts
""",
    # One step too far: M_1 instead of M_2.
    "hdc_max_gap": """
def hdc_max_gap(rates):
    gap = rates[-1]
    for rate in reversed(rates[:-1]):
        gap = max(gap - 2 * rate, gap - 2 * (gap - rate), rate)
    return gap
""",
}
