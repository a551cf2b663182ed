"""`netanim demo`: what it writes carries the simulated months (one clock), and its clicks
follow the stored links of its emails through the tracking path (issue 20)."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from network_anim.channels.print_layout import letter_date
from tests.conftest import REPO

ARGS = ("--from", "2026-12-01", "--months", "4", "--contacts", "200", "--seed", "11")
PARIS = ZoneInfo("Europe/Paris")
PRODUCT = "https://www.example.com/produits/standard-ip-s40"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo20") / "d"
    done = subprocess.run(
        [sys.executable, "-m", "network_anim", "demo", "--dir", str(folder), *ARGS, "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NETANIM_SECRET_KEY": "k" * 40},
    )
    assert done.returncode == 0, done.stderr
    return folder


def _rows(folder: Path, sql: str) -> list[tuple]:
    engine = create_engine(f"sqlite:///{folder / 'netanim.db'}")
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def test_emails_are_dated_by_the_simulated_clock(demo: Path) -> None:
    sent = {
        Path(provider): _utc(at)
        for provider, at in _rows(
            demo, "SELECT provider_id, sent_at FROM delivery WHERE channel='email' AND sent_at"
        )
    }
    days = set()
    for path in (demo / "outbox" / "email").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        when = message["Date"].datetime
        assert when == sent[path], path  # the moment the engine sent it
        days.add(when.astimezone(PARIS).date())
    assert len(days) >= 60, sorted(days)
    assert min(days) >= datetime(2026, 12, 1).date()
    assert max(days) >= datetime(2027, 3, 1).date()


def test_letters_carry_the_day_of_their_batch_and_files_its_time(demo: Path) -> None:
    batches: dict[str, set[datetime]] = defaultdict(set)
    for provider, at in _rows(
        demo, "SELECT provider_id, sent_at FROM delivery WHERE channel='print' AND sent_at"
    ):
        batches[provider.split("#", 1)[0]].add(_utc(at))
    pdfs = sorted((demo / "exports" / "print").glob("letters-*.pdf"))
    assert {p.name for p in pdfs} == set(batches)
    months = set()
    for pdf in pdfs:
        (moment,) = batches[pdf.name]  # one batch, one moment of the simulated clock
        assert pdf.name.startswith(f"letters-{moment:%Y%m%dT%H%M%S%fZ}-")
        pages = subprocess.run(["pdftotext", pdf, "-"], capture_output=True, text=True).stdout
        dates = set(re.findall(r"Paris, le [^\n]+", pages))
        assert dates == {letter_date(moment.astimezone(PARIS).date(), "Paris")}, pdf.name
        months.add((moment.year, moment.month))
    assert len(months) >= 4  # spread over the simulated months, not one day


def test_sms_records_carry_their_planned_slot(demo: Path) -> None:
    planned = {
        key: (_utc(due), _utc(at))
        for key, due, at in _rows(
            demo,
            "SELECT idempotency_key, due_at, sent_at FROM delivery WHERE channel='sms' AND sent_at",
        )
    }
    lines = (demo / "outbox" / "sms" / "sms.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(planned)
    for line in lines:
        record = json.loads(line)
        due, sent_at = planned[record["idempotency_key"]]
        at = datetime.fromisoformat(record["at"])
        assert at == sent_at and due <= at < due + timedelta(hours=1), record


def _payload(token: str) -> list:
    raw = token.split(".", 1)[0]
    return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))


def test_click_tokens_name_stored_links_and_clicks_count_per_link(demo: Path) -> None:
    links = dict(_rows(demo, "SELECT id, url FROM links"))
    assert PRODUCT in links.values() and "https://www.example.com/catalogue" in links.values()
    tokens = []
    for path in (demo / "outbox" / "email").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        html = message.get_body(("html",))
        if html is not None:  # the quoted-printable decoded: what the reader's client shows
            tokens += re.findall(r"/c/([\w.-]+)", html.get_content())
    assert tokens
    for token in tokens:
        _key, link_id = _payload(token)
        assert isinstance(link_id, int) and link_id in links  # a stored link, no URL
    clicks = _rows(
        demo,
        "SELECT json_extract(data, '$.link_id'), json_extract(data, '$.url'), machine "
        "FROM event WHERE type='clicked' AND json_extract(data, '$.link_id') IS NOT NULL",
    )
    humans = [(link, url) for link, url, machine in clicks if not machine]
    assert humans and all(links[link] == url for link, url in humans)


def test_report_shows_clicks_per_link_for_a_campaign(demo: Path, cli, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    db = ("--db", f"sqlite:///{demo / 'netanim.db'}")
    args = ("report", "-c", "config.example.toml", *db, "--campaign", "monthly-news")
    as_json = cli(*args, "--json")
    assert as_json.code == 0, as_json
    rows = json.loads(as_json.out)["links"]
    product = [r for r in rows if r["url"] == PRODUCT]
    assert product and {r["campaign"] for r in rows} == {"monthly-news"}
    assert sum(r["clicks"] for r in product) > 0 and all(r["link_id"] for r in product)
    assert all(r["people"] <= r["clicks"] for r in rows)

    terminal = cli(*args)
    assert terminal.code == 0, terminal
    assert "Clicks per link" in terminal.out and PRODUCT in terminal.out

    page = demo / "links.html"
    html = cli(*args, "--html", str(page))
    assert html.code == 0, html
    body = page.read_text(encoding="utf-8")
    section = body[body.index('id="links"') : body.index('id="costs"')]
    assert "Clics par lien" in section and PRODUCT in section
    first = product[0]
    assert f'<td class="num">{first["clicks"]}</td>' in section
