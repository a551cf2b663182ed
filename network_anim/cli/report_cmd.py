"""``netanim report``: funnel, conversion into sales, challenges, costs and ROI."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import click

from network_anim.cli.common import app_options, console

BY_CHOICES = ("channel", "segment", "company", "role")


def parse_bound(value: str | None, timezone: str, option: str, *, end: bool) -> datetime | None:
    """A day (its midnight; for --to, the midnight after it, so the day is included) or a
    moment, in the engine's time zone unless it carries its own offset."""
    from zoneinfo import ZoneInfo

    from network_anim.errors import UserError

    if value is None:
        return None
    zone = ZoneInfo(timezone)
    try:
        day = date.fromisoformat(value)
    except ValueError:
        day = None
    if day is not None:
        midnight = datetime.combine(day, time(0), tzinfo=zone)
        return midnight + timedelta(days=1) if end else midnight
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(
            f"{option} {value!r} is not a date",
            ["write a day like 2026-12-01, or a moment like 2026-12-01T09:00"],
        ) from None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


@click.command()
@app_options
@click.option("--campaign", default=None, help="A campaign key, a challenge id or an event id.")
@click.option("--from", "start", default=None, help="First day (2026-12-01) or moment.")
@click.option("--to", "end", default=None, help="Last day, included (2027-03-31), or moment.")
@click.option(
    "--by",
    type=click.Choice(BY_CHOICES),
    default="channel",
    show_default=True,
    help="Funnel rows per channel, or per RFM segment, company or contact role and channel.",
)
@click.option("--json", "as_json", is_flag=True, help="The report as JSON (docs/report-json.md).")
@click.option(
    "--html",
    "html_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write a self-contained HTML page with charts to this file.",
)
def report(
    config_path: Path | None,
    db_url: str | None,
    campaign: str | None,
    start: str | None,
    end: str | None,
    by: str,
    as_json: bool,
    html_file: Path | None,
) -> None:
    """Funnel per channel (planned, sent, delivered, opened by humans and machines,
    clicked, read, converted), conversion into sales against a comparison group,
    challenge participation and points, cost per channel, cost per conversion and ROI.

    Deliveries count when they are due in the period; dates are in the [engine] time
    zone. Conversion window, margin and gain: the [reports] section of the config.

    \b
    Examples:
      netanim report
      netanim report --campaign monthly-news \\
          --from 2026-12-01 --to 2027-03-31 --by segment
      netanim report --json > report.json
      netanim report --html report.html
    """
    import json

    from network_anim.cli.common import open_app
    from network_anim.reports.build import build_report
    from network_anim.reports.terminal import render_terminal

    app = open_app(config_path, db_url)
    try:
        timezone = app.config.engine.timezone
        first = parse_bound(start, timezone, "--from", end=False)
        last = parse_bound(end, timezone, "--to", end=True)
        result = build_report(app, campaign=campaign, start=first, end=last, by=by)
    finally:
        app.close()
    if html_file is not None:
        from network_anim.reports.html import render_html

        html_file.parent.mkdir(parents=True, exist_ok=True)
        html_file.write_text(render_html(result), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        render_terminal(result, console)
    if html_file is not None:
        # On stderr under --json, so stdout stays one JSON document.
        click.echo(f"HTML report: {html_file}", err=as_json)
