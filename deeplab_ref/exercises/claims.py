"""Checks for the exercises of notebook 09 (what each idea buys: the paper's claims under control).

* ``check_scaled_rates``: the paper's atrous rates (for a 41x41 score map) at the same fraction
  of a smaller map, rounded, at least 1, against ``claims.scaled_rates``;
* ``check_is_real``: the rule for a finding (the means differ by more than the two standard
  deviations together), against ``claims.is_real`` on hand-made seeds.
"""

from __future__ import annotations

from collections.abc import Callable

from deeplab_ref.claims import is_real, scaled_rates
from deeplab_ref.exercises import attempt, expect, passed

RATE_CASES = [
    ((6, 12, 18, 24), 11),  # ASPP-L on the CPU preset's 81x81 crops
    ((2, 4, 8, 12), 11),  # ASPP-S: 2 and 4 both become 1
    ((2, 4, 8, 12), 7),  # ASPP-S at stride 16 on 97x97 crops: 2 x 7 / 41 rounds to 0, kept at 1
    ((12,), 11),  # LargeFOV
    ((6, 12, 18, 24), 41),  # the paper's own map: unchanged
    ((6, 12, 18, 24), 21),  # output stride 16 on the 321 crops
    ((4, 8, 12), 65),  # a larger map than the paper's (513 at stride 8)
]


def check_scaled_rates(scaled: Callable) -> None:
    """scaled(rates, score_map) -> tuple of ints against ``claims.scaled_rates``."""
    name = "scaled_rates"
    for rates, score_map in RATE_CASES:
        got = attempt(scaled, rates, score_map)
        want = scaled_rates(rates, score_map)
        case = f"rates {rates} on a {score_map}x{score_map} map"
        expect(
            isinstance(got, tuple) and all(isinstance(r, int) for r in got),
            f"for {case} expected a tuple of ints, got {got!r}",
        )
        if got == want:
            continue
        floored = tuple(max(1, r * score_map // 41) for r in rates)
        hint = (
            "a rate of 0 is no convolution: keep every rate at least 1"
            if 0 in got
            else "round to the nearest integer rather than down"
            if got == floored
            else "a rate r for the 41x41 map becomes r x score_map / 41"
        )
        expect(False, f"for {case} got {got}, expected {want}: {hint}")
    passed(name, f"{len(RATE_CASES)} cases, against claims.scaled_rates")


SEED_CASES = [
    ([0.70, 0.71, 0.72], [0.60, 0.61, 0.62]),  # far apart, tight: real
    ([0.70, 0.60, 0.65], [0.66, 0.64, 0.68]),  # one noisy variant: within the spread
    ([0.69, 0.70, 0.71], [0.66, 0.67, 0.68]),  # 0.03 apart, spreads 0.01 + 0.01: real
    ([0.69, 0.70, 0.71], [0.675, 0.685, 0.695]),  # 0.015 apart, spreads 0.02: not
    ([0.50, 0.80, 0.65], [0.60, 0.61, 0.62]),  # means 0.04 apart, one spread 0.15: not
    ([0.69, 0.70, 0.71], [0.672, 0.682, 0.692]),  # 0.018 apart: within 2 sample stds (0.02)
]


def check_is_real(real: Callable) -> None:
    """real(a, b) -> bool for two variants' per-seed values, against ``claims.is_real``."""
    name = "is_real"
    for a, b in SEED_CASES:
        for first, second in ((a, b), (b, a)):
            got = attempt(real, list(first), list(second))
            want = is_real(first, second)
            expect(isinstance(got, bool), f"expected True or False, got {type(got).__name__}")
            expect(
                got == want,
                f"for {first} against {second} got {got}, expected {want}: compare the "
                "difference of the means with the sum of the two sample standard deviations "
                "(statistics.stdev)",
            )
    passed(name, f"{len(SEED_CASES)} pairs both ways, against claims.is_real")
