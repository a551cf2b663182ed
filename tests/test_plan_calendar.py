"""`netanim plan --html FILE`: the campaign calendar page. Its figures per local day (a
message just before midnight UTC is the next Paris day's), deferrals and missed firings
on their days, texts that cannot end its <script> element, and the page itself in
Debian's Chromium (Playwright, never a downloaded browser) over the demo's four months:
a screenshot that is not blank, a click on a day that lists that day's messages."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from network_anim.campaigns.scheduled import register_campaigns
from network_anim.demo.run import open_demo_app, prepare_demo
from network_anim.engine.simulation import MissedFiring, SentMessage, deferred_from
from network_anim.reports.calendar_html import build_calendar, render_calendar
from tests.conftest import REPO

PARIS = ZoneInfo("Europe/Paris")
CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed")
# The demo's four months, as `netanim demo` runs them from 1 December.
DEMO_FROM, DEMO_TO = "2026-12-01", "2027-04-01"


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


def message(
    when: datetime,
    channel: str,
    cost: float,
    *,
    campaign: str = "monthly-news",
    reason: str = "info: portal post + email alert",
    held_from: datetime | None = None,
) -> SentMessage:
    return SentMessage(
        when=when,
        contact="C0001",
        name="Julien Garnier",
        campaign=campaign,
        step="news",
        channel=channel,
        reason=reason,
        cost=cost,
        deferred_from=held_from,
    )


# Monday 7 December 2026 in Paris; the last one is 23:30 UTC on the 7th: the 8th in Paris.
MESSAGES = [
    message(paris(2026, 12, 7, 9, 0), "email", 0.001),
    message(paris(2026, 12, 7, 9, 0), "intranet", 0.0),
    # Meant for Sunday 14:00, held back by the SMS window to Monday 08:00.
    message(
        paris(2026, 12, 7, 8, 0),
        "sms",
        0.075,
        campaign="restock",
        reason="urgent: SMS; outside the legal sms window (Sun 2026-12-06 14:00 Europe/Paris): "
        "deferred to Mon 2026-12-07 08:00 Europe/Paris",
        held_from=paris(2026, 12, 6, 14, 0),
    ),
    message(datetime(2026, 12, 7, 23, 30, tzinfo=UTC), "print", 1.2, campaign="pbx-2027-launch"),
]
MISSED = [MissedFiring(paris(2026, 12, 9, 9, 0), "monthly-news", "found 2:00:00 late")]
START, END = paris(2026, 12, 1), paris(2027, 1, 1)


def _cell(page: str, day: str) -> str:
    """The markup of one day's cell."""
    found = re.search(rf'<button[^>]*data-day="{day}".*?</button>', page, re.S)
    assert found, f"no clickable cell for {day}"
    return found.group(0)


def _embedded(page: str) -> dict[str, Any]:
    found = re.search(
        r'<script type="application/json" id="calendar-data">(.*?)</script>', page, re.S
    )
    assert found
    return json.loads(found.group(1))


def test_days_are_local_days_with_their_counts_costs_deferrals_and_missed_firings() -> None:
    cal = build_calendar(MESSAGES, MISSED, timezone="Europe/Paris", start=START, end=END)
    monday, tuesday = cal.days[date(2026, 12, 7)], cal.days[date(2026, 12, 8)]
    assert (monday.total.count, round(monday.total.cost, 3)) == (3, 0.076)
    assert {c: (t.count, round(t.cost, 3)) for c, t in monday.channels.items()} == {
        "email": (1, 0.001),
        "intranet": (1, 0.0),
        "sms": (1, 0.075),
    }
    assert {c: t.count for c, t in monday.campaigns.items()} == {"monthly-news": 2, "restock": 1}
    # 23:30 UTC on the 7th is 00:30 on the 8th in Paris.
    assert (tuesday.total.count, tuesday.total.cost, list(tuesday.channels)) == (1, 1.2, ["print"])
    # The deferral shows on the day it goes out, and on the day it was meant for.
    assert (monday.deferred, monday.held_for_later) == (1, 0)
    assert cal.days[date(2026, 12, 6)].held_for_later == 1
    assert [(m.time, m.campaign) for m in cal.days[date(2026, 12, 9)].missed] == [
        ("09:00", "monthly-news")
    ]
    assert (cal.total.count, cal.deferred, cal.missed) == (4, 1, 1)
    assert (cal.first, cal.last) == (date(2026, 12, 1), date(2026, 12, 31))  # end exclusive


def test_the_page_shows_each_day_and_marks_deferrals_and_missed_firings() -> None:
    page = render_calendar(
        MESSAGES, MISSED, timezone="Europe/Paris", start=START, end=END, generated=START
    )
    monday = _cell(page, "2026-12-07")
    assert '<span class="count">3</span>' in monday and "0,08\u00a0€" in monday
    assert "monthly-news" in monday and "restock" in monday
    assert 'class="badge deferred"' in monday and "1 message(s) reporté(s)" in monday
    assert 'class="badge held"' in _cell(page, "2026-12-06")
    tuesday = _cell(page, "2026-12-08")
    assert '<span class="count">1</span>' in tuesday and "1,20\u00a0€" in tuesday
    missed = _cell(page, "2026-12-09")
    assert "Déclenchement manqué : monthly-news à 09:00" in missed
    # The summary: totals, per channel and per campaign.
    assert "1,28\u00a0€" in page and "Courrier" in page and "pbx-2027-launch" in page
    # The click's data: the messages of the day, in the engine's time zone.
    data = _embedded(page)
    assert [row[0] for row in data["days"]["2026-12-08"]] == ["00:30"]
    held = data["days"]["2026-12-07"][0]
    assert data["texts"][held[8]] == "prévu le 6\u00a0déc. 2026 à 14:00"
    assert data["missed"] == {"2026-12-09": [["09:00", "monthly-news", "found 2:00:00 late"]]}


def test_texts_cannot_end_the_script_element() -> None:
    hostile = "</script><script>alert(1)</script>"
    messages = [
        message(paris(2026, 12, 7, 9, 0), "email", 0.0, campaign=hostile, reason=f"why {hostile}")
    ]
    page = render_calendar(
        messages, [], timezone="Europe/Paris", start=START, end=END, generated=START
    )
    # Only the two script elements of the page close one.
    assert page.count("</script>") == 2 and "<script>alert" not in page
    data = _embedded(page)
    assert hostile in data["texts"] and f"why {hostile}" in data["texts"]


def test_the_planner_notes_the_moment_a_held_back_message_was_meant_for(  # type: ignore[no-untyped-def]
    network, cli, config_path: Path
) -> None:
    """An urgent SMS planned at 03:00 waits for the legal window: its row says when it
    was meant to go out, which the calendar shows; the others say nothing."""
    from sqlmodel import Session, select

    from network_anim.db.models import Delivery
    from tests.conftest import STOCK_ALERT, run_at

    night = paris(2026, 11, 26, 3, 0)
    assert run_at(cli, config_path, night, *STOCK_ALERT, "--id", "night-alert").code == 0
    with Session(network.engine) as session:
        rows = session.exec(select(Delivery)).all()
    held = [d for d in rows if d.due_at > night]
    assert held and len(held) < len(rows)
    for row in rows:
        if row in held:
            assert deferred_from(row.extra) == night, row.reason
        else:
            assert deferred_from(row.extra) is None, row.reason


def test_fifty_thousand_messages_stay_one_light_page() -> None:
    start = paris(2026, 12, 1, 8, 0)
    messages = [
        message(
            start + timedelta(minutes=7 * n),
            ("email", "sms", "intranet", "print")[n % 4],
            0.01,
            campaign=f"campaign-{n % 12}",
            reason=f"routing reason {n % 40}",
        )
        for n in range(50_000)
    ]
    page = render_calendar(
        messages, [], timezone="Europe/Paris", start=start, end=paris(2027, 4, 1), generated=start
    )
    data = _embedded(page)
    assert sum(len(rows) for rows in data["days"].values()) == 50_000
    # Repeated texts are stored once: about 60 bytes a message.
    assert len(page.encode()) < 5_000_000
    assert len(data["texts"]) < 100


# -- the command and the page in a browser ------------------------------------------------------


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo's network (30 contacts: the demo's campaigns, a fast plan), not yet run."""
    folder = tmp_path_factory.mktemp("calendar") / "demo"
    setup = prepare_demo(
        REPO / "config.example.toml", folder, start=paris(2026, 12, 1, 8, 0), contacts=30, seed=3
    )
    return setup.database_url


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        launched = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield launched
        finally:
            launched.close()


def test_plan_html_writes_the_page_beside_the_table(cli, demo_db: str, tmp_path: Path) -> None:
    out = tmp_path / "plans" / "week.html"
    week = ["--from", "2026-12-01", "--to", "2026-12-08", "--db", demo_db]
    config = str(REPO / "config.example.toml")
    ran = cli("plan", config, *week, "--html", str(out))
    assert ran.code == 0, ran
    assert "Calendar" in ran.out and f"HTML calendar: {out}" in ran.out
    assert "Calendrier des envois" in out.read_text(encoding="utf-8")
    # Under --json the path goes to stderr: stdout stays one JSON document.
    ran = cli("plan", config, *week, "--json", "--html", str(out))
    assert ran.code == 0 and json.loads(ran.out) and f"HTML calendar: {out}" in ran.err


def test_a_firing_the_plan_finds_too_late_is_marked_on_its_day(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Campaigns first seen mid-October, planned from December: November's newsletter is
    found a month late, past the misfire grace, so it is missed, not sent."""
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    setup = prepare_demo(
        REPO / "config.example.toml", tmp_path / "demo", start=paris(2026, 12, 1, 8), contacts=10
    )
    app = open_demo_app(setup, paris(2026, 10, 15, 12, 0))
    register_campaigns(app)
    app.close()
    out = tmp_path / "calendar.html"
    config = str(REPO / "config.example.toml")
    days = ["--from", "2026-12-01T08:00", "--to", "2026-12-02", "--db", setup.database_url]
    ran = cli("plan", config, *days, "--html", str(out))
    assert ran.code == 0, ran
    page = out.read_text(encoding="utf-8")
    assert "Déclenchement manqué : monthly-news à 09:00" in _cell(page, "2026-11-01")
    missed = _embedded(page)["missed"]
    assert list(missed) == ["2026-11-01"] and missed["2026-11-01"][0][1] == "monthly-news"
    # December's firing, inside the plan, went out.
    assert '<span class="count">' in _cell(page, "2026-12-01")


@needs_chromium
def test_the_demo_calendar_in_chromium(
    cli, demo_db: str, tmp_path: Path, artifacts_dir: Path, request: pytest.FixtureRequest
) -> None:
    out = tmp_path / "calendar.html"
    config = str(REPO / "config.example.toml")
    ran = cli(
        "plan", config, "--from", DEMO_FROM, "--to", DEMO_TO, "--db", demo_db,
        "--json", "--html", str(out),
    )  # fmt: skip
    assert ran.code == 0, ran
    planned = json.loads(ran.out)
    by_day: dict[str, list[dict[str, Any]]] = {}
    for m in planned:
        by_day.setdefault(f"{datetime.fromisoformat(m['when']).astimezone(PARIS):%F}", []).append(m)
    held = [m for m in planned if m["deferred_from"]]
    assert len(planned) > 500 and held  # the demo's SMS meet the legal window

    # Started after the plan: Playwright's sync API runs an event loop, the plan its own.
    browser = request.getfixturevalue("browser")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(out.as_uri())
    assert page.locator("section.month").count() == 4  # December to March
    shot = page.screenshot(path=str(artifacts_dir / "plan-calendar.png"), full_page=True)
    width, height, colours = _png_facts(shot)
    assert width >= 1000 and height > 2500, (width, height)
    assert colours > 20, "the screenshot is nearly blank"
    deferred_badges = page.locator(".day .badge.deferred").all_inner_texts()
    assert sum(int(text.split()[-1]) for text in deferred_badges) == len(held)

    busiest = max(by_day, key=lambda day: len(by_day[day]))
    page.click(f'button.day[data-day="{busiest}"]')
    page.wait_for_selector("#day-panel:not([hidden])")
    rows = page.locator("#day-panel tbody tr")
    assert rows.count() == len(by_day[busiest])
    first = by_day[busiest][0]
    assert (
        rows.first.locator("td.campaign").inner_text() == f"{first['campaign']} / {first['step']}"
    )
    assert first["contact"] in rows.first.locator("td.contact").inner_text()
    groups = page.locator("#day-panel section.group h3").all_inner_texts()
    assert groups[0].startswith(f"{first['campaign']} · ")
    assert len(groups) == len({m["campaign"] for m in by_day[busiest]})
    page.keyboard.press("Escape")
    assert page.locator("#day-panel").is_hidden()
    assert errors == []


@needs_chromium
def test_a_large_plan_lists_a_busy_day_in_pages(browser: Any, tmp_path: Path) -> None:
    start = paris(2026, 12, 7, 0, 0)
    messages = [
        message(start + timedelta(seconds=30 * n), "email", 0.001, campaign="</script> big")
        for n in range(1200)
    ]
    out = tmp_path / "large.html"
    out.write_text(
        render_calendar(
            messages, [], timezone="Europe/Paris", start=start, end=paris(2026, 12, 8),
            generated=start,
        ),
        encoding="utf-8",
    )  # fmt: skip
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(out.as_uri())
    page.click('button.day[data-day="2026-12-07"]')
    rows = page.locator("#day-panel tbody tr")
    assert rows.count() == 500
    assert page.locator("#day-panel h3").inner_text().startswith("</script> big · 1\u202f200")
    page.click("#day-panel button.more")
    page.click("#day-panel button.more")
    assert rows.count() == 1200 and page.locator("#day-panel button.more").count() == 0


def _png_facts(png: bytes) -> tuple[int, int, int]:
    """Width, height and how many colours a screenshot has (Pillow if installed; else the
    byte size stands in: a blank page compresses to almost nothing)."""
    try:
        from PIL import Image
    except ImportError:
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        return width, height, len(png) // 1000
    with Image.open(io.BytesIO(png)) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
        return image.width, image.height, len(colours)
