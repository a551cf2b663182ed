from __future__ import annotations

from pathlib import Path

import click

from network_anim.cli.common import app_options, console, open_app
from network_anim.domain import DeliveryStatus

MISSED = "missed"
_RETRYABLE = (
    DeliveryStatus.FAILED,
    DeliveryStatus.UNKNOWN,
    DeliveryStatus.DEAD,
    DeliveryStatus.CANCELLED,
    DeliveryStatus.OPTED_OUT,
)


@click.group(invoke_without_command=True)
@click.option(
    "--status",
    type=click.Choice([s.value for s in DeliveryStatus] + [MISSED]),
    default=None,
    help="Only rows with this status; failed, unknown, dead and missed need an operator.",
)
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row, in a list.")
@app_options
@click.pass_context
def outbox(
    ctx: click.Context,
    status: str | None,
    limit: int,
    as_json: bool,
    config_path: Path | None,
    db_url: str | None,
) -> None:
    """List outbox rows, newest first, with their status, reason and last error.

    `--status missed` lists scheduled firings found too late (the daemon was down):
    they wait for an operator. Webhook rows (docs/webhooks.md) follow, as wh-N.
    `netanim outbox retry ID...` requeues.

    \b
    Examples:
      netanim outbox --status unknown
      netanim outbox --status missed --json
    """
    if ctx.invoked_subcommand is not None:
        return
    import json

    from network_anim.webhooks.operator import outbox_records

    app = open_app(config_path, db_url)
    if status == MISSED:
        records = _missed(app, limit)
    else:  # the messages' rows, then the webhooks' (wh-N)
        records = _deliveries(app, status, limit) + outbox_records(app, status, limit)
    if as_json:
        click.echo(json.dumps(records))
        return
    _print(records, status, limit)


def _deliveries(app: object, status: str | None, limit: int) -> list[dict[str, object]]:
    from sqlalchemy import select
    from sqlmodel import Session

    from network_anim.db.models import Contact, Delivery

    query = (
        select(Delivery, Contact.external_id)
        .join(Contact, Contact.id == Delivery.contact_id)  # type: ignore[arg-type]
        .order_by(Delivery.id.desc())  # type: ignore[union-attr]
        .limit(limit)
    )
    if status:
        query = query.where(Delivery.status == status)
    with Session(app.engine) as session:  # type: ignore[attr-defined]
        rows = session.execute(query).all()
    return [
        {
            "id": str(d.id),
            "key": d.idempotency_key,
            "contact": contact,
            "channel": d.channel,
            "status": d.status,
            "due_at": d.due_at.isoformat(),
            "attempts": d.attempts,
            "reason": d.reason,
            "last_error": d.last_error,
            # Failed for good, its fallback not planned yet (the next drain plans it).
            "fallback_due": d.fallback_due,
            "provider_id": d.provider_id,
        }
        for d, contact in rows
    ]


def _missed(app: object, limit: int) -> list[dict[str, object]]:
    from sqlalchemy import select
    from sqlmodel import Session

    from network_anim.db.models import Occurrence

    query = (
        select(Occurrence)
        .where(Occurrence.status == MISSED)
        .order_by(Occurrence.scheduled_for.desc())  # type: ignore[attr-defined]
        .limit(limit)
    )
    with Session(app.engine) as session:  # type: ignore[attr-defined]
        rows = session.scalars(query).all()
    return [
        {
            "id": f"occ-{o.id}",
            "key": o.campaign_key,
            "contact": "(audience)",
            "channel": "",
            "status": MISSED,
            "due_at": o.scheduled_for.isoformat(),
            "attempts": 0,
            "reason": "",
            "last_error": o.detail,
            "fallback_due": False,
            "provider_id": None,
        }
        for o in rows
    ]


def _print(records: list[dict[str, object]], status: str | None, limit: int) -> None:
    from rich.table import Table

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
        # The last column wraps: a held fallback's reason ends a long provider answer.
        table.add_column(column, overflow="fold")
    for r in records:
        table.add_row(
            str(r["id"]),
            str(r["contact"]),
            str(r["channel"]),
            str(r["status"]),
            str(r["due_at"])[:16],
            str(r["attempts"]),
            str(r["last_error"] or r["reason"])[:300],
        )
    console.print(table)


@outbox.command("retry")
@click.argument("ids", nargs=-1, required=True)
@app_options
def retry(ids: tuple[str, ...], config_path: Path | None, db_url: str | None) -> None:
    """Requeue outbox rows (failed, unknown, dead...) now, or plan missed firings (occ-N).

    IDS: the id column of `netanim outbox --status failed` (or unknown, dead): those rows
    are requeued, rows in any other state are counted and left alone; occ-N: the id of a
    firing `netanim outbox --status missed` lists; wh-N: a webhook row (dead, or pending
    a retry), sent at the next pass. An `unknown` row may already have
    reached the recipient: retry it only once you have checked with the provider.

    \b
    Examples:
      netanim outbox --status dead
      netanim outbox retry 1 2
    """
    from sqlalchemy import update

    from network_anim.campaigns.scheduled import replay_missed
    from network_anim.db.models import Delivery
    from network_anim.errors import UserError
    from network_anim.webhooks.operator import ID_PREFIX, requeue

    app = open_app(config_path, db_url)
    occurrences = [i for i in ids if i.startswith("occ-")]
    hooks = [i for i in ids if i.startswith(ID_PREFIX)]
    rows = [i for i in ids if not i.startswith(("occ-", ID_PREFIX))]
    bad = [i for i in rows if not i.isdigit()] + [
        i for i in occurrences + hooks if not i.partition("-")[2].isdigit()
    ]
    if bad:
        raise UserError(
            "not an outbox id", [f"{i!r}: use the id column of netanim outbox" for i in bad]
        )
    now = app.clock.now()
    with app.engine.begin() as conn:
        requeued = conn.execute(
            update(Delivery)
            .where(Delivery.id.in_([int(i) for i in rows]))  # type: ignore[union-attr]
            .where(Delivery.status.in_([s.value for s in _RETRYABLE]))  # type: ignore[attr-defined]
            .values(
                status=DeliveryStatus.PENDING.value,
                due_at=now,
                attempts=0,
                lease_owner=None,
                lease_until=None,
                updated_at=now,
            )
        ).rowcount
    planned = sum(replay_missed(app, int(i.removeprefix("occ-"))) for i in occurrences)
    requeued = (requeued or 0) + requeue(app, [int(i.removeprefix(ID_PREFIX)) for i in hooks])
    rows += hooks
    console.print(
        f"{requeued or 0} row(s) requeued"
        + (
            f" (of {len(rows)} asked; others are not in a retryable state)"
            if rows and requeued != len(rows)
            else ""
        )
        + (
            f"; {len(occurrences)} missed firing(s) planned: {planned} deliveries"
            if occurrences
            else ""
        )
    )
