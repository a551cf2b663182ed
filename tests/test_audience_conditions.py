"""Audiences with all/any/not conditions: compiled to one SQL query whose members are
those a plain Python reading of the same data finds, counted as the planner streams
them, explained contact by contact; bad conditions named by their key path. Both
backends (the app fixture)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlmodel import Session

from network_anim.app import App
from network_anim.config.audience_conditions import (
    AllOf,
    AnyOf,
    ChallengeTest,
    Condition,
    Engaged,
    FieldTest,
    InSegment,
    Not,
    OptedOut,
    Reachable,
)
from network_anim.config.settings import Audience
from network_anim.config.validation import parse_model
from network_anim.db.models import (
    Company,
    CompanySegment,
    Consent,
    Contact,
    Event,
    LedgerEntry,
    Participant,
)
from network_anim.domain import Level
from network_anim.network.audience import count_audience, iter_audience
from network_anim.network.audience_explain import audience_counts, explain
from network_anim.network.rfm import SCHEME
from tests.conftest import write_config

DAY = timedelta(days=1)


def _ids(app: App, external_ids: list[str]) -> dict[str, int]:
    with Session(app.engine) as session:
        rows = session.execute(
            select(Contact.external_id, Contact.id).where(Contact.external_id.in_(external_ids))  # type: ignore[attr-defined]
        )
        return dict(rows.all())  # type: ignore[arg-type]


@pytest.fixture
def engaged(network: App) -> App:
    """The sample network with a history: opens (a person's and a scanner's), clicks,
    replies, a bounce, RFM segments, a challenge's registrations and points, an SMS
    opt-out, all dated from the engine's clock."""
    now = network.clock.now()
    ids = _ids(network, [f"C{n:04d}" for n in range(1, 16)])
    with Session(network.engine) as session:
        company_ids = dict(session.execute(select(Company.external_id, Company.id)).all())  # type: ignore[call-overload]

        def event(
            contact: str, kind: str, days_ago: float, channel: str, machine: bool = False
        ) -> None:
            session.add(
                Event(
                    type=kind,
                    channel=channel,
                    contact_id=ids[contact],
                    occurred_at=now - days_ago * DAY,
                    machine=machine,
                )
            )

        event("C0001", "opened", 3, "email")
        event("C0002", "opened", 29, "email")
        event("C0003", "opened", 31, "email")  # outside 30 days
        event("C0006", "opened", 2, "email", machine=True)  # a scanner: not a person
        event("C0007", "clicked", 10, "email")
        event("C0009", "read", 5, "intranet")
        event("C0010", "replied", 1, "sms")
        event("C0014", "bounced", 40, "email")
        event("C0015", "opened", 1, "email")
        for company, segment in (("D001", "champions"), ("D003", "at_risk"), ("D004", "loyal")):
            session.add(
                CompanySegment(
                    company_id=company_ids[company], scheme=SCHEME, segment=segment, computed_at=now
                )
            )
        for contact, points in (("C0002", 120), ("C0007", 80), ("C0010", 0)):
            session.add(
                Participant(challenge_key="pbx-2027", contact_id=ids[contact], registered_at=now)
            )
            if points:
                session.add(_entry(ids[contact], "earn", points, now))
        session.add(_entry(ids["C0002"], "adjust", -30, now))  # C0002: 90 points
        session.add(_entry(ids["C0007"], "redeem", -500, now))  # the shop's: not ranked
        session.execute(update(Company).where(Company.external_id == "D006").values(street=""))
        session.execute(
            update(Contact)
            .where(Contact.id == ids["C0008"])
            .values(email_invalid_at=now - 5 * DAY, email_invalid_reason="hard bounce")
        )
        session.execute(
            update(Consent)
            .where(Consent.contact_id == ids["C0004"], Consent.channel == "sms")
            .values(basis="opted_out")
        )
        session.commit()
    return network


def _entry(contact_id: int, kind: str, points: int, now: datetime) -> LedgerEntry:
    return LedgerEntry(
        contact_id=contact_id,
        challenge_key="pbx-2027",
        kind=kind,
        points=points,
        source_key=f"test:{contact_id}:{kind}",
        created_at=now,
    )


# -- a plain reading of the same data: what each condition means ------------------------


def _facts(app: App) -> dict[str, dict[str, Any]]:
    now = app.clock.now()
    with Session(app.engine) as session:
        contacts = session.execute(
            select(Contact, Company).join(Company, Company.id == Contact.company_id)
        ).all()  # type: ignore[arg-type]
        events = session.execute(select(Event)).scalars().all()
        segments = {
            s.company_id: s.segment for s in session.execute(select(CompanySegment)).scalars()
        }
        registered = {
            (p.challenge_key, p.contact_id) for p in session.execute(select(Participant)).scalars()
        }
        ledger = session.execute(select(LedgerEntry)).scalars().all()
        opted = {
            (c.contact_id, c.channel)
            for c in session.execute(select(Consent)).scalars()
            if c.basis == "opted_out"
        }
    facts = {}
    for contact, company in contacts:
        facts[contact.external_id] = {
            "contact": contact,
            "company": company,
            "events": [e for e in events if e.contact_id == contact.id],
            "segment": segments.get(company.id),
            "registered": {key for key, cid in registered if cid == contact.id},
            "points": lambda key, cid=contact.id: sum(
                e.points
                for e in ledger
                if e.contact_id == cid
                and e.challenge_key == key
                and e.kind in ("earn", "bonus", "adjust")
            ),
            "opted": {ch for cid, ch in opted if cid == contact.id},
            "now": now,
        }
    return facts


def _holds(condition: Condition, f: dict[str, Any]) -> bool:
    contact, company = f["contact"], f["company"]
    match condition:
        case AllOf(parts):
            return all(_holds(p, f) for p in parts)
        case AnyOf(parts):
            return any(_holds(p, f) for p in parts)
        case Not(part):
            return not _holds(part, f)
        case FieldTest(field, values, prefixes, empty):
            table, name = field.split(".")
            value = getattr(contact if table == "contact" else company, name)
            if empty is not None:
                return (value in (None, "")) == empty
            if prefixes:
                return value is not None and any(str(value).startswith(p) for p in prefixes)
            return value in values
        case InSegment(segments):
            return f["segment"] in segments
        case ChallengeTest(key, registered, at_least, below):
            ok = registered is None or ((key in f["registered"]) == registered)
            points = f["points"](key)
            return (
                ok
                and (at_least is None or points >= at_least)
                and (below is None or points < below)
            )
        case Engaged(kind, within, channel):
            return any(
                e.type == kind
                and not (kind in ("opened", "clicked") and e.machine)
                and (channel is None or e.channel == channel)
                and (within is None or e.occurred_at >= f["now"] - within * DAY)
                for e in f["events"]
            )
        case Reachable(channel):
            if channel == "email":
                return (
                    bool(contact.email)
                    and contact.email_kind != "none"
                    and contact.email_invalid_at is None
                )
            if channel == "mobile":
                return bool(contact.mobile)
            if channel == "web":
                return contact.web_access
            return bool(company.street and company.postcode and company.city)
        case OptedOut(channel):
            return channel in f["opted"]
    raise AssertionError(condition)


def _audience(where: dict[str, Any], **filters: Any) -> Audience:
    return parse_model(Audience, {"name": "t", "where": where, **filters}, source="test")


WHERES = [
    {"event": "opened", "within_days": 30},
    {"never": "opened"},
    {"never": "opened", "within_days": 30, "channel": "email"},
    {"event": "clicked"},
    {"event": "read", "within_days": 7, "channel": "intranet"},
    {"any": [{"event": "replied"}, {"event": "bounced", "within_days": 60}]},
    {"all": [{"reachable": "mobile"}, {"not": {"reachable": "web"}}]},
    {"reachable": "email"},
    {"reachable": "postal"},
    {"not": {"any": [{"reachable": "email"}, {"opted_out": "sms"}]}},
    {"field": "company.region", "in": ["Bretagne", "Hauts-de-France"]},
    {"field": "company.postcode", "starts_with": ["69", "59"]},
    {"field": "contact.mobile", "empty": True},
    {"segment": ["champions", "loyal"]},
    {"challenge": "pbx-2027", "registered": True},
    {"challenge": "pbx-2027", "registered": False},
    {"challenge": "pbx-2027", "points_at_least": 80},
    {"challenge": "pbx-2027", "points_below": 90, "registered": True},
    {
        "all": [
            {"any": [{"segment": ["champions"]}, {"field": "company.size", "in": ["ETI"]}]},
            {"not": {"all": [{"event": "opened", "within_days": 30}, {"reachable": "web"}]}},
            {"any": [{"field": "contact.level", "in": ["seller"]}, {"not": {"never": "clicked"}}]},
        ]
    },
]


@pytest.mark.parametrize("where", WHERES, ids=[json.dumps(w)[:60] for w in WHERES])
def test_members_are_what_the_conditions_say(engaged: App, where: dict[str, Any]) -> None:
    audience = _audience(where)
    assert audience.condition is not None
    facts = _facts(engaged)
    expected = sorted(
        k for k, f in facts.items() if _holds(audience.condition, f) and f["contact"].active
    )
    now = engaged.clock.now()
    with Session(engaged.engine) as session:
        streamed = [
            c.external_id for batch in iter_audience(session, audience, now=now) for c, _ in batch
        ]
        counted = count_audience(session, audience, now=now)
        counts = audience_counts(session, audience, now=now)
    assert streamed == expected  # what the planner plans for
    assert counted == counts["contacts"] == len(expected)


def test_the_data_makes_every_condition_discriminate(engaged: App) -> None:
    """No condition above keeps everyone or no one: each test really decides."""
    facts = _facts(engaged)
    for where in WHERES:
        condition = _audience(where).condition
        kept = [k for k, f in facts.items() if _holds(condition, f)]  # type: ignore[arg-type]
        assert 0 < len(kept) < len(facts), where


def test_within_days_counts_back_from_the_engine_clock(engaged: App) -> None:
    audience = _audience({"event": "opened", "within_days": 30})
    with Session(engaged.engine) as session:
        now = engaged.clock.now()

        def members(at: datetime) -> set[str]:
            return {c.external_id for b in iter_audience(session, audience, now=at) for c, _ in b}

        assert members(now) == {"C0001", "C0002", "C0015"}  # the scanner's open is not C0006's
        assert members(now + 2 * DAY) == {"C0001", "C0015"}  # C0002's open is 31 days old then


def test_flat_filters_and_conditions_add_up(engaged: App) -> None:
    audience = _audience({"event": "opened", "within_days": 30}, levels=["seller"])
    with Session(engaged.engine) as session:
        now = engaged.clock.now()
        assert [c.external_id for b in iter_audience(session, audience, now=now) for c, _ in b] == [
            "C0002",
            "C0015",
        ]
        assert count_audience(session, audience, now=now, min_level=Level.DIRECTOR) == 0


def test_explain_names_the_deciding_condition(engaged: App) -> None:
    audience = _audience(WHERES[-1])
    now = engaged.clock.now()
    with Session(engaged.engine) as session:
        # C0001: a champion, opened 3 days ago with web access: dropped by the "not".
        dropped = explain(session, audience, "C0001", now=now)
        # C0007: ETI company, a seller, no recent open: in, kept by the size and the level.
        kept = explain(session, audience, "C0007", now=now)
        # C0004: Bretagne, TPE, no segment: dropped by the first "any".
        outside = explain(session, audience, "C0004", now=now)
    assert not dropped.member
    assert [(v.path, v.label) for v in dropped.deciding] == [("where.all[1]", "not: all of 2")]
    assert kept.member
    assert [(v.path, v.label) for v in kept.deciding] == [
        ("where.all[0].any[1]", "company.size is 'ETI'"),
        ("where.all[2].any[0]", "contact.level is 'seller'"),
    ]
    assert [(v.path, v.passed) for v in outside.deciding] == [("where.all[0]", False)]
    assert [t.label for t in outside.tests][:2] == ["active contact", "level seller or above"]


def test_explain_a_filter_that_drops(engaged: App) -> None:
    audience = _audience({"reachable": "mobile"}, levels=["director"])
    with Session(engaged.engine) as session:
        found = explain(session, audience, "C0002", now=engaged.clock.now())
    assert not found.member
    assert [(v.path, v.label) for v in found.deciding] == [("levels", "levels: director")]


# The appended audience comes after config.example.toml's own.
EXAMPLE_AUDIENCES = (
    (Path(__file__).parent.parent / "config.example.toml").read_text().count("\n[[audiences]]")
)
AUDIENCES = """
[[audiences]]
name = "quiet-sellers"
levels = ["seller"]
[audiences.where]
all = [
  { reachable = "mobile" },
  { never = "opened", within_days = 30 },
]
"""


def test_cli_count_and_explain(  # type: ignore[no-untyped-def]
    engaged: App, cli, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import network_anim.app as app_module
    from network_anim.clock import SimulatedClock

    # The commands read the engine's clock: the moment the history was written at.
    opened = app_module.open_app
    moment = engaged.clock.now()
    monkeypatch.setattr(
        app_module,
        "open_app",
        lambda *a, **kw: opened(*a, **{**kw, "clock": SimulatedClock(moment)}),
    )
    config = write_config(tmp_path, database_url, AUDIENCES)
    result = cli("audience", "count", "quiet-sellers", "-c", str(config), "--json")
    assert result.code == 0, result.err
    # Sellers with a mobile: C0002 C0005 C0007 C0010 C0014 C0015; opened lately: C0002, C0015.
    assert json.loads(result.out)["contacts"] == 4
    # The planner plans for exactly these contacts (a dry run routes every one of them).
    planned = cli(
        "broadcast", "-c", str(config), "--audience", "quiet-sellers", "--urgency", "info",
        "--template", "welcome", "--dry-run", "--explain", "--json",
    )  # fmt: skip
    assert planned.code == 0, planned.err
    routed = json.loads(planned.out)
    assert routed["audience"] == 4
    assert sorted(e["contact"] for e in routed["explain"]) == ["C0005", "C0007", "C0010", "C0014"]
    result = cli("audience", "explain", "quiet-sellers", "--contact", "C0002", "-c", str(config))
    assert result.code == 0, result.err
    assert "contact C0002 is not in audience quiet-sellers" in result.out
    assert "dropped by where.all[1]: not: opened in the last 30 days" in result.out
    result = cli("audience", "explain", "quiet-sellers", "--contact", "C9999", "-c", str(config))
    assert result.code == 1 and "no contact 'C9999'" in result.err + result.out


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (
            '{ all = [{ reachable = "mobile" }, { event = "opened", within_days = 0 }] }',
            "audiences[N].where.all[1].within_days: write a whole number of at least 1",
        ),
        (
            '{ any = [{ not = { reachable = "fax" } }] }',
            "audiences[N].where.any[0].not.reachable: 'fax' is not one of email, mobile, web, postal",
        ),
        (
            '{ all = [{ field = "company.colour", in = ["red"] }] }',
            "audiences[N].where.all[0].field: 'company.colour' is not one of",
        ),
        (
            '{ all = [{ event = "opened", reachable = "web" }] }',
            "audiences[N].where.all[0]: several tests in one condition (event, reachable)",
        ),
        (
            '{ challenge = "nope", registered = true }',
            "audiences[N].where: challenge 'nope' is not a defined challenge",
        ),
    ],
)
def test_a_bad_condition_is_named_by_its_key_path(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, database_url: str, where: str, message: str
) -> None:
    config = write_config(tmp_path, database_url, f'[[audiences]]\nname = "bad"\nwhere = {where}\n')
    message = message.replace("audiences[N]", f"audiences[{EXAMPLE_AUDIENCES}]")
    commands = [("validate", "-c", str(config))]
    if "defined challenge" not in message:  # a reference: validate's to check
        commands.append(("audience", "count", "all", "-c", str(config)))
    for command in commands:
        result = cli(*command)
        assert result.code == 1, command
        assert message in result.err + result.out, command
        assert "Traceback" not in result.err
