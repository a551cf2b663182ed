from __future__ import annotations

from pathlib import Path

import click

from network_anim.cli.common import app_options, console, open_app
from network_anim.domain import DeliveryStatus


@click.command()
@click.option(
    "--status",
    type=click.Choice([s.value for s in DeliveryStatus]),
    default=None,
    help="Only rows with this status (failed, unknown, dead... need an operator).",
)
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row, in a list.")
@app_options
def outbox(
    status: str | None, limit: int, as_json: bool, config_path: Path | None, db_url: str | None
) -> None:
    """List outbox rows, newest first, with their status, reason and last error.

    \b
    Example:
      netanim outbox -c config.example.toml --status unknown
    """
    import json

    from rich.table import Table
    from sqlalchemy import select
    from sqlmodel import Session

    from network_anim.db.models import Contact, Delivery

    app = open_app(config_path, db_url)
    query = (
        select(Delivery, Contact.external_id)
        .join(Contact, Contact.id == Delivery.contact_id)  # type: ignore[arg-type]
        .order_by(Delivery.id.desc())  # type: ignore[union-attr]
        .limit(limit)
    )
    if status:
        query = query.where(Delivery.status == status)
    with Session(app.engine) as session:
        rows = session.execute(query).all()
    records = [
        {
            "id": d.id,
            "key": d.idempotency_key,
            "contact": contact,
            "channel": d.channel,
            "status": d.status,
            "due_at": d.due_at.isoformat(),
            "attempts": d.attempts,
            "reason": d.reason,
            "last_error": d.last_error,
            "provider_id": d.provider_id,
        }
        for d, contact in rows
    ]
    if as_json:
        click.echo(json.dumps(records))
        return
    table = Table(title=f"Outbox ({status or 'all statuses'}, newest {limit})")
    for column in (
        "id",
        "contact",
        "channel",
        "status",
        "due (UTC)",
        "tries",
        "last error / reason",
    ):
        table.add_column(column)
    for r in records:
        table.add_row(
            str(r["id"]),
            r["contact"],
            r["channel"],
            r["status"],
            r["due_at"][:16],
            str(r["attempts"]),
            (r["last_error"] or r["reason"])[:80],
        )
    console.print(table)
