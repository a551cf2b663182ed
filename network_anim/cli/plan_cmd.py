from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from network_anim.cli.common import (
    chosen_config,
    config_with_positional,
    console,
    db_option,
    simulation_progress,
)


def parse_moment(value: str, timezone: str, option: str) -> datetime:
    """A date (midnight) or a date and time, in the engine's time zone unless given."""
    from zoneinfo import ZoneInfo

    from network_anim.errors import UserError

    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(
            f"{option} {value!r} is not a date: write 2026-12-01 or 2026-12-01T09:00"
        ) from None
    return moment.replace(tzinfo=ZoneInfo(timezone)) if moment.tzinfo is None else moment


@click.command()
# -c/$NETANIM_CONFIG/./netanim.toml like every command; the positional CONFIG_FILE it
# required before stays accepted, so existing scripts keep working.
@config_with_positional
@click.option(
    "--from", "start", required=True, help="First day (2026-12-01) or moment (2026-12-01T09:00)."
)
@click.option("--to", "end", required=True, help="Last moment: a date means its midnight.")
@click.option("--explain", is_flag=True, help="One line per message with the router's reason.")
@click.option("--json", "as_json", is_flag=True, help="Every message as a JSON list.")
@click.option(
    "--html",
    "html_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write the calendar as a self-contained HTML page to this file: months and "
    "weeks, each day's messages and cost by channel and campaign, deferrals and missed "
    "firings marked, a click on a day lists its messages. The terminal output is unchanged.",
)
@db_option
def plan(
    config_file: Path | None,
    config_path: Path | None,
    start: str,
    end: str,
    explain: bool,
    as_json: bool,
    html_file: Path | None,
    db_url: str | None,
) -> None:
    """Simulate a period: list every message that would go out, sending and writing nothing.

    The real scheduler triggers, sequences, planner, router and dispatcher run on a
    simulated clock, on a throwaway copy of the database.

    \b
    Examples:
      netanim plan --from 2026-12-01 --to 2027-04-01
      netanim plan --from 2026-12-01 --to 2026-12-08 --explain
      netanim plan --from 2026-12-01 --to 2027-04-01 --html calendar.html
    """
    import json

    from network_anim.cli.common import open_app
    from network_anim.engine.simulation import plan_period
    from network_anim.errors import UserError

    config = chosen_config(config_file, config_path)
    app = open_app(config, db_url)
    timezone = app.config.engine.timezone
    first, last = parse_moment(start, timezone, "--from"), parse_moment(end, timezone, "--to")
    if last <= first:
        raise UserError("--to must be later than --from")
    with simulation_progress(first, last, disabled=as_json) as on_step:
        sent, report = plan_period(config, app.database_url, first, last, on_step=on_step)
    for campaign, error in {**report.firings.errors, **report.sequences.errors}.items():
        console.print(f"[red]campaign {campaign}: not planned: {error}[/]")
    if html_file is not None:
        from network_anim.reports.calendar_html import render_calendar

        page = render_calendar(
            sent,
            report.missed_firings,
            timezone=timezone,
            start=first,
            end=last,
            generated=app.clock.now(),
        )
        try:
            html_file.parent.mkdir(parents=True, exist_ok=True)
            html_file.write_text(page, encoding="utf-8")
        except OSError as exc:
            raise UserError(
                f"--html {html_file}: cannot write it ({exc.strerror}): name a file in a "
                "folder you can write"
            ) from None
    if as_json:
        click.echo(json.dumps([m.as_json() for m in sent], ensure_ascii=False))
    else:
        _print_calendar(sent, timezone, explain)
    if html_file is not None:
        # On stderr under --json, so stdout stays one JSON document.
        click.echo(f"HTML calendar: {html_file}", err=as_json)


def _print_calendar(sent: list[Any], timezone: str, explain: bool) -> None:
    from zoneinfo import ZoneInfo

    from rich.table import Table

    zone = ZoneInfo(timezone)
    if explain:
        table = Table(title=f"Every message ({len(sent)})")
        for column in ("when", "contact", "campaign / step", "channel", "cost", "why"):
            table.add_column(column)
        for m in sent:
            table.add_row(
                f"{m.when.astimezone(zone):%Y-%m-%d %H:%M}",
                f"{m.contact} {m.name}",
                f"{m.campaign} / {m.step}",
                m.channel,
                f"{m.cost:.3f}",
                m.reason,
            )
        console.print(table)
        return
    calendar: Counter[tuple[str, str, str, str]] = Counter()
    cost: Counter[tuple[str, str, str, str]] = Counter()
    for m in sent:
        key = (f"{m.when.astimezone(zone):%Y-%m-%d %a}", m.campaign, m.step, m.channel)
        calendar[key] += 1
        cost[key] += m.cost
    table = Table(title=f"Calendar ({len(sent)} messages, {sum(cost.values()):.2f} EUR)")
    for column in ("day", "campaign", "step", "channel", "messages", "cost (EUR)"):
        table.add_column(
            column, justify="right" if column in ("messages", "cost (EUR)") else "left"
        )
    for key in sorted(calendar):
        table.add_row(*key, str(calendar[key]), f"{cost[key]:.2f}")
    console.print(table)
    console.print("one line per message with its reason: --explain; machine-readable: --json")
