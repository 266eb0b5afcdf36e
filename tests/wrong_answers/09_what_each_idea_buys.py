"""Plausible wrong answers to notebook 09's exercises, each of which its check must reject."""

WRONG_ANSWERS = {
    # Compares with the larger of the two spreads instead of their sum: calls touching
    # intervals a finding.
    "is_real": """
import statistics


def is_real(a, b):
    spread = max(statistics.stdev(a), statistics.stdev(b))
    return abs(statistics.fmean(a) - statistics.fmean(b)) > spread
""",
    # Forgets that a rate must stay at least 1: ASPP-S's rate 2 becomes 0 on an 11x11 map.
    "scaled_rates": """
def scaled_rates(rates, score_map):
    return tuple(round(r * score_map / 41) for r in rates)
""",
}
