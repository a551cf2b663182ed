"""Record sent outbox rows in bulk: the dispatcher's hot path, written for the driver.

Sending 1,000+ emails a second leaves a few tenths of a millisecond per message for its
recording. SQLAlchemy's statement compilation and parameter processing cost more than
that, so the two statements here (mark the rows sent, add their ``sent`` events) are
plain SQL run with the driver's ``executemany``, parameters converted once by the same
column types the ORM uses. Everything rarer than "sent" (retries, fallbacks, opt-outs)
stays in the ORM code of :mod:`network_anim.dispatcher`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine

from network_anim.channels.base import Outbound, SendResult
from network_anim.db.models import Delivery, Event


class SentRecorder:
    def __init__(self, engine: Engine, worker_id: str) -> None:
        dialect = engine.dialect
        self._engine = engine
        self._worker_id = worker_id
        self._postgres = dialect.name == "postgresql"
        self._mark = "%s" if dialect.paramstyle in ("format", "pyformat") else "?"
        columns = Delivery.__table__.c  # type: ignore[attr-defined]
        self._time = columns.sent_at.type.dialect_impl(dialect).bind_processor(dialect)
        self._json = (
            Event.__table__.c.data.type.dialect_impl(dialect).bind_processor(dialect)  # type: ignore[attr-defined]
            or (lambda value: value)
        )
        p = self._mark
        self._update = (
            f"UPDATE delivery SET status = 'sent', sent_at = {p}, "
            f"cost = COALESCE({p}, cost_estimate), provider_id = COALESCE({p}, provider_id), "
            f"last_error = '', lease_owner = NULL, lease_until = NULL, updated_at = {p} "
            f"WHERE id = {p}"
        )
        self._insert = (
            "INSERT INTO event (occurred_at, type, channel, contact_id, delivery_id, "
            f"message_id, machine, data, dedupe_key) VALUES ({p}, 'sent', {p}, {p}, {p}, "
            f"{p}, {p}, {p}, NULL)"
        )

    def owned(self, conn: Connection, ids: Sequence[int]) -> set[int]:
        """Which of ``ids`` this worker still holds (claimed, its lease); locked on
        PostgreSQL until the transaction ends, so no reclaim slips in between."""
        if not ids:
            return set()
        p = self._mark
        sql = (
            f"SELECT id FROM delivery WHERE id IN ({', '.join([p] * len(ids))}) "
            f"AND status = 'claimed' AND lease_owner = {p}"
        )
        if self._postgres:
            sql += " FOR UPDATE"
        return {row[0] for row in conn.exec_driver_sql(sql, (*ids, self._worker_id))}

    def record(
        self, conn: Connection, sent: Sequence[tuple[Outbound, SendResult]], now: datetime
    ) -> None:
        """Mark ``sent`` rows (all owned by this worker) sent, with one event each."""
        when = self._time(now) if self._time is not None else now
        conn.exec_driver_sql(
            self._update,
            [
                (
                    when,
                    result.cost,
                    result.provider_id[:300] if result.provider_id else None,
                    when,
                    item.delivery_id,
                )
                for item, result in sent
            ],
        )
        conn.exec_driver_sql(
            self._insert,
            [
                (
                    when,
                    item.channel,
                    item.recipient.contact_id,
                    item.delivery_id,
                    item.message_id,
                    False,
                    self._json({"detail": result.detail[:500], "provider_id": result.provider_id}),
                )
                for item, result in sent
            ],
        )
