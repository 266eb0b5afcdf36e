"""Checks for notebook 08, the CRF as a layer: one mean-field update written as a recurrent
cell (CRF-as-RNN), and the dot-product test that a backward pass is the transpose of a linear
forward map (how the lattice filter's gradient is checked)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from deeplab_ref.crf.torch_mean_field import mean_field
from deeplab_ref.exercises import attempt, expect, passed


def _library_step(unary, messages, weights, compatibility):
    """The library's mean_field for one update, with kernels that return the given messages."""
    kernels = [lambda q, m=m: m for m in messages]
    return torch.softmax(mean_field(unary, kernels, weights, 1, compatibility), dim=1)


def check_crf_rnn_step(crf_rnn_step: Callable) -> None:
    """The student's update against the library's, for Potts and for a random compatibility."""
    generator = torch.Generator().manual_seed(0)
    for trial, classes in enumerate((2, 3, 5)):
        unary = torch.rand(7, classes, generator=generator) * 4
        messages = [torch.rand(7, classes, generator=generator) for _ in range(2)]
        weights = [3.0, 0.5 + trial]
        potts = 1.0 - torch.eye(classes)
        for name, compatibility in (
            ("Potts", potts),
            ("a random compatibility", torch.rand(classes, classes, generator=generator)),
        ):
            got = attempt(crf_rnn_step, unary, messages, weights, compatibility)
            expect(
                isinstance(got, torch.Tensor) and got.shape == unary.shape,
                f"crf_rnn_step should return a (P, C) tensor like unary {tuple(unary.shape)}, "
                f"got {getattr(got, 'shape', type(got).__name__)}",
            )
            expect(
                torch.allclose(got.sum(dim=1), torch.ones(7), atol=1e-5),
                "each row of the new Q should sum to 1: softmax over the labels (dim=1)",
            )
            want = _library_step(unary, messages, weights, compatibility)
            expect(
                torch.allclose(got, want, atol=1e-5),
                f"with {name}, {classes} labels: largest difference from the library's update "
                f"{(got - want).abs().max():.3g}. The energy is -unary minus the weighted "
                "messages sum_k w_k m_k multiplied by mu^T (mu(l, l') is the cost of l beside l').",
            )
    passed("crf_rnn_step", "equal to the library's update, Potts and any compatibility")


def check_adjoint_gap(adjoint_gap: Callable) -> None:
    """The student's dot-product test on maps whose answer is known whatever the draws."""
    generator = torch.Generator().manual_seed(1)
    matrix = torch.randn(6, 6, dtype=torch.float64, generator=generator)
    shape = (6, 3)
    cases = [
        ("backward = A^T", lambda y: matrix.T @ y, 0.0),
        ("backward = 2 A^T", lambda y: 2 * matrix.T @ y, 1.0),
    ]
    for name, backward, expected in cases:
        gap = attempt(adjoint_gap, lambda x: matrix @ x, backward, shape)
        expect(
            isinstance(gap, float),
            f"adjoint_gap should return a Python float, got {type(gap).__name__}",
        )
        expect(
            abs(gap - expected) < 1e-6,
            f"forward = A x, {name}: the gap should be {expected:g}, got {gap:.3g}. Compare "
            "<forward(x), y> with <x, backward(y)>, relative to |<forward(x), y>|.",
        )
    gap = attempt(adjoint_gap, lambda x: matrix @ x, lambda y: matrix @ y, shape)
    expect(
        gap > 1e-3,
        f"A is not symmetric, so backward = A is not its transpose: expected a clear gap, got "
        f"{gap:.3g}. Does your function call backward at all?",
    )
    passed("adjoint_gap", "0 for the transpose, 1 for twice the transpose")
