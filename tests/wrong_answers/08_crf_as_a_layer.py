"""Plausible wrong answers to notebook 08's exercises, each of which its check must reject."""

WRONG_ANSWERS = {
    # The compatibility transform with the wrong sign: mu then rewards disagreeing labels.
    "crf_rnn_step": """
import torch


def crf_rnn_step(unary, messages, weights, compatibility):
    weighted = sum(w * m for w, m in zip(weights, messages))
    return torch.softmax(-unary + weighted @ compatibility.T, dim=1)
""",
    # Compares <forward(x), y> with <x, forward(y)>: never calls backward.
    "adjoint_gap": """
import torch


def adjoint_gap(forward, backward, shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, dtype=torch.float64, generator=generator)
    y = torch.randn(shape, dtype=torch.float64, generator=generator)
    left = (forward(x) * y).sum()
    return float((left - (x * forward(y)).sum()).abs() / left.abs())
""",
}
