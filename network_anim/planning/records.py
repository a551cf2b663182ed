"""What feedback writes that the planner then reads: consent rows and contact events.

Below the web layer, so a bounce processed by the daemon or the CLI (bounces/, layer 6)
changes consent exactly as the web's handlers do (they use these same functions, through
web/events.py): an upsert of the contact's basis for a channel, and an ``unsubscribed``
event when it is new (what the one-click unsubscribe link writes, web/tracking.py, and
what a sequence's ``exit_on`` reads).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from network_anim.db.models import Consent, Event
from network_anim.domain import LawfulBasis

_EVENT_TABLE = Event.__table__  # type: ignore[attr-defined]


def event_row(
    *,
    type: str,
    occurred_at: datetime,
    channel: str = "",
    contact_id: int | None = None,
    delivery_id: int | None = None,
    message_id: int | None = None,
    machine: bool = False,
    data: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> dict[str, Any]:
    """One ``event`` row with every column given (bulk inserts need the same keys)."""
    return {
        "occurred_at": occurred_at,
        "type": type,
        "channel": channel,
        "contact_id": contact_id,
        "delivery_id": delivery_id,
        "message_id": message_id,
        "machine": machine,
        "data": data or {},
        "dedupe_key": dedupe_key,
    }


def insert_ignoring(connection: Connection, table: Any, keys: list[str]) -> Any:
    """INSERT ... ON CONFLICT (keys) DO NOTHING, on SQLite and PostgreSQL alike."""
    module = postgresql if connection.dialect.name == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing(index_elements=keys)


def insert_event(connection: Connection, row: dict[str, Any]) -> bool:
    """Insert one event in the caller's transaction; False if its dedupe key exists."""
    statement = insert_ignoring(connection, _EVENT_TABLE, ["dedupe_key"])
    # RETURNING rather than rowcount: psycopg reports -1 rows for an INSERT ... RETURNING.
    return connection.execute(statement.returning(_EVENT_TABLE.c.id), row).first() is not None


def current_basis(session: Session, contact_id: int, channel: str) -> str | None:
    return session.scalar(
        select(Consent.basis).where(Consent.contact_id == contact_id, Consent.channel == channel)
    )


def set_consent(
    session: Session,
    *,
    contact_id: int,
    channel: str,
    basis: LawfulBasis,
    source: str,
    now: datetime,
) -> str | None:
    """Record a contact's basis for a channel now, in the caller's transaction (an upsert,
    so two concurrent writers cannot both insert). Returns the basis it replaced."""
    connection = session.connection()
    previous = current_basis(session, contact_id, channel)
    module = postgresql if connection.dialect.name == "postgresql" else sqlite
    values = {"basis": basis.value, "source": source[:80], "updated_at": now}
    statement = module.insert(Consent.__table__).values(  # type: ignore[attr-defined]
        contact_id=contact_id, channel=channel, **values
    )
    connection.execute(
        statement.on_conflict_do_update(index_elements=["contact_id", "channel"], set_=values)
    )
    return previous


def opt_out(
    session: Session,
    *,
    contact_id: int,
    channel: str,
    source: str,
    now: datetime,
    delivery_id: int | None = None,
    message_id: int | None = None,
) -> bool:
    """Opt the contact out of ``channel`` as the one-click unsubscribe link does: basis
    ``opted_out``, and an ``unsubscribed`` event when it was not opted out already.
    Returns whether anything changed."""
    previous = set_consent(
        session,
        contact_id=contact_id,
        channel=channel,
        basis=LawfulBasis.OPTED_OUT,
        source=source,
        now=now,
    )
    if previous == LawfulBasis.OPTED_OUT.value:
        return False
    insert_event(
        session.connection(),
        event_row(
            type="unsubscribed",
            occurred_at=now,
            channel=channel,
            contact_id=contact_id,
            delivery_id=delivery_id,
            message_id=message_id,
            data={"source": source, "previous": previous or ""},
        ),
    )
    return True


__all__ = [
    "current_basis",
    "event_row",
    "insert_event",
    "insert_ignoring",
    "opt_out",
    "set_consent",
]
