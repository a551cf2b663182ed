"""``netanim report``: tables, --json, --html, filters and user mistakes, on the history of
tests/test_reports.py (its figures are worked out there)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from network_anim.app import App, open_app
from network_anim.clock import SimulatedClock
from network_anim.reports.build import build_report
from tests.test_reports import build_history, report_config


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Path:
    return report_config(tmp_path, database_url)


@pytest.fixture
def history(config: Path, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    application = open_app(config, clock=clock)
    build_history(application)
    yield application
    application.close()


def test_tables_show_the_figures(cli, config: Path, history: App) -> None:
    result = cli("report", "-c", str(config))
    assert result.code == 0, result
    out = result.out
    # email: 5 sent, 4 delivered (80 %), 2 human opens of 4 (50 %), 3 machine opens.
    assert "4 (80.0 %)" in out and "2 (50.0 %)" in out
    assert "1 (25.0 %)" in out  # one human click of 4 delivered
    assert "2 (66.7 %)" in out  # SMS delivered 2 of 3
    assert "1.88 EUR" in out  # total cost
    assert "0.94 EUR" in out  # per conversion
    assert "360.00 EUR" in out  # gain
    assert "+190.49" in out  # ROI
    assert "unreached audience" in out and "+16.7" in out  # spring's uplift, points
    assert "1 / 2 (50.0 %)" in out  # fall-cup: companies registered / targeted
    assert "Alice Test (Alpha)" in out and "120 pts" in out
    assert "30% margin x attributed sales" in out
    assert "ghost" in out  # named as not shown: nobody reached


def test_json_matches_the_report(cli, config: Path, history: App) -> None:
    result = cli("report", "-c", str(config), "--json")
    assert result.code == 0, result
    data = json.loads(result.out)
    expected = build_report(history).to_json()
    del data["generated_at"], expected["generated_at"]
    assert data == expected
    assert data["costs"]["roi"] == 190.4894


def test_filters_by_campaign_period_and_group(cli, config: Path, history: App) -> None:
    result = cli(
        "report", "-c", str(config), "--json", "--campaign", "bots",
        "--from", "2026-10-05", "--to", "2026-10-09", "--by", "company",
    )  # fmt: skip
    assert result.code == 0, result
    data = json.loads(result.out)
    # The days are Paris days, --to included: [10-05 00:00+02:00, 10-10 00:00+02:00).
    assert data["period"] == {
        "start": "2026-10-05T00:00:00+02:00",
        "end": "2026-10-10T00:00:00+02:00",
    }
    assert data["filters"] == {"campaign": "bots", "by": "company"}
    assert [(r["group"], r["channel"], r["planned"]) for r in data["funnel"]] == [
        ("B1 Beta", "email", 2)
    ]
    assert data["funnel"][0]["opened_machine"] == 2 and data["funnel"][0]["open_rate"] == 0.0


def test_html_is_written(cli, config: Path, history: App, tmp_path: Path) -> None:
    pytest.importorskip("network_anim.reports.html")
    target = tmp_path / "out" / "report.html"
    result = cli("report", "-c", str(config), "--html", str(target))
    assert result.code == 0, result
    assert str(target) in result.out
    page = target.read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html")
    # With --json, stdout stays one JSON document and the path goes to stderr.
    again = cli("report", "-c", str(config), "--json", "--html", str(target))
    assert again.code == 0 and json.loads(again.out)["schema_version"] == 1
    assert str(target) in again.err


def test_empty_database_shows_dashes(cli, config: Path, database_url: str) -> None:
    result = cli("report", "-c", str(config))
    assert result.code == 0, result
    assert "–" in result.out and "Traceback" not in result.out + result.err
    data = json.loads(cli("report", "-c", str(config), "--json").out)
    assert data["costs"]["roi"] is None and data["conversion"]["overall"]["rate"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2026-13-45"), "--from '2026-13-45' is not a date"),
        (("--to", "yesterday"), "--to 'yesterday' is not a date"),
        (("--from", "2026-10-09", "--to", "2026-10-01"), "the report period is empty"),
        (("--campaign", "nope"), "unknown campaign 'nope'"),
    ],
)
def test_mistakes_exit_1_with_a_message(
    cli, config: Path, history: App, args: tuple[str, ...], message: str
) -> None:
    result = cli("report", "-c", str(config), *args)
    assert result.code == 1, result
    assert message in result.err
    assert "Traceback" not in result.err


def test_unknown_grouping_is_a_usage_error(cli, config: Path, database_url: str) -> None:
    result = cli("report", "-c", str(config), "--by", "colour")
    assert result.code == 2 and "colour" in result.err


def test_help_has_an_example(cli) -> None:
    result = cli("report", "--help")
    assert result.code == 0 and "Example" in result.out and "--campaign" in result.out
