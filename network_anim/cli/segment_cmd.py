from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from network_anim.cli.common import app_options, console, open_app


@click.group()
def segment() -> None:
    """Segments of the network's companies, usable as campaign audiences."""


def parse_as_of(value: str, timezone: str) -> datetime:
    """``YYYY-MM-DD``: the end of that day in the config's time zone (its sales count);
    an ISO date-time: that moment (in the config's time zone unless it gives an offset)."""
    from datetime import UTC, date, time, timedelta
    from zoneinfo import ZoneInfo

    from network_anim.errors import UserError

    zone = ZoneInfo(timezone)
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(
            f"--as-of {value!r} is not a date",
            ["give YYYY-MM-DD (its sales count) or an ISO date-time like 2026-06-30T18:00"],
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _company_names(app: Any) -> dict[int, tuple[str, str]]:
    from sqlalchemy import select
    from sqlmodel import Session

    from network_anim.db.models import Company

    with Session(app.engine) as session:
        rows = session.execute(select(Company.id, Company.external_id, Company.name)).all()
    return {int(row[0]): (row[1], row[2]) for row in rows}


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


@segment.command("rfm")
@click.option(
    "--as-of",
    "as_of",
    default=None,
    metavar="DATE",
    help="Score as of this date (YYYY-MM-DD, its sales included). Default: now.",
)
@click.option(
    "--months",
    type=click.IntRange(min=1),
    default=12,
    show_default=True,
    help="Lookback window: approved sales of the last N months count.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--dry-run", is_flag=True, help="Compute and show; store nothing.")
@app_options
def rfm_cmd(
    as_of: str | None,
    months: int,
    as_json: bool,
    dry_run: bool,
    config_path: Path | None,
    db_url: str | None,
) -> None:
    """Score every company on its approved sales (recency, frequency, amount) and store
    its RFM segment, replacing the previous scores at once.

    Audiences select these segments with `rfm_segments = [...]` (see docs/rfm.md);
    re-run it before the campaigns that use them, e.g. monthly.

    \b
    Examples:
      netanim segment rfm
      netanim segment rfm --as-of 2026-06-30 --months 6 --dry-run
    """
    from network_anim.network.rfm import summarize
    from network_anim.network.rfm_store import recompute_rfm, score_fields

    app = open_app(config_path, db_url)
    moment = None if as_of is None else parse_as_of(as_of, app.config.engine.timezone)
    run = recompute_rfm(app, as_of=moment, months=months, dry_run=dry_run)
    summary = summarize(run.scores)
    if as_json:
        names = _company_names(app)
        click.echo(
            json.dumps(
                {
                    "as_of": run.as_of.isoformat(),
                    "since": run.since.isoformat(),
                    "months": months,
                    "written": run.written,
                    "companies": len(run.scores),
                    "segments": [vars(line) for line in summary],
                    "scores": [
                        {
                            "company": names[s.company_id][0],
                            "name": names[s.company_id][1],
                            **score_fields(s),
                        }
                        for s in run.scores
                    ],
                }
            )
        )
        return
    from rich.table import Table

    table = Table(
        title=f"RFM segments as of {run.as_of:%Y-%m-%d %H:%M} UTC, approved sales since "
        f"{run.since:%Y-%m-%d}: {len(run.scores)} companies"
    )
    table.add_column("segment", no_wrap=True)
    for column in ("companies", "share", "median R days", "median F", "median M", "amount"):
        table.add_column(column, justify="right")
    for line in summary:
        table.add_row(
            line.segment,
            str(line.companies),
            f"{line.share:.0%}",
            _number(line.median_recency_days),
            _number(line.median_frequency, 1),
            _number(line.median_monetary),
            _number(line.total_monetary),
        )
    console.print(table)
    if run.written:
        console.print(f"{len(run.scores)} company segments stored (scheme rfm)")
    else:
        console.print("dry run: nothing stored")


@segment.command("show")
@click.option("--segment", "segment_name", default=None, help="Only this RFM segment.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@app_options
def show_cmd(
    segment_name: str | None, as_json: bool, config_path: Path | None, db_url: str | None
) -> None:
    """List the companies and their stored RFM segment, best segment first.

    \b
    Example:
      netanim segment show --segment at_risk
    """
    from sqlalchemy import select
    from sqlmodel import Session

    from network_anim.db.models import Company, CompanySegment
    from network_anim.errors import UserError
    from network_anim.network.rfm import SCHEME, SEGMENTS
    from network_anim.network.rfm_store import last_computed, score_fields

    if segment_name is not None and segment_name not in SEGMENTS:
        raise UserError(
            f"--segment {segment_name!r} is not an RFM segment", [f"use {', '.join(SEGMENTS)}"]
        )
    app = open_app(config_path, db_url)
    query = (
        select(CompanySegment, Company.external_id, Company.name)
        .join(Company, Company.id == CompanySegment.company_id)  # type: ignore[arg-type]
        .where(CompanySegment.scheme == SCHEME)
    )
    if segment_name is not None:
        query = query.where(CompanySegment.segment == segment_name)
    with Session(app.engine) as session:
        if last_computed(session) is None:
            raise UserError("no RFM scores yet", ["run: netanim segment rfm"])
        rows = session.execute(query).all()
    rank = {name: i for i, name in enumerate(SEGMENTS)}
    rows.sort(key=lambda row: (rank[row[0].segment], -row[0].monetary, row[1]))
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "company": external_id,
                        "name": name,
                        **score_fields(s),
                        "computed_at": s.computed_at.isoformat(),
                    }
                    for s, external_id, name in rows
                ]
            )
        )
        return
    if not rows:
        console.print(f"no company in segment {segment_name}")
        return
    from rich.table import Table

    computed = max(s.computed_at for s, _, _ in rows)
    table = Table(title=f"RFM segments computed {computed:%Y-%m-%d %H:%M} UTC")
    table.add_column("company", no_wrap=True)
    table.add_column("name")
    table.add_column("segment", no_wrap=True)
    for column in ("R (days)", "F", "M", "scores R F M"):
        table.add_column(column, justify="right")
    for s, external_id, name in rows:
        scores = "-" if s.r_score is None else f"{s.r_score} {s.f_score} {s.m_score}"
        table.add_row(
            external_id,
            name,
            s.segment,
            _number(s.recency_days),
            str(s.frequency),
            _number(s.monetary, 2),
            scores,
        )
    console.print(table)
