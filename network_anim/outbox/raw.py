"""Driver-level transactions for the dispatcher's hot path.

Claiming due rows and recording sent ones happen hundreds of times a second. Through
SQLAlchemy's ``engine.begin()`` one small transaction costs about 0.45 ms of CPU on
SQLite (events, result processing, reset on return), three times what the driver needs
for the same statements. The hot path therefore runs its few fixed statements on the
pooled connection's DBAPI object itself; everything else keeps using SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from network_anim.db.engine import BUSY_TIMEOUT_MS


class Busy(Exception):
    """Another connection holds SQLite's write lock (raised only with ``nowait``)."""


class RawSql:
    """The dialect facts raw statements need: placeholder, and the column types' own
    converters, so values are stored exactly as the ORM would store them."""

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        self.engine = engine
        self.postgres = dialect.name == "postgresql"
        self.mark = "%s" if dialect.paramstyle in ("format", "pyformat") else "?"
        self._held: Connection | None = None

    def bind(self, column: Any) -> Callable[[Any], Any]:
        """How ``column``'s type turns a Python value into a driver parameter."""
        dialect = self.engine.dialect
        processor = column.type.dialect_impl(dialect).bind_processor(dialect)
        return processor or _unchanged

    def result(self, column: Any) -> Callable[[Any], Any]:
        """How ``column``'s type turns a driver value into the Python value."""
        dialect = self.engine.dialect
        processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
        return processor or _unchanged

    def marks(self, count: int) -> str:
        return ", ".join([self.mark] * count)

    @contextmanager
    def transaction(self, *, nowait: bool = False) -> Iterator[Any]:
        """A DBAPI cursor inside one transaction: committed when the block ends, rolled
        back if it raises. SQLite takes its write lock up front (``BEGIN IMMEDIATE``, as
        every engine transaction does here), so a claim never fails half-way.

        ``nowait`` (SQLite, for the event loop, which must not wait): raise
        :class:`Busy` at once, having done nothing, when another writer holds the lock.
        Such transactions run on one connection kept for them (``busy_timeout = 0``),
        which spares a pool checkout and two PRAGMAs per transaction; :meth:`close`
        hands it back."""
        if nowait and not self.postgres:
            if self._held is None:
                self._held = self.engine.connect()
                _pragma(self._held, "busy_timeout = 0")
            with self._in_transaction(self._held, nowait=True) as cursor:
                yield cursor
            return
        with self.engine.connect() as conn, self._in_transaction(conn) as cursor:
            yield cursor

    def close(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            try:
                _pragma(held, f"busy_timeout = {BUSY_TIMEOUT_MS}")
            finally:
                held.close()

    @contextmanager
    def _in_transaction(self, conn: Connection, *, nowait: bool = False) -> Iterator[Any]:
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        cursor = dbapi.cursor()
        try:
            if not self.postgres:
                _begin_immediate(cursor, nowait=nowait)
            yield cursor
            if self.postgres:
                dbapi.commit()
            else:
                cursor.execute("COMMIT")
        except BaseException as exc:
            _roll_back(dbapi, postgres=self.postgres)
            driver_error = self.engine.dialect.loaded_dbapi.Error
            if not isinstance(exc, driver_error):
                raise
            # What callers of the engine would have seen: SQLAlchemy's wrapper, and a
            # connection lost with the server is not handed out again.
            lost = self.engine.dialect.is_disconnect(exc, dbapi, cursor)
            if lost:
                conn.invalidate(exc)
                if conn is self._held:
                    self._held = None
            raise DBAPIError.instance(
                None, None, exc, driver_error, connection_invalidated=lost
            ) from exc
        finally:
            cursor.close()


def _pragma(conn: Connection, setting: str) -> None:
    # On the driver: through SQLAlchemy it would open a transaction (BEGIN IMMEDIATE).
    conn.connection.dbapi_connection.execute(f"PRAGMA {setting}")  # type: ignore[union-attr]


def _begin_immediate(cursor: Any, *, nowait: bool) -> None:
    try:
        cursor.execute("BEGIN IMMEDIATE")
    except Exception as exc:
        # WAL: BEGIN IMMEDIATE is the only statement of ours that can meet another writer.
        if nowait and ("locked" in str(exc) or "busy" in str(exc)):
            raise Busy(str(exc)) from None
        raise


def _roll_back(dbapi: Any, *, postgres: bool) -> None:
    # A failed COMMIT may already have ended the transaction, or the connection.
    try:
        if postgres or dbapi.in_transaction:
            dbapi.rollback()
    except Exception:
        pass  # the connection is gone: there is nothing left to roll back


def _unchanged(value: Any) -> Any:
    return value
