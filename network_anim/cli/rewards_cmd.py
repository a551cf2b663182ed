from __future__ import annotations

import json
from pathlib import Path

import click

from network_anim.cli.common import app_options, console, open_app


@click.group()
def rewards() -> None:
    """The rewards shop: catalogue and stock, cancellations, the supplier's file."""


@rewards.command("list")
@click.option("--json", "as_json", is_flag=True)
@app_options
def list_cmd(as_json: bool, config_path: Path | None, db_url: str | None) -> None:
    """The catalogue with prices in points and what is left in stock.

    \b
    Example:
      netanim rewards list
    """
    from sqlalchemy import select
    from sqlmodel import Session

    from network_anim.challenges.rewards import sync_rewards
    from network_anim.db.models import Reward

    app = open_app(config_path, db_url)
    sync_rewards(app)
    with Session(app.engine) as session:
        items = session.scalars(
            select(Reward).where(Reward.active.is_(True)).order_by(Reward.points)
        ).all()
    records = [{"key": r.key, "name": r.name, "points": r.points, "stock": r.stock} for r in items]
    if as_json:
        click.echo(json.dumps(records))
        return
    for r in records:
        stock = "unlimited" if r["stock"] is None else r["stock"]
        console.print(f"{r['key']:20} {r['points']:>7} pts  stock {stock:>9}  {r['name']}")


@rewards.command("cancel")
@click.argument("redemption_id", type=int)
@app_options
def cancel_cmd(redemption_id: int, config_path: Path | None, db_url: str | None) -> None:
    """Cancel a redemption not yet exported: points refunded, gift back in stock.

    \b
    Example (REDEMPTION_ID: the number `netanim points redeem` printed):
      netanim rewards cancel 1
    """
    from network_anim.challenges.rewards import cancel

    app = open_app(config_path, db_url)
    cancel(app, redemption_id)
    console.print(f"redemption {redemption_id} cancelled and refunded")


@rewards.command("export")
@click.argument("csv_file", type=click.Path(path_type=Path, dir_okay=False))
@app_options
def export_cmd(csv_file: Path, config_path: Path | None, db_url: str | None) -> None:
    """Write the fulfilment file for the gift supplier (every placed redemption).

    \b
    Example:
      netanim rewards export var/exports/fulfilment-2027-03.csv
    """
    from network_anim.challenges.rewards import export_fulfilment

    app = open_app(config_path, db_url)
    summary = export_fulfilment(app, csv_file)
    console.print(f"{summary.lines} redemption(s) written to {summary.path}")
