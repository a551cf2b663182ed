"""What a challenge's digests and reminders say: each participant's rank and points as
the leaderboard gives them on the day the message is planned, read in the rendered
bodies, over simulated weeks of points earned; and no placeholder in any body.

Also: a step whose template uses a variable nothing provides fails ``netanim validate``.
"""

from __future__ import annotations

import asyncio
import random
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App, open_app
from network_anim.challenges.leaderboard import leaderboard
from network_anim.challenges.ledger import credit
from network_anim.challenges.registration import register
from network_anim.challenges.standings import variable_sources
from network_anim.clock import SimulatedClock
from network_anim.db.models import Campaign, Contact, Delivery, Message
from network_anim.demo.network import generate_network_csv
from network_anim.engine.simulation import RecordingTransport, simulate
from network_anim.network.importer import import_network
from network_anim.network.network_csv import ImportDefaults, parse_network_csv
from tests.conftest import REPO, write_config

PARIS = ZoneInfo("Europe/Paris")
START = datetime(2027, 1, 1, 8, 0, tzinfo=PARIS)
CHALLENGE = "pbx-2027"
# What each channel's digest and reminder state, read back: (rank, board size, points).
_ORD = r"(?P<rank>\d+)(?:er|e)"
STATES = {
    ("digest", "email"): rf"{_ORD} sur (?P<n>\d+) avec (?P<points>\d+) points",
    (
        "digest",
        "print",
    ): rf"Vous êtes {_ORD} sur (?P<n>\d+) participants avec (?P<points>\d+) points",
    ("digest", "sms"): rf" : {_ORD}/(?P<n>\d+) \(",
    ("reminder", "email"): rf"(?P<points>\d+) points, {_ORD} sur (?P<n>\d+) participants",
    ("reminder", "print"): rf"Vous totalisez (?P<points>\d+) points et êtes {_ORD} sur (?P<n>\d+)",
    ("reminder", "sms"): rf"(?P<points>\d+) pts, {_ORD}/(?P<n>\d+) au ",
}
PLACEHOLDERS = ("-e ", "-e)", " - ", "None", "{{", "}}", " e sur", " e/", "êtes e")


@pytest.fixture
def challenge_app(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    example = (REPO / "config.example.toml").read_text(encoding="utf-8")
    challenge_part = example[example.index("# Products partners sell") :]
    config = write_config(tmp_path, database_url, challenge_part, example_campaigns=False)
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "objectives.csv").write_text(
        "challenge_id;scope;subject;due;target\n", encoding="utf-8"
    )
    network = parse_network_csv(
        generate_network_csv(companies=8, contacts=70, seed=5),
        source="generated",
        defaults=ImportDefaults(),
    )
    app = open_app(config, clock=SimulatedClock(START), variables=variable_sources())
    import_network(app.engine, network, now=START - timedelta(days=200), source="generated")
    yield app
    app.close()


def _run(app: App, until: datetime, on_step=None) -> None:  # type: ignore[no-untyped-def]
    transports = {channel: RecordingTransport() for channel in app.definitions}
    report = asyncio.run(
        simulate(app, until, transports, grace=timedelta(hours=1), on_step=on_step)
    )
    assert report.firings.errors == {}, report.firings.errors
    assert report.sequences.errors == {}, report.sequences.errors


def _new_rows(app: App, seen: set[int]) -> list[tuple[Delivery, str, str]]:
    with Session(app.engine) as session:
        rows = session.execute(
            select(Delivery, Contact.external_id, Campaign.key)
            .join(Contact, Contact.id == Delivery.contact_id)
            .join(Message, Message.id == Delivery.message_id)
            .join(Campaign, Campaign.id == Message.campaign_id)
            .where(Delivery.id.not_in(seen) if seen else True)  # type: ignore[union-attr]
        ).all()
    seen.update(d.id for d, _, _ in rows)  # type: ignore[misc]
    return list(rows)


def test_digests_and_reminders_state_the_leaderboard_of_their_day(challenge_app) -> None:  # type: ignore[no-untyped-def]
    app = challenge_app
    rng = random.Random(11)
    _run(app, datetime(2027, 1, 5, 10, tzinfo=PARIS))  # launch letters are out
    challenge = app.config.challenge(CHALLENGE)
    with Session(app.engine) as session, session.begin():
        sellers = session.scalars(
            select(Contact).where(Contact.level == "seller").order_by(Contact.id)
        ).all()
        participants = register(app, session, challenge, list(sellers[:40]), via="test")
        ids = [c.id for c in participants]
    assert len(ids) == 40
    seen: set[int] = set()
    _new_rows(app, seen)  # what went out before anyone had points
    checked: dict[tuple[str, str], int] = {}
    every_body: list[str] = []

    def on_step(now: datetime) -> None:
        board = {row.subject: row for row in leaderboard(app, CHALLENGE, now=now)}
        for delivery, contact, campaign in _new_rows(app, seen):
            every_body.extend(t for t in (delivery.subject, delivery.body_text) if t)
            part = campaign.removeprefix(f"{CHALLENGE}-")
            pattern = STATES.get((part, delivery.channel))
            if pattern is None:
                continue
            found = re.search(pattern, delivery.body_text)
            assert found, f"{campaign} {delivery.channel} to {contact}: {delivery.body_text!r}"
            row = board[contact]
            assert int(found.group("rank")) == row.rank, (contact, delivery.body_text, row)
            assert int(found.group("n")) == len(board)
            if "points" in found.groupdict():
                assert int(found.group("points")) == row.points, (contact, delivery.body_text)
            if delivery.channel == "email":
                label = "1er" if row.rank == 1 else f"{row.rank}e"
                assert f"vous êtes {label} " in delivery.subject, delivery.subject
            checked[(part, delivery.channel)] = checked.get((part, delivery.channel), 0) + 1
        # Then the week's points: a few participants sell, some tie.
        if now.weekday() == 1 and now.hour < 12:
            with Session(app.engine) as session, session.begin():
                for contact_id in rng.sample(ids, 12):
                    credit(
                        session,
                        contact_id=contact_id,
                        points=rng.choice((50, 100, 100, 150, 390)),
                        kind="earn",
                        source_key=f"test:{now.isoformat()}:{contact_id}",
                        now=now,
                        challenge_key=CHALLENGE,
                        reason="test sale",
                    )

    _run(app, datetime(2027, 2, 12, 18, tzinfo=PARIS), on_step)
    # Five weekly digests (14 Jan to 11 Feb) and the February reminder, to 40 participants.
    # Each participant gets each message on one channel (email, else SMS or a letter).
    assert sum(n for (part, _), n in checked.items() if part == "digest") == 40 * 5, checked
    assert sum(n for (part, _), n in checked.items() if part == "reminder") == 40, checked
    assert {channel for _, channel in checked} == {"email", "sms", "print"}, checked
    assert every_body
    for body in every_body:
        assert not any(p in body for p in PLACEHOLDERS), body
    with Session(app.engine) as session:
        unsent = session.scalar(select(Delivery.id).where(Delivery.status == "failed").limit(1))
    assert unsent is None


def test_validate_names_a_variable_the_step_does_not_provide(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    templates = tmp_path / "templates"
    for channel in ("email", "intranet", "sms", "print", "flash"):
        source = REPO / "templates" / channel
        (templates / channel).mkdir(parents=True)
        for path in source.iterdir():
            (templates / channel / path.name).write_bytes(path.read_bytes())
    (templates / "email" / "score.fr.txt").write_text(
        "{% block subject %}Votre score{% endblock %}\n"
        "{% block body %}Bonjour {{ contact.first_name }}, vous avez {{ points }} points."
        "{% endblock %}\n",
        encoding="utf-8",
    )
    for channel in ("intranet", "sms", "print"):
        (templates / channel / "score.fr.txt").write_text(
            "{% block subject %}Votre score{% endblock %}\n{% block body %}Votre score"
            " {{ sender_name }} {{ stop_mention }}{% endblock %}\n",
            encoding="utf-8",
        )
    campaign = """
[[campaigns]]
id = "scores"
name = "Scores"
kind = "newsletter"
audience = "all"
schedule = { cron = "0 9 * * mon" }
steps = [{ name = "weekly", template = "score", urgency = "reminder" }]
"""
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'v.db'}", campaign)
    text = config.read_text(encoding="utf-8").replace(
        f'templates_dir = "{REPO / "templates"}"', f'templates_dir = "{templates}"'
    )
    config.write_text(text, encoding="utf-8")
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "objectives.csv").write_bytes(
        (REPO / "examples" / "objectives.csv").read_bytes()
    )
    result = cli("validate", "-c", str(config))
    assert result.code == 1
    problem = next(line for line in result.err.splitlines() if "'points'" in line)
    for part in ("campaign scores", "step weekly", "template score", "email/score.fr.txt:2"):
        assert part in problem, problem
    assert "'points' is undefined" in problem and "add points to the campaign's vars" in problem
    # Given in the campaign's vars, the same config validates.
    config.write_text(
        text.replace(
            'steps = [{ name = "weekly"', 'vars = { points = 3 }\nsteps = [{ name = "weekly"'
        ),
        encoding="utf-8",
    )
    assert cli("validate", "-c", str(config)).code == 0
