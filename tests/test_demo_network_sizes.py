"""Big demo networks (issue 18, point 4): every size ``netanim demo`` accepts imports cleanly.

Company names are unique. Past a couple of thousand companies the names a place gives (its
city, its region) run out; the generator used to give up then, append the company id to
the name ("Paris Télécom Pro D1997") and, when that made the name too long for an address
block, fail on an ``assert``. The big sizes are checked with the importer's own parser and
validation (every line, address and phone number) rather than a database import.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from network_anim.app import App
from network_anim.cli.demo_cmd import demo
from network_anim.demo import run as demo_run
from network_anim.demo.network import generate_network_csv, max_companies
from network_anim.domain import Level
from network_anim.network.network_csv import ImportDefaults, NetworkFile, parse_network_csv


def _demo_contacts() -> tuple[int, int]:
    """What `netanim demo --contacts N` accepts: 10 to 100,000."""
    option = next(p for p in demo.params if p.name == "contacts")
    assert isinstance(option.type, click.IntRange)
    assert option.type.min is not None and option.type.max is not None
    return int(option.type.min), int(option.type.max)


DEMO_MIN, DEMO_MAX = _demo_contacts()


def demo_companies(contacts: int) -> int:
    """The companies ``netanim demo --contacts N`` asks for (pinned by the CLI test below)."""
    return max(1, contacts // 10)


def generate_and_check(companies: int, contacts: int, seed: int = 2026) -> NetworkFile:
    """Generate, then parse as `netanim import network` would: any bad line fails the test."""
    text = generate_network_csv(companies=companies, contacts=contacts, seed=seed)
    network = parse_network_csv(text, source="demo.csv", defaults=ImportDefaults())
    assert len(network.companies) == companies
    assert len(network.contacts) == contacts
    names = [c.name for c in network.companies]
    assert len(set(names)) == companies, Counter(names).most_common(3)
    # Real names only: no company id, no serial number tacked on to tell two apart.
    assert not [n for n in names if re.search(r"\bD\d{3,}\b|\d$", n)]
    directors = Counter(
        c.company_external_id for c in network.contacts if c.level == Level.DIRECTOR
    )
    assert len(directors) == companies and set(directors.values()) == {1}
    return network


@pytest.mark.parametrize(
    ("companies", "contacts"),
    [
        pytest.param(2_000, 25_000, id="25000-over-2000"),
        pytest.param(2_000, 50_000, id="50000-over-2000"),
        # The most companies the demo asks for (--contacts 100000), with the fewest contacts.
        pytest.param(demo_companies(DEMO_MAX), demo_companies(DEMO_MAX)),
    ],
)
def test_big_networks_import_cleanly(companies: int, contacts: int) -> None:
    generate_and_check(companies, contacts)


@pytest.mark.skipif(
    not os.environ.get("NETANIM_BIG_DEMO"),
    reason="~25 s (11 s to generate, 14 s to parse): set NETANIM_BIG_DEMO=1 to run it",
)
def test_the_biggest_demo_network_imports_cleanly() -> None:
    generate_and_check(demo_companies(DEMO_MAX), DEMO_MAX)


@st.composite
def sizes(draw: st.DrawFn) -> tuple[int, int, int]:
    """Companies up to the demo's most, contacts up to 2,000 more (a few seconds at most)."""
    companies = draw(st.integers(1, demo_companies(DEMO_MAX)))
    contacts = draw(st.integers(companies, min(DEMO_MAX, companies + 2_000)))
    return companies, contacts, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=6, deadline=None, database=None)
@given(sizes())
def test_any_size_and_seed_imports_cleanly(size: tuple[int, int, int]) -> None:
    generate_and_check(*size)


def test_names_stay_deterministic_once_the_places_run_out() -> None:
    # 2,000 companies: some take what their place has left, some two family names.
    first = generate_network_csv(companies=2_000, contacts=2_000, seed=5)
    assert generate_network_csv(companies=2_000, contacts=2_000, seed=5) == first
    assert generate_network_csv(companies=2_000, contacts=2_000, seed=6) != first
    network = parse_network_csv(first, source="demo.csv", defaults=ImportDefaults())
    name_of = {c.external_id: c.name for c in network.companies}
    # Établissements Roux-Martin is run by a Roux-Martin.
    founders = [
        c.last_name
        for c in network.contacts
        if c.level == Level.DIRECTOR
        and re.fullmatch(r"[^ -]+(?: [^ -]+)?-[^ -]+(?: [^ -]+)?", c.last_name)
        and c.last_name in name_of[c.company_external_id]
    ]
    assert len(founders) >= 10


def test_a_big_network_imports_into_the_database(app: App) -> None:
    from sqlalchemy import func, select
    from sqlmodel import Session

    from network_anim.db.models import Company, Contact
    from network_anim.network.importer import import_network

    network = generate_and_check(2_000, 2_000, seed=11)
    import_network(app.engine, network, now=app.clock.now(), source="test")
    with Session(app.engine) as session:
        assert session.scalar(select(func.count()).select_from(Company)) == 2_000
        assert session.scalar(select(func.count()).select_from(Contact)) == 2_000


def test_more_companies_than_names_is_refused_up_front() -> None:
    assert max_companies() >= demo_companies(DEMO_MAX)
    with pytest.raises(ValueError, match=rf"companies must be at most {max_companies()}\b"):
        # A billion contacts: only a refusal before any drawing returns at all.
        generate_network_csv(companies=max_companies() + 1, contacts=10**9)


class _Asked(Exception):
    pass


def test_demo_companies_is_what_the_demo_asks_for(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    asked: list[tuple[int, int]] = []

    def record(*, companies: int, contacts: int, seed: int) -> str:
        asked.append((companies, contacts))
        raise _Asked

    monkeypatch.setattr(demo_run, "generate_network_csv", record)
    monkeypatch.chdir(tmp_path)  # the packaged example config
    for contacts in (DEMO_MIN, 25_000, DEMO_MAX):
        with pytest.raises(_Asked):
            cli("demo", "--contacts", str(contacts), "--dir", str(tmp_path / str(contacts)))
    assert asked == [(demo_companies(n), n) for n in (DEMO_MIN, 25_000, DEMO_MAX)]
