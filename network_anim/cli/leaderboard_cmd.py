"""``netanim challenge leaderboard``: a challenge's ranking, as a table or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from network_anim.cli.common import app_options, console, open_app

PERIOD_LABELS = {
    "whole": "whole challenge",
    "month": "this month",
    "week": "this week",
}


@click.command("leaderboard")
@click.argument("challenge_id")
@click.option("--team", is_flag=True, help="Rank teams (named teams, else companies).")
@click.option(
    "--period",
    type=click.Choice(["whole", "month", "week"]),
    default="whole",
    show_default=True,
    help="Points of the whole challenge, or of the current calendar month / ISO week "
    "([engine] timezone).",
)
@click.option(
    "--around",
    metavar="CONTACT_ID",
    default=None,
    help="Contact external id: the five rows around that participant (or their team), "
    "two above and two below. An anonymous participant sees their own name.",
)
@click.option(
    "--limit",
    type=click.IntRange(0),
    default=50,
    show_default=True,
    help="Top N rows; 0 for every row. Ignored with --around.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object: the board and its rows.")
@app_options
def leaderboard(
    challenge_id: str,
    team: bool,
    period: str,
    around: str | None,
    limit: int,
    as_json: bool,
    config_path: Path | None,
    db_url: str | None,
) -> None:
    """Show the leaderboard of challenge CHALLENGE_ID.

    Points are the participants' earn, bonus and adjust entries for the challenge
    (redemptions never change a ranking). Ties share a rank; participants without
    points are listed last. Participants who opted out of public ranking show as
    "Participant anonyme" but keep their rank. The movement column compares with the
    latest snapshot (+3: up three places).

    \b
    Example:
      netanim challenge leaderboard pbx-2027 --limit 10
      netanim challenge leaderboard pbx-2027 --team --period month
      netanim challenge leaderboard pbx-2027 --around C0002 --json
    """
    import json

    from network_anim.challenges.leaderboard import leaderboard as board
    from network_anim.challenges.leaderboard import period_bounds

    app = open_app(config_path, db_url)
    try:
        scope = "team" if team else "individual"
        now = app.clock.now()
        rows = board(
            app,
            challenge_id,
            scope=scope,  # type: ignore[arg-type]
            period=period,  # type: ignore[arg-type]
            now=now,
            around=around,
            limit=None if (around or not limit) else limit,
        )
        challenge = app.config.challenge(challenge_id)
        bounds = period_bounds(app, period, now)
    finally:
        app.close()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "challenge": challenge.id,
                    "name": challenge.name,
                    "scope": scope,
                    "period": period,
                    "from": bounds[0].isoformat() if bounds else None,
                    "to": bounds[1].isoformat() if bounds else None,
                    "team_ranking": challenge.team_ranking if team else None,
                    "around": around,
                    "rows": [row.as_dict() for row in rows],
                },
                ensure_ascii=False,
            )
        )
        return
    _print(rows, challenge, scope, period, around)


def _movement(value: int | None) -> str:
    if value is None:
        return ""
    if value > 0:
        return f"[green]▲ +{value}[/]"
    if value < 0:
        return f"[red]▼ {value}[/]"
    return "="


def _points(value: int | float) -> str:
    return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"


def _print(rows: list[Any], challenge: Any, scope: str, period: str, around: str | None) -> None:
    from rich.markup import escape
    from rich.table import Table

    team = scope == "team"
    what = f"teams ({challenge.team_ranking} per member)" if team else "individual"
    table = Table(title=f"{escape(challenge.name)}: {what}, {PERIOD_LABELS[period]}")
    table.add_column("rank", justify="right")
    table.add_column("move", justify="right")
    table.add_column("team" if team else "participant")
    table.add_column("id")
    if team:
        table.add_column("members", justify="right")
    else:
        table.add_column("company")
    table.add_column("points", justify="right")
    for row in rows:
        cells = [
            str(row.rank),
            _movement(row.movement),
            escape(row.name),
            escape(row.subject or ""),
            str(row.members) if team else escape(row.company or ""),
            _points(row.points),
        ]
        table.add_row(*cells, style="bold" if row.viewer else None)
    console.print(table)
    if not rows:
        console.print("no participant yet", highlight=False)
    elif around is not None:
        console.print(f"around {escape(around)} (in bold)", highlight=False)
