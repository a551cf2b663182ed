"""The change feed: new rows of the source tables become webhook outbox rows.

For each source, in one transaction: read the rows after the stored position, in
ordering-key order, write one ``webhook_delivery`` row per (event, subscriber that wants
it), and move the position. A crash rolls back both (nothing lost); an event read twice
meets the unique (event_key, subscriber) index (nothing doubled).

Reading "after the position" is complete only if no row below it can still appear. On
SQLite writers take turns (BEGIN IMMEDIATE), so ids arrive in commit order. On
PostgreSQL a transaction can commit a lower id after a higher one is read: the feed
therefore locks the source table in SHARE ROW EXCLUSIVE mode while it reads, which waits
for the transactions writing it to end and holds new writers for the few milliseconds of
the read (``lock_timeout`` bounds the wait: the pass is skipped, the next tick retries).
Sources positioned by a time their writer took (reviews, answers) are read again from a
window back of the position (``Source.reread_window``): the writer takes its time before
it takes the lock.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, or_, select, text, update

from network_anim.app import App
from network_anim.config.settings import WebhookSubscriber
from network_anim.db.models import WebhookDelivery, WebhookFeed
from network_anim.db.types import UTCDateTime
from network_anim.planning.records import insert_ignoring
from network_anim.webhooks.sources import SOURCES, FeedEvent, Source, iso

_PAGE = 500
_LOCK_TIMEOUT = "5s"


def run_feed(app: App, *, sources: tuple[Source, ...] = SOURCES) -> Counter[str]:
    """Turn every new row of the sources into outbox rows; the webhook types written."""
    written: Counter[str] = Counter()
    subscribers = app.config.webhooks
    if not subscribers:
        return written
    for source in sources:
        # Only a pass's first page reads back of the position (Source.reread_window):
        # later pages move strictly on, or a page of rows sharing one time would be
        # read forever.
        reread = source.reread_window is not None
        while _page(app, source, subscribers, written, reread=reread) == _PAGE:
            reread = False
    return written


def _page(
    app: App,
    source: Source,
    subscribers: tuple[WebhookSubscriber, ...],
    written: Counter[str],
    *,
    reread: bool,
) -> int:
    """One page of one source in one transaction; the number of source rows read."""
    now = app.clock.now()
    with app.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'"))
            table = source.table.__tablename__
            conn.execute(text(f'LOCK TABLE "{table}" IN SHARE ROW EXCLUSIVE MODE'))
        stored = conn.scalar(select(WebhookFeed.position).where(WebhookFeed.source == source.name))
        if stored is None:
            # A first pass starts at the end: subscribers hear of what happens from now
            # on, not of the whole history at once.
            newest = select(*source.order).order_by(*(c.desc() for c in source.order))
            last = conn.execute(newest.limit(1)).first()
            conn.execute(
                WebhookFeed.__table__.insert(),  # type: ignore[attr-defined]
                {"source": source.name, "position": _encoded(last), "updated_at": now},
            )
            return 0
        keys = [column.label(f"_key{i}") for i, column in enumerate(source.order)]
        query = source.query.add_columns(*keys).order_by(*source.order).limit(_PAGE)
        if stored:
            query = query.where(_after(source, _decoded(source, stored), reread=reread))
        rows = conn.execute(query).all()
        for row in rows:
            for event in source.events(row):
                _write(conn, event, subscribers, now, written)
        if rows:
            last = tuple(getattr(rows[-1], f"_key{i}") for i in range(len(keys)))
            conn.execute(
                update(WebhookFeed)
                .where(WebhookFeed.source == source.name)  # type: ignore[arg-type]
                .values(position=_encoded(last), updated_at=now)
            )
        return len(rows)


def _write(
    conn: Connection,
    event: FeedEvent,
    subscribers: tuple[WebhookSubscriber, ...],
    now: datetime,
    written: Counter[str],
) -> None:
    body = event_body(event)
    table = WebhookDelivery.__table__  # type: ignore[attr-defined]
    for subscriber in subscribers:
        if not subscriber.wants(event.type):
            continue
        statement = insert_ignoring(conn, table, ["event_key", "subscriber"])
        row = {
            "event_key": event.key,
            "subscriber": subscriber.name,
            "event_type": event.type,
            "body": body,
            "status": "pending",
            "attempts": 0,
            "due_at": now,
            "last_error": "",
            "created_at": now,
            "updated_at": now,
        }
        if conn.execute(statement.returning(table.c.id), row).first() is not None:
            written[event.type] += 1


def event_body(event: FeedEvent) -> str:
    """The JSON POSTed and signed, kept as text: every attempt sends the same bytes."""
    document = {"type": event.type, "timestamp": iso(event.occurred_at), "data": event.data}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=_jsonable)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _after(source: Source, start: list[Any], *, reread: bool = False) -> ColumnElement[bool]:
    """Rows after ``start`` in the ordering key's order (a keyset condition); with
    ``reread``, from the source's window back of ``start``'s time."""
    first = source.order[0]
    if reread and source.reread_window is not None:
        return first >= start[0] - source.reread_window  # type: ignore[no-any-return]
    if len(start) == 1:
        return first > start[0]  # type: ignore[no-any-return]
    return or_(first > start[0], and_(first == start[0], _after_rest(source, start)))


def _after_rest(source: Source, start: list[Any]) -> ColumnElement[bool]:
    rest = Source(source.name, source.table, source.query, source.order[1:], source.events)
    return _after(rest, start[1:])


def _encoded(key: Any) -> list[Any]:
    """A position as JSON: [] for an empty table, times as ISO text."""
    if key is None:
        return []
    return [value.isoformat() if isinstance(value, datetime) else value for value in key]


def _decoded(source: Source, position: list[Any]) -> list[Any]:
    return [
        datetime.fromisoformat(value) if isinstance(column.type, UTCDateTime) else value
        for column, value in zip(source.order, position, strict=True)
    ]
