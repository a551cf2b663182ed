"""The outside targets of a message, stored once when it is rendered (the ``links`` table).

A click token carries a link id and a delivery, never a URL (web/tracking.py redirects
only to a stored link, and only for a delivery of the message that holds it), so whoever
holds the signing secret cannot mint a redirect to a host the engine never wrote into a
message. Rows are written in the transaction that plans the deliveries: a plan rolled
back leaves no link behind, and a link id in a delivery's HTML always exists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from network_anim.clock import Clock
from network_anim.db.models import Link

# Longer targets are left as written, untracked: the column's size (and PostgreSQL's
# limit on a unique index entry) in bytes, not characters.
MAX_URL_BYTES = 2000


class LinkBook:
    """Link ids by (message, url) for the deliveries being composed.

    Reads a message's stored links in one query the first time the message is seen in a
    transaction, stores a new target at once (insert, ignoring a row a concurrent planner
    stored first, then read back), and remembers the ids for the rest of the transaction:
    thousands of deliveries of one newsletter cost a dictionary lookup each.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._transaction: Any = None
        self._ids: dict[int, dict[str, int]] = {}

    def link_id(self, session: Session, message_id: int, url: str) -> int | None:
        """The stored link of ``url`` in message ``message_id`` (stored now if new), or
        ``None`` for a target too long to store (left untracked)."""
        if len(url.encode("utf-8")) > MAX_URL_BYTES:
            return None
        known = self._known(session, message_id)
        found = known.get(url)
        if found is None:
            found = known[url] = _store(session, message_id, url, self._clock.now())
        return found

    def _known(self, session: Session, message_id: int) -> dict[str, int]:
        # A rolled-back transaction took its links with it: ids are only trusted within
        # the transaction that read or stored them.
        transaction = session.get_transaction()
        if transaction is None or transaction is not self._transaction:
            self._transaction = transaction
            self._ids = {}
        known = self._ids.get(message_id)
        if known is None:
            rows = session.execute(
                select(Link.url, Link.id).where(Link.message_id == message_id)
            ).all()
            known = self._ids[message_id] = {url: link_id for url, link_id in rows}
            if transaction is None:  # the select began one
                self._transaction = session.get_transaction()
        return known


def _store(session: Session, message_id: int, url: str, now: datetime) -> int:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = {"url": url, "message_id": message_id, "created_at": now}
    session.execute(insert(Link).values(**values).on_conflict_do_nothing())
    link_id = session.scalar(select(Link.id).where(Link.message_id == message_id, Link.url == url))
    assert link_id is not None
    return link_id


__all__ = ["MAX_URL_BYTES", "LinkBook"]
