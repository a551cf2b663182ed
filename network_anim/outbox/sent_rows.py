"""Record sent outbox rows: the dispatcher's hot path, written for the driver.

Sending 1,000+ emails a second leaves a few tenths of a millisecond per message for its
recording, and the default ``max_unrecorded = 1`` commits each result on its own. The
statements (mark the rows this worker still holds sent, add their ``sent`` events) are
plain SQL on the driver (:mod:`network_anim.outbox.raw`), parameters converted by the same
column types the ORM uses. Everything rarer than "sent" (retries, fallbacks, opt-outs)
stays in the ORM code of :mod:`network_anim.outbox.dispatcher`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from network_anim.channels.contract import Outbound, SendResult
from network_anim.db.models import Delivery, Event
from network_anim.outbox.raw import RawSql


class SentRecorder:
    def __init__(self, sql: RawSql, worker_id: str) -> None:
        self._sql = sql
        self._worker_id = worker_id
        self._time = sql.bind(Delivery.__table__.c.sent_at)  # type: ignore[attr-defined]
        self._json = sql.bind(Event.__table__.c.data)  # type: ignore[attr-defined]
        p = sql.mark
        self._mark_sent = (
            f"UPDATE delivery SET status = 'sent', sent_at = {p}, "
            f"cost = COALESCE({p}, cost_estimate), provider_id = COALESCE({p}, provider_id), "
            f"last_error = '', lease_owner = NULL, lease_until = NULL, updated_at = {p} "
            f"WHERE id = {p} AND status = 'claimed' AND lease_owner = {p} "
            "RETURNING contact_id, channel, message_id"
        )
        self._insert = (
            "INSERT INTO event (occurred_at, type, channel, contact_id, delivery_id, "
            f"message_id, machine, data, dedupe_key) VALUES ({p}, 'sent', {p}, {p}, {p}, "
            f"{p}, {p}, {p}, NULL)"
        )

    def record(
        self,
        sent: Sequence[tuple[int, SendResult]],
        now: datetime,
        nowait: bool = False,
        owner: str | None = None,
    ) -> set[int]:
        """SQLite: in one transaction, mark the ``(delivery id, result)`` rows that
        ``owner`` (default: this worker) still holds (claimed, its lease) sent, with one
        event each; returns their ids. Rows whose lease expired and that another worker
        took over are theirs to record. ``nowait`` as in :meth:`RawSql.transaction`.
        (PostgreSQL: :meth:`postgres_statement`, run on the dispatcher's asyncio
        connection.)"""
        assert not self._sql.postgres, "PostgreSQL records through postgres_statement"
        when = self._time(now)
        holder = owner or self._worker_id
        events: list[tuple[Any, ...]] = []
        with self._sql.transaction(nowait=nowait) as cursor:
            # One guarded UPDATE per row (a prepared statement, a few microseconds each):
            # its RETURNING says whether the row was still ours, in the same step.
            for delivery_id, result in sent:
                provider = result.provider_id[:300] if result.provider_id else None
                cursor.execute(
                    self._mark_sent, (when, result.cost, provider, when, delivery_id, holder)
                )
                mine = cursor.fetchall()  # fetched to the end: the statement is done
                if not mine:
                    continue
                contact_id, channel, message_id = mine[0]
                data = {"detail": result.detail[:500], "provider_id": result.provider_id}
                events.append(
                    (when, channel, contact_id, delivery_id, message_id, False, self._json(data))
                )
            if events:
                cursor.executemany(self._insert, events)
        return {event[3] for event in events}

    def postgres_statement(
        self, sent: Sequence[tuple[Outbound, SendResult]], now: datetime
    ) -> tuple[str, tuple[Any, ...]]:
        """The recording as one PostgreSQL statement (one round trip), returning the
        recorded ids: the guarded UPDATE locks and marks the rows, its RETURNING feeds
        the events' INSERT. ``set_config(..., true)`` makes this transaction's commit
        return before PostgreSQL flushes its WAL (within a fraction of a second): a
        daemon killed at any time loses nothing, since the server has the record; only
        a crash of the database server itself could lose the last results, whose emails
        would then be sent again (at least once). Waiting for a disk flush per result
        capped one daemon near 50 msg/s on this machine."""
        values = ", ".join(["(%s::bigint, %s::float8, %s::varchar, %s::text)"] * len(sent))
        params: list[Any] = []
        for item, result in sent:
            provider = result.provider_id[:300] if result.provider_id else None
            params += [item.delivery_id, result.cost, provider, result.detail[:500]]
        when = self._time(now)
        return (
            f"WITH v(id, cost, provider_id, detail) AS (VALUES {values}), "
            "async AS (SELECT set_config('synchronous_commit', 'off', true)), "
            "marked AS (UPDATE delivery d SET status = 'sent', sent_at = %s, "
            "cost = COALESCE(v.cost, d.cost_estimate), "
            "provider_id = COALESCE(v.provider_id, d.provider_id), last_error = '', "
            "lease_owner = NULL, lease_until = NULL, updated_at = %s FROM v "
            "WHERE d.id = v.id AND d.status = 'claimed' AND d.lease_owner = %s "
            "RETURNING d.id, d.channel, d.contact_id, d.message_id, v.provider_id, v.detail) "
            "INSERT INTO event (occurred_at, type, channel, contact_id, delivery_id, "
            "message_id, machine, data, dedupe_key) "
            "SELECT %s, 'sent', m.channel, m.contact_id, m.id, m.message_id, false, "
            "json_build_object('detail', m.detail, 'provider_id', m.provider_id), NULL "
            "FROM marked m CROSS JOIN async RETURNING delivery_id",
            (*params, when, when, self._worker_id, when),
        )
