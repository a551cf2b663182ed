"""`netanim plan` shows exactly what the engine then sends; `netanim demo` runs it all."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session

from network_anim.db.models import Delivery
from network_anim.demo.run import open_demo_app, prepare_demo
from network_anim.engine.simulation import sent_between, simulate
from network_anim.outbox.transports import ConfiguredTransports
from tests.conftest import REPO

START = datetime(2026, 12, 1, 8, 0, tzinfo=ZoneInfo("Europe/Paris"))
END = START + timedelta(days=122)  # four months


def test_plan_json_equals_what_the_demo_then_sends(tmp_path: Path, cli, monkeypatch) -> None:
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    config = REPO / "config.example.toml"
    setup = prepare_demo(config, tmp_path / "demo", start=START, contacts=80, seed=7)
    planned = cli(
        "plan",
        str(config),
        "--from",
        START.isoformat(),
        "--to",
        END.isoformat(),
        "--json",
        "--db",
        setup.database_url,
    )
    assert planned.code == 0, planned
    calendar = json.loads(planned.out)
    # Planning wrote nothing into the real database.
    app = open_demo_app(setup, START)
    with Session(app.engine) as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0
    transports = ConfiguredTransports(app)
    asyncio.run(
        simulate(app, END, transports, grace=timedelta(hours=1), resend_safe=transports.resend_safe)
    )
    sent = [m.as_json() for m in sent_between(app.engine, START, END)]
    app.close()
    assert len(calendar) > 500
    assert {"onboarding", "reactivation", "monthly-news", "restock", "pbx-2027-launch"} <= {
        m["campaign"] for m in calendar
    }
    assert {m["channel"] for m in calendar} == {"email", "sms", "intranet", "print"}
    assert calendar == sent
    # The file transports wrote what was sent.
    emails = list((tmp_path / "demo/outbox/email").glob("*.eml"))
    assert len(emails) == sum(1 for m in sent if m["channel"] == "email")


def test_demo_command_writes_every_output(tmp_path: Path, cli, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    folder = tmp_path / "demo"
    result = cli(
        "demo",
        "--dir",
        str(folder),
        "--from",
        "2026-12-01",
        "--months",
        "2",
        "--contacts",
        "60",
        "--json",
    )
    assert result.code == 0, result
    summary = json.loads(result.out)
    assert summary["contacts"] == 60 and summary["messages"] > 100
    assert list((folder / "exports/print").glob("letters-*.pdf"))
    assert (folder / "outbox/sms/sms.jsonl").stat().st_size > 0
    table = cli(
        "demo", "--dir", str(folder), "--from", "2026-12-01", "--months", "1", "--contacts", "30"
    )
    assert "onboarding" in table.out and str(folder / "netanim.db") in table.out


def test_plan_calendar_and_explain(tmp_path: Path, cli, monkeypatch) -> None:
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    config = REPO / "config.example.toml"
    setup = prepare_demo(config, tmp_path / "demo", start=START, contacts=30, seed=3)
    table = cli(
        "plan",
        str(config),
        "--from",
        "2026-12-01",
        "--to",
        "2026-12-10",
        "--db",
        setup.database_url,
    )
    assert table.code == 0 and "Calendar" in table.out and "monthly-news" in table.out
    explained = cli(
        "plan",
        str(config),
        "--from",
        "2026-12-01",
        "--to",
        "2026-12-03",
        "--explain",
        "--db",
        setup.database_url,
    )
    assert "Every message" in explained.out and "portal post" in explained.out
    backwards = cli(
        "plan",
        str(config),
        "--from",
        "2026-12-10",
        "--to",
        "2026-12-01",
        "--db",
        setup.database_url,
    )
    assert backwards.code == 1 and "--to must be later" in backwards.err
