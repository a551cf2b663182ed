"""How a sale becomes points in a challenge: a pure function of the rules and the sale."""

from __future__ import annotations

import math
from datetime import date

from network_anim.config.settings import ChallengeConfig


def sale_points(
    challenge: ChallengeConfig, *, family: str, quantity: float, amount: float, sold_on: date
) -> int:
    """Points per unit and per euro (the family's rule replaces the base rule), times every
    multiplier whose dates cover the sale; rounded half up to whole points."""
    rules = challenge.scoring
    rule = rules.families.get(family)
    per_unit = rule.points_per_unit if rule else rules.points_per_unit
    per_euro = rule.points_per_euro if rule else rules.points_per_euro
    points = quantity * per_unit + amount * per_euro
    for boost in rules.multipliers:
        if boost.start <= sold_on <= boost.end and (not boost.families or family in boost.families):
            points *= boost.factor
    return math.floor(points + 0.5)


def in_period(challenge: ChallengeConfig, sold_on: date) -> bool:
    return challenge.start <= sold_on <= challenge.end
