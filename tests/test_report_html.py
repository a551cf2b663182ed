"""The HTML report: the known history of tests/test_reports.py on the page (SQLite and
PostgreSQL), one self-contained file (no URL, no script), user text escaped, and the page
in Debian's headless Chromium without a console error, its screenshot in test-artifacts/."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from network_anim.app import App
from network_anim.reports import fr_format
from network_anim.reports.build import build_report
from network_anim.reports.html import render_html
from network_anim.reports.model import (
    DEFINITIONS,
    Attainment,
    CampaignConversion,
    ChallengeSummary,
    ChannelCost,
    Conversion,
    ConversionGroup,
    Costs,
    Filters,
    FunnelRow,
    LeaderEntry,
    MixCell,
    Period,
    Report,
    TimelinePoint,
)
from tests.test_reports import build_history, report_app  # noqa: F401 (a fixture)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SECTIONS = ("headline", "timeline", "funnel", "mix", "challenges", "conversion", "costs")
NASTY = 'Ets <b>Dupont</b> & "Fils" <script>alert(1)</script>'


class Page(HTMLParser):
    """What the checks need from the page: every tag with its attributes, the tiles, the
    text of the whole page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.tiles: dict[str, tuple[str, str]] = {}
        self.text: list[str] = []
        self._tile: list[str] | None = None
        self._field: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append((tag, values))
        css = values.get("class", "")
        if css == "tile":
            self._tile = []
        elif self._tile is not None and css in ("label", "value", "note"):
            self._field = css

    def handle_endtag(self, tag: str) -> None:
        if self._field is not None:
            self._field = None
        elif tag == "div" and self._tile is not None:
            label, value, note = (*self._tile, "", "", "")[:3]
            self.tiles[label] = (value, note)
            self._tile = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._tile is not None and self._field is not None:
            self._tile.append(data.strip())

    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def assert_self_contained(html: str) -> Page:
    page = Page(html)
    names = {tag for tag, _ in page.tags}
    assert not names & {"script", "link", "img", "iframe", "object", "embed", "use", "image"}
    for tag, attrs in page.tags:
        for name in ("src", "href", "xlink:href", "action", "srcset"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith("#"), (tag, name, value)  # in-page anchors only
    assert not re.search(r"https?:|//[a-z]", html.replace("—", ""), re.IGNORECASE)
    assert "url(" not in html and "@import" not in html
    return page


# -- the known history ---------------------------------------------------------------------------


def test_known_history_on_the_page(report_app: App) -> None:  # noqa: F811
    build_history(report_app)
    report = build_report(report_app)
    html = render_html(report)
    page = assert_self_contained(html)
    tiles = page.tiles
    # tests/test_reports.py: 13 rows planned, 11 reached the provider; e-mail: 4 delivered,
    # human opens on d1 and d10, machine-only opens on d1, d12, d13.
    assert tiles["Messages envoyés"][0] == "11"
    assert "sur 13 planifiés" in tiles["Messages envoyés"][1]
    assert tiles["Taux d'ouverture (e-mail)"][0] == "50,0\u202f%"
    assert "3 ouvertures machine écartées" in tiles["Taux d'ouverture (e-mail)"][1]
    # Read: the intranet post of c1 (d5), not c3's (d6).
    assert tiles["Taux de lecture (portail)"][0] == "50,0\u202f%"
    costs = report.costs
    assert tiles["Coût des envois"][0] == fr_format.euros(costs.total)
    assert tiles["ROI"][0] == fr_format.percent(costs.roi, 0)
    assert tiles["Contacts convertis"][0] == str(report.conversion.overall.converters)
    text = page.all_text()
    assert report.gain_definition in text
    assert "Généré le 25 nov. 2026 à 11:00" in text.replace("\u00a0", " ")
    assert "Toute l'activité" in text
    for key in DEFINITIONS:
        assert key in text
    # One section per subject, each with its charts; the challenge of the history is shown.
    ids = {attrs.get("id") for _, attrs in page.tags}
    assert set(SECTIONS) | {"appendix"} <= ids
    assert "Fall cup" in text and "Alice Test" in text
    svgs = [attrs for tag, attrs in page.tags if tag == "svg"]
    assert len(svgs) >= 12
    assert all(a.get("role") == "img" and a.get("aria-labelledby") for a in svgs)


def test_empty_database_gives_panels_not_errors(report_app: App) -> None:  # noqa: F811
    html = render_html(build_report(report_app))
    page = assert_self_contained(html)
    empty = [attrs for tag, attrs in page.tags if "chart-empty" in attrs.get("class", "")]
    charts = [attrs for tag, attrs in page.tags if tag == "svg"]
    assert empty == charts and len(charts) >= 4
    text = page.all_text()
    assert "ROI non calculable" in text and "Aucun message planifié" in text
    assert page.tiles["Taux d'ouverture (e-mail)"][0] == fr_format.NONE


# -- a report built by hand: every section full --------------------------------------------------


def _rate(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


def _row(group: str, channel: str, planned: int, opens: float, clicks: float, reads: float):  # type: ignore[no-untyped-def]
    sent = planned - planned // 40
    delivered = sent - sent // 30
    human, clicked, read = int(delivered * opens), int(delivered * clicks), int(delivered * reads)
    machine = int(delivered * 0.18) if channel == "email" else 0
    reached = int(sent * 0.8)
    converted = int(reached * 0.3)
    cost = round(sent * {"email": 0.001, "sms": 0.075, "print": 1.65}.get(channel, 0.0), 2)
    return FunnelRow(
        group,
        channel,
        planned,
        sent,
        delivered,
        human,
        machine,
        clicked,
        read,
        reached,
        converted,
        cost,
        _rate(delivered, sent),
        _rate(human, delivered),
        _rate(clicked, delivered),
        _rate(read, delivered),
        _rate(converted, reached),
    )


def sample_report(company: str = "Télécom Services Bastia") -> Report:
    """Four months of a network of 400 contacts, as the demo gives, built from the model's
    dataclasses (no database): what the browser test draws."""
    totals = (
        _row("all", "email", 5700, 0.555, 0.13, 0),
        _row("all", "sms", 2960, 0, 0.11, 0),
        _row("all", "intranet", 1920, 0, 0, 0.46),
        _row("all", "print", 1300, 0, 0, 0),
    )
    start = date(2026, 11, 23)
    timeline = []
    for day in range(120):
        for index, channel in enumerate(("email", "sms", "intranet", "print")):
            burst = (day + 3 * index) % 14 in (0, 1)  # a send every fortnight per channel
            sent = (90 - 15 * index) if burst else (day * 7 + index) % 5
            opens = sent // 2 if channel == "email" else 0
            timeline.append(
                TimelinePoint(start + timedelta(days=day), channel, sent, opens, opens // 4)
            )
    segments = ("champions", "loyal", "potential", "at_risk", "hibernating", "lost", "unscored")
    mix = tuple(
        MixCell(segment, channel, 40 + 37 * i + 13 * j)
        for i, segment in enumerate(segments)
        for j, channel in enumerate(("email", "sms", "intranet", "print"))
    )
    leaders = tuple(
        LeaderEntry(rank, name, company if rank == 1 else f"Distribution {rank}", 3450 - 210 * rank)
        for rank, name in enumerate(
            ("Amandine Traoré", "Frédéric Durand", "Céline Guérin", "Karine Rousseau", "Paul Roy"),
            start=1,
        )
    )
    challenge = ChallengeSummary(
        key="pbx-2027",
        name="Challenge PBX 2027",
        companies_targeted=40,
        companies_registered=39,
        participants=176,
        active_participants=123,
        participation_rate=0.975,
        active_rate=0.6989,
        attainment=tuple(Attainment(f"C{i:05d}", (i % 13) / 10) for i in range(120)),
        team_attainment=tuple(
            Attainment(f"D{i:03d} Équipe {i}", 0.2 + (i * 37 % 100) / 90) for i in range(12)
        ),
        points_issued=63789,
        points_redeemed=12000,
        sales_during=1308317.0,
        sales_baseline=841838.0,
        sales_uplift=0.5541,
        leaderboard=leaders,
    )

    def group(label: str, contacts: int, converters: int, amount: float) -> ConversionGroup:
        return ConversionGroup(
            label,
            contacts,
            converters,
            amount,
            _rate(converters, contacts),
            round(amount / converters, 2) if converters else None,
        )

    campaigns = (
        CampaignConversion(
            "monthly-news",
            group("reached", 380, 152, 310000.0),
            group("baseline", 380, 109, 220000.0),
            "baseline",
            0.1131,
            0.3945,
        ),
        CampaignConversion(
            "pbx-2027-launch",
            group("reached", 330, 134, 290000.0),
            group("unreached", 12, 1, 2100.0),
            "unreached",
            0.3227,
            3.8727,
        ),
        CampaignConversion(
            "restock", group("reached", 310, 120, 150000.0), None, "none", None, None
        ),
    )
    overall = group("all", 398, 254, 1502188.0)
    costs = Costs(
        channels=tuple(
            ChannelCost(r.channel, r.sent, r.cost, _rate(r.cost, r.sent)) for r in totals
        ),
        total=round(sum(r.cost for r in totals), 2),
        converters=254,
        cost_per_conversion=9.35,
        gain=450656.7,
        roi=188.8017,
    )
    return Report(
        schema_version=1,
        generated_at=datetime(2027, 3, 25, 7, 0, tzinfo=UTC),
        timezone="Europe/Paris",
        period=Period(
            datetime(2026, 11, 24, 23, tzinfo=UTC), datetime(2027, 3, 24, 23, tzinfo=UTC)
        ),
        filters=Filters(campaign=None, by="channel"),
        campaigns=("monthly-news", "pbx-2027-launch", "restock"),
        gain_definition="gain = 30% margin x attributed sales",
        definitions=dict(DEFINITIONS),
        funnel=totals,
        funnel_totals=totals,
        timeline=tuple(timeline),
        channel_mix=mix,
        challenges=(challenge,),
        conversion=Conversion(30, campaigns, overall, 210000.0),
        costs=costs,
    )


def test_user_text_is_escaped_everywhere() -> None:
    html = render_html(sample_report(company=NASTY))
    page = assert_self_contained(html)
    assert "<script>alert" not in html and "<b>Dupont" not in html
    assert "&lt;b&gt;Dupont&lt;/b&gt; &amp; &#34;Fils&#34;" in html or (
        "&lt;b&gt;Dupont&lt;/b&gt; &amp; &quot;Fils&quot;" in html
    )
    assert NASTY in page.all_text()  # shown as typed, in the leaderboard's table


def test_period_reads_as_days_and_long_timelines_as_weeks() -> None:
    html = render_html(sample_report())
    text = Page(html).all_text().replace("\u00a0", " ")
    assert "Période : du 25 nov. 2026 au 24 mars 2027" in text
    assert "Généré le 25 mars 2027 à 08:00" in text
    assert "Messages envoyés par canal, et ouvertures, par semaine" in text
    # 120 days: 18 weeks, Monday to Monday.
    assert "Semaine du" in text and "23 nov. 2026" in text and "22 mars 2027" in text


# -- in a browser --------------------------------------------------------------------------------


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed")
def test_report_in_headless_chromium(tmp_path: Path, artifacts_dir: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    report_file = tmp_path / "report.html"
    report_file.write_text(render_html(sample_report()), encoding="utf-8")
    problems: list[str] = []
    requested: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on(
            "console",
            lambda m: (
                problems.append(f"console {m.type}: {m.text}")
                if m.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
        page.on("request", lambda r: requested.append(r.url))
        page.goto(report_file.as_uri())
        page.wait_for_load_state("load")

        charts = page.locator("svg.chart")
        count = charts.count()
        assert count == 14  # 2 timelines, 4 funnels, mix, 4 challenge, conversion, 2 costs
        for index in range(count):
            box = charts.nth(index).bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 50, index
        assert page.locator("svg.chart-empty").count() == 0
        assert page.locator(".tile").count() == 7
        # The charts are drawn: bars have a width, lines have points.
        widths = page.eval_on_selector_all(
            "svg.chart-bars rect[data-value]", "rs => rs.map(r => r.getBBox().width)"
        )
        assert widths and max(widths) > 100
        assert page.locator("svg.chart-line polyline").count() >= 5
        # The page fits its width: nothing to scroll sideways but the wide tables.
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        page.screenshot(path=str(artifacts_dir / "report.png"), full_page=True)

        # Printed: the table of contents goes, the charts stay.
        page.emulate_media(media="print")
        assert not page.locator("nav.toc").is_visible()
        assert charts.first.is_visible()
        browser.close()
    assert problems == []
    assert requested == [report_file.as_uri()]  # one file: nothing else was fetched
    assert (artifacts_dir / "report.png").stat().st_size > 50_000
