"""Small arithmetic shared by the report modules: rates and rounding."""

from __future__ import annotations

RATE_PLACES = 4
AMOUNT_PLACES = 2


def rate(numerator: float, denominator: float) -> float | None:
    """numerator / denominator rounded, or ``None`` when there is nothing to divide by."""
    if not denominator:
        return None
    return round(numerator / denominator, RATE_PLACES)


def amount(value: float) -> float:
    # "+ 0.0" turns the -0.0 that rounding a tiny negative gives into 0.0.
    return round(value, AMOUNT_PLACES) + 0.0
