from __future__ import annotations

from datetime import date

import pytest

from network_anim.challenges.scoring import in_period, sale_points
from network_anim.config.settings import Config
from tests.conftest import REPO


@pytest.fixture(scope="module")
def challenge():  # type: ignore[no-untyped-def]
    import tomllib

    data = tomllib.loads((REPO / "config.example.toml").read_text(encoding="utf-8"))
    return Config.model_validate(data).challenge("pbx-2027")


@pytest.mark.parametrize(
    ("family", "quantity", "amount", "sold_on", "points"),
    [
        ("pbx", 2, 2500.0, date(2027, 2, 1), 300),  # family rule: 150 per unit
        ("pbx", 2, 2500.0, date(2027, 3, 10), 600),  # the March boost doubles pbx
        ("accessories", 10, 890.0, date(2027, 3, 10), 45),  # 0.05/EUR, no boost for them
        ("network", 3, 1170.0, date(2027, 2, 1), 117),  # base rule: 0.1 per EUR
        ("network", 1, 5.0, date(2027, 2, 1), 1),  # 0.5 rounds half up
    ],
)
def test_sale_points(challenge, family, quantity, amount, sold_on, points) -> None:  # type: ignore[no-untyped-def]
    assert (
        sale_points(challenge, family=family, quantity=quantity, amount=amount, sold_on=sold_on)
        == points
    )


def test_period_is_inclusive(challenge) -> None:  # type: ignore[no-untyped-def]
    assert in_period(challenge, date(2027, 1, 4)) and in_period(challenge, date(2027, 4, 30))
    assert not in_period(challenge, date(2027, 1, 3)) and not in_period(challenge, date(2027, 5, 1))
