"""Claim due outbox rows: the first step of every send, on the driver (see db.raw).

A claim marks a batch of due ``pending`` rows ``claimed`` by one worker, with a lease,
and returns what sending them needs (rendered parts, the contact's address) as
:class:`Outbound` values. The UPDATE picks the rows itself (``RETURNING``), so a claim is
one statement on SQLite (plus one read of the batch's contacts) and one on PostgreSQL,
where ``FOR UPDATE SKIP LOCKED`` lets several daemons claim side by side without ever
taking the same row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from network_anim.channels.contract import Outbound, Recipient
from network_anim.db.models import Delivery
from network_anim.outbox.raw import RawSql

# What a send needs of a claimed row, then of its contact.
_DELIVERY_COLUMNS = (
    "id, due_at, idempotency_key, channel, message_id, subject, body_text, body_html, "
    "extra, contact_id"
)
_CONTACT_COLUMNS = "id, external_id, first_name, last_name, email, mobile, language"


class Claimer:
    def __init__(self, sql: RawSql, worker_id: str) -> None:
        self._sql = sql
        self._worker_id = worker_id
        columns = Delivery.__table__.c  # type: ignore[attr-defined]
        self._time = sql.bind(columns.due_at)
        self._extra = sql.result(columns.extra)

    def claim(
        self,
        *,
        now: datetime,
        lease: timedelta,
        limit: int,
        message_id: int | None = None,
        nowait: bool = False,
    ) -> list[Outbound]:
        """Claim up to ``limit`` rows due at ``now`` (oldest first), optionally of one
        message; ``nowait`` as in :meth:`RawSql.transaction`."""
        if self._sql.postgres:
            with self._sql.transaction() as cursor:
                cursor.execute(*self.postgres_claim(now=now, lease=lease, limit=limit,
                                                    message_id=message_id))  # fmt: skip
                return self.joined_outbound(cursor.fetchall())
        pick, pick_params, mark, mark_params = self._parts(now, lease, limit, message_id)
        with self._sql.transaction(nowait=nowait) as cursor:
            cursor.execute(
                f"{mark} WHERE id IN ({pick}) RETURNING {_DELIVERY_COLUMNS}",
                mark_params + pick_params,
            )
            rows = cursor.fetchall()
            contacts = self._contacts(cursor, {row[9] for row in rows})
        return self._sorted_outbound(rows, contacts)

    def postgres_claim(
        self, *, now: datetime, lease: timedelta, limit: int, message_id: int | None = None
    ) -> tuple[str, tuple[Any, ...]]:
        """The claim as one PostgreSQL statement (its rows go to :meth:`joined_outbound`):
        the rows another daemon holds are skipped, not waited for."""
        pick, pick_params, mark, mark_params = self._parts(now, lease, limit, message_id)
        return (
            f"WITH picked AS ({pick} FOR UPDATE SKIP LOCKED), "
            f"claimed AS ({mark} FROM picked WHERE delivery.id = picked.id "
            f"RETURNING {_qualified('delivery', _DELIVERY_COLUMNS)}) "
            f"SELECT claimed.*, {_qualified('contact', _CONTACT_COLUMNS)} "
            "FROM claimed JOIN contact ON contact.id = claimed.contact_id",
            pick_params + mark_params,
        )

    def joined_outbound(self, rows: Sequence[Sequence[Any]]) -> list[Outbound]:
        contacts = {row[10]: row[10:] for row in rows}
        return self._sorted_outbound([row[:10] for row in rows], contacts)

    def _parts(
        self, now: datetime, lease: timedelta, limit: int, message_id: int | None
    ) -> tuple[str, tuple[Any, ...], str, tuple[Any, ...]]:
        p = self._sql.mark
        only_message = f" AND message_id = {p}" if message_id is not None else ""
        pick = (
            f"SELECT id FROM delivery WHERE status = 'pending' AND due_at <= {p}{only_message} "
            f"ORDER BY due_at, id LIMIT {p}"
        )
        mark = (
            f"UPDATE delivery SET status = 'claimed', lease_owner = {p}, lease_until = {p}, "
            f"attempts = attempts + 1, updated_at = {p}"
        )
        when = self._time(now)
        pick_params = (when, *((message_id,) if message_id is not None else ()), limit)
        return pick, pick_params, mark, (self._worker_id, self._time(now + lease), when)

    def _sorted_outbound(
        self, rows: list[Sequence[Any]], contacts: dict[Any, Sequence[Any]]
    ) -> list[Outbound]:
        # RETURNING gives no order: sends go oldest first, as picked.
        rows.sort(key=lambda row: (row[1], row[0]))
        return [self._outbound(row, contacts[row[9]]) for row in rows]

    def _contacts(self, cursor: Any, ids: set[int]) -> dict[int, Sequence[Any]]:
        if not ids:
            return {}
        cursor.execute(
            f"SELECT {_CONTACT_COLUMNS} FROM contact WHERE id IN ({self._sql.marks(len(ids))})",
            tuple(ids),
        )
        return {row[0]: row for row in cursor.fetchall()}

    def _outbound(self, row: Sequence[Any], contact: Sequence[Any]) -> Outbound:
        delivery_id, _due, key, channel, message_id, subject, text, html, extra, _ = row
        contact_id, external_id, first_name, last_name, email, mobile, language = contact
        extra = dict(self._extra(extra))
        headers = extra.pop("headers", {})
        return Outbound(
            delivery_id=delivery_id,
            idempotency_key=key,
            channel=channel,
            recipient=Recipient(
                contact_id=contact_id,
                external_id=external_id,
                display_name=" ".join(part for part in (first_name, last_name) if part),
                email=email,
                phone=mobile,
                postal_lines=tuple(extra.get("postal_lines", ())),
                language=language,
            ),
            subject=subject,
            text=text,
            html=html,
            headers=headers,
            extra=extra,
            message_id=message_id,
        )


def _qualified(table: str, columns: str) -> str:
    return ", ".join(f"{table}.{name}" for name in columns.split(", "))
