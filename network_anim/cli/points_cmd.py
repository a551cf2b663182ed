from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from network_anim.cli.common import app_options, console, open_app


def _contact_id(app: Any, external_id: str) -> int:
    from sqlalchemy import select
    from sqlmodel import Session

    from network_anim.db.models import Contact
    from network_anim.errors import UserError

    with Session(app.engine) as session:
        found = session.scalar(select(Contact.id).where(Contact.external_id == external_id))
    if found is None:
        raise UserError(f"unknown contact {external_id!r}")
    return int(found)


@click.group()
def points() -> None:
    """Points: a contact's balance explained line by line, manual awards, redemptions."""


@points.command("balance")
@click.argument("contact")
@click.option("--json", "as_json", is_flag=True)
@app_options
def balance_cmd(contact: str, as_json: bool, config_path: Path | None, db_url: str | None) -> None:
    """Balance of CONTACT and every entry that explains it.

    \b
    Example:
      netanim points balance C0002
    """
    from sqlmodel import Session

    from network_anim.challenges.ledger import balance, statement

    app = open_app(config_path, db_url)
    contact_id = _contact_id(app, contact)
    with Session(app.engine) as session:
        total, lines = balance(session, contact_id), statement(session, contact_id)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "contact": contact,
                    "balance": total,
                    "entries": [
                        {
                            "when": ln.when.isoformat(),
                            "kind": ln.kind,
                            "points": ln.points,
                            "balance": ln.balance,
                            "reason": ln.reason,
                            "actor": ln.actor,
                            "challenge": ln.challenge,
                        }
                        for ln in lines
                    ],
                }
            )
        )
        return
    from rich.table import Table

    table = Table(title=f"{contact}: {total} points")
    for column in ("date", "kind", "points", "balance", "reason", "by"):
        table.add_column(column, justify="right" if column in ("points", "balance") else "left")
    for ln in lines:
        table.add_row(
            ln.when.date().isoformat(),
            ln.kind,
            f"{ln.points:+d}",
            str(ln.balance),
            ln.reason,
            ln.actor,
        )
    console.print(table)


@points.command("award")
@click.argument("contact")
@click.argument("amount", type=int)
@click.option("--reason", required=True, help="Shown to the participant.")
@click.option(
    "--challenge", "challenge_key", default=None, help="Counts in this challenge's ranking."
)
@click.option("--actor", default="manager", show_default=True)
@click.option("--ref", default=None, help="Unique reference: the same --ref never awards twice.")
@app_options
def award_cmd(
    contact: str,
    amount: int,
    reason: str,
    challenge_key: str | None,
    actor: str,
    ref: str | None,
    config_path: Path | None,
    db_url: str | None,
) -> None:
    """Give (positive AMOUNT) or take back (negative) points by hand, with a reason.

    \b
    Example:
      netanim points award C0002 250 --reason "salon Lyon: best demo"
    """
    import secrets

    from sqlmodel import Session

    from network_anim.challenges.ledger import balance, credit, debit
    from network_anim.errors import UserError

    app = open_app(config_path, db_url)
    if amount == 0:
        raise UserError("AMOUNT must not be 0")
    if challenge_key:
        app.config.challenge(challenge_key)
    contact_id = _contact_id(app, contact)
    source = f"manual:{ref or secrets.token_hex(8)}"
    with Session(app.engine) as session, session.begin():
        common: dict[str, Any] = {
            "contact_id": contact_id,
            "source_key": source,
            "now": app.clock.now(),
            "actor": actor,
            "reason": reason,
            "challenge_key": challenge_key,
        }
        entry = (
            credit(session, points=amount, kind="adjust", **common)
            if amount > 0
            else debit(session, points=-amount, kind="adjust", **common)
        )
        total = balance(session, contact_id)
    if entry is None:
        console.print(f"reference {ref!r} was already used: nothing changed (balance {total})")
    else:
        console.print(f"{contact}: {amount:+d} points, balance {total}")


@points.command("redeem")
@click.argument("contact")
@click.argument("reward")
@app_options
def redeem_cmd(contact: str, reward: str, config_path: Path | None, db_url: str | None) -> None:
    """Redeem REWARD for CONTACT: stock and points are taken together, or not at all.

    \b
    Example:
      netanim points redeem C0008 coffret-gourmand
    """
    from network_anim.challenges.rewards import redeem, sync_rewards

    app = open_app(config_path, db_url)
    sync_rewards(app)
    redemption = redeem(app, _contact_id(app, contact), reward, actor="manager")
    console.print(
        f"redemption {redemption.id}: {reward} for {contact} ({redemption.points} points)"
    )
