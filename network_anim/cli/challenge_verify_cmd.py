"""``netanim challenge verify``: the running totals checked against the ledger."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from network_anim.cli.common import app_options, console, open_app

_SHOWN = 20  # differences listed in the table; --json gives them all


@click.command("verify")
@click.argument("challenge_id")
@click.option(
    "--repair",
    is_flag=True,
    help="Rebuild the totals from the ledger when they differ (the ledger is the truth).",
)
@click.option("--json", "as_json", is_flag=True, help="Every difference, as JSON.")
@app_options
def verify_cmd(
    challenge_id: str, repair: bool, as_json: bool, config_path: Path | None, db_url: str | None
) -> None:
    """Rebuild a challenge's leaderboard totals from the points ledger and compare.

    Leaderboards read running totals that every ledger entry updates in its own
    transaction; this recomputes them from the ledger (per participant and company, whole
    challenge, month and week) and lists what differs. Exit 1 when something differs and
    --repair was not given.

    \b
    Examples:
      netanim challenge verify pbx-2027
      netanim challenge verify pbx-2027 --repair --json
    """
    from sqlalchemy import select
    from sqlmodel import Session

    from network_anim.challenges.totals import differences, rebuild
    from network_anim.challenges.upkeep import sync_challenges
    from network_anim.db.models import Challenge

    app = open_app(config_path, db_url)
    app.config.challenge(challenge_id)
    zone = app.config.engine.timezone
    with Session(app.engine) as session:
        built_in = session.scalar(
            select(Challenge.totals_zone).where(Challenge.key == challenge_id)
        )
    sync_challenges(app)  # builds the totals if they were not (built_in != zone)
    built_now = built_in != zone
    with Session(app.engine) as session, session.begin():
        found = differences(session, challenge_id, zone)
        if found and repair:
            rebuild(session, challenge_id, zone)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "challenge": challenge_id,
                    "built_now": built_now,
                    "differences": [d.as_dict() for d in found],
                    "repaired": bool(found and repair),
                },
                indent=2,
            )
        )
    elif not found:
        console.print(
            f"{challenge_id}: the leaderboard totals match the ledger"
            + (" (built from it just now)" if built_now else "")
        )
    else:
        table = Table(title=f"{challenge_id}: totals that differ from the ledger")
        for column in ("table", "period", "bucket", "id", "stored", "ledger says"):
            table.add_column(column)
        for d in found[:_SHOWN]:
            table.add_row(
                d.table,
                d.period,
                d.bucket or "-",
                str(d.subject_id),
                _values(d.stored),
                _values(d.expected),
            )
        console.print(table)
        more = f" ({len(found) - _SHOWN} more: --json)" if len(found) > _SHOWN else ""
        console.print(
            f"{len(found)} difference(s){more}; "
            + ("rebuilt from the ledger" if repair else "run again with --repair to rebuild")
        )
    if found and not repair:
        raise SystemExit(1)


def _values(values: tuple[int, ...] | None) -> str:
    if values is None:
        return "no row"
    return " / ".join(
        f"{name} {v}" for name, v in zip(("points", "sales", "members"), values, strict=False)
    )
