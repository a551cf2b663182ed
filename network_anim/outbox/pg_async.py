"""One asyncio-native PostgreSQL connection for the dispatcher's hot path.

Claims and sent-row recordings are single statements (see :mod:`network_anim.outbox.leases`
and :mod:`network_anim.outbox.sent_rows`). Run through the synchronous engine they cost a
thread hop each, and on a 2-core machine handing the GIL back and forth between the
event loop and a database thread cost more CPU than the statement itself. psycopg's
``AsyncConnection`` waits for the server inside the event loop instead: no thread, no
blocking. Each statement is its own transaction (autocommit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError


class AsyncPostgres:
    def __init__(self, engine: Engine) -> None:
        self._dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run one statement in its own transaction; its rows. A failure is raised as
        SQLAlchemy's wrapper (as the engine would), and a lost connection is replaced
        on the next call."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
            cursor = await self._conn.execute(sql, params)
            return await cursor.fetchall()
        except psycopg.Error as exc:
            lost = self._conn is None or self._conn.broken or self._conn.closed
            if lost:
                await self.aclose()
            raise DBAPIError.instance(
                sql, params, exc, psycopg.Error, connection_invalidated=lost
            ) from exc

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            await conn.close()
