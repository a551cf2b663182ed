"""`netanim demo` ends with the HTML report of the simulated months, built on simulated
reactions recorded the way real ones are (and said to be simulated)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import Session

from network_anim.app import app_from_config
from network_anim.clock import SimulatedClock
from network_anim.config.loading import load_config
from network_anim.db.models import Event, Participant, PostRead, Sale
from network_anim.demo.run import demo_config
from network_anim.reports.build import build_report
from network_anim.web.scanners import machine_reason
from tests.conftest import REPO

ARGS = ("--from", "2026-12-01", "--months", "2", "--contacts", "60", "--seed", "7")


def test_demo_ends_with_the_report_of_simulated_reactions(tmp_path: Path, cli, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    folder = tmp_path / "demo"
    result = cli("demo", "--dir", str(folder), *ARGS, "--json")
    assert result.code == 0, result
    summary = json.loads(result.out)

    # The report: where the summary says, one file with its charts and nothing fetched.
    report = Path(summary["report_html"])
    assert report == folder / "report.html" and summary["outputs"]["report"] == str(report)
    html = report.read_text(encoding="utf-8")
    assert "<h1>Rapport d&#39;animation du réseau</h1>" in html
    assert html.count('<svg class="chart') >= 10
    assert html.count("chart-line") == 2 and "chart-funnel" in html and "chart-stacked" in html
    assert not re.search(r"(src|href)=\"(?!#)", html)
    # The only addresses are the outside links the demo's emails carried, shown as text in
    # the clicks per link section: nothing is fetched.
    links = html[html.index('<section class="card" id="links"') : html.index('id="costs"')]
    assert "http" not in html.replace(links, "")
    assert "https://www.example.com/produits/standard-ip-s40" in links

    # The reactions are labelled simulated, and there are some of each kind.
    engagement = summary["engagement"]
    assert engagement["simulated"] is True and engagement["seed"] == 7
    for kind in (
        "human_opens",
        "machine_opens",
        "human_clicks",
        "machine_clicks",
        "post_reads",
        "sms_delivered",
        "registrations",
        "sales_declared",
        "points_awarded",
    ):
        assert engagement[kind] > 0, kind

    loaded = demo_config(load_config(REPO / "config.example.toml"), folder)
    app = app_from_config(loaded, clock=SimulatedClock(datetime.fromisoformat(summary["to"])))
    try:
        with Session(app.engine) as session:
            opens = session.execute(
                select(Event.machine, Event.data, Event.delivery_id).where(Event.type == "opened")
            ).all()
            # The tracking's classifier decided which opens are machines'.
            for machine, data, delivery_id in opens:
                assert data["simulated"] is True and delivery_id is not None
                reason = machine_reason(data["user_agent"], None, "open")
                assert machine == (reason is not None) and data.get("machine_reason") == reason
            assert sum(m for m, _, _ in opens) == engagement["machine_opens"]
            delivered = session.scalars(select(Event.dedupe_key).where(Event.type == "delivered"))
            assert all(key.startswith("twilio:file:") for key in delivered)  # type: ignore[union-attr]
            reads = session.scalar(select(func.count()).select_from(PostRead))
            assert reads == engagement["post_reads"]
            declared = session.scalar(
                select(func.count()).select_from(Sale).where(Sale.source.like("simulated%"))  # type: ignore[attr-defined]
            )
            assert declared == engagement["sales_declared"]
            assert (
                session.scalar(select(func.count()).select_from(Participant))
                == (engagement["registrations"])
            )
        # The newsletter is opened like the seeds' (55-60 %), give or take a small sample.
        news = build_report(app, campaign="monthly-news")
        (email,) = [row for row in news.funnel_totals if row.channel == "email"]
        assert email.sent > 50 and 0.45 <= (email.open_rate or 0) <= 0.7
    finally:
        app.close()

    # In the terminal: the same seed gives the same reactions, said to be simulated, and
    # the report's path.
    again = cli("demo", "--dir", str(tmp_path / "again"), *ARGS)
    assert again.code == 0, again
    line = " ".join(again.out.split())
    assert "simulated reactions (seed 7, not real people)" in line
    assert f"{engagement['human_opens']} human opens and {engagement['machine_opens']}" in line
    assert f"{engagement['sales_declared']} sales declared" in line
    assert f"HTML report: {tmp_path / 'again' / 'report.html'}" in line
    assert (tmp_path / "again" / "report.html").stat().st_size > 20_000
