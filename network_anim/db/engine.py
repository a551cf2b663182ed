"""Engine creation for SQLite (embedded default) and PostgreSQL (shared by several daemons)."""

from __future__ import annotations

import atexit
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from network_anim.errors import UserError

# How long a SQLite writer waits for another one before "database is locked".
BUSY_TIMEOUT_MS = 30_000
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


@atexit.register
def _close_engines() -> None:
    """Close every engine's pooled connections as the process ends. SQLite moves its
    write-ahead log into the database file when the last connection closes; connections
    left for the garbage collector (which the CLI skips at exit) would leave the log
    beside it: nothing lost, but a copy of the .db file alone would miss its changes."""
    for engine in list(_ENGINES):
        engine.dispose()


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3, the driver we install."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UserError(
            f"database URL {url!r} is not valid",
            ["use sqlite:///path/to/file.db or postgresql://user@host:5432/dbname"],
        ) from None
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000}, **kwargs)
        _tune_sqlite(engine)
        _ENGINES.add(engine)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise UserError(
            f"database {parsed.get_backend_name()!r} is not supported: use SQLite or PostgreSQL"
        )
    engine = create_engine(url, pool_pre_ping=True, **kwargs)
    _ENGINES.add(engine)
    return engine


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # WAL lets readers (portal, reports) work while the dispatcher writes; the busy
        # timeout makes a second writer wait instead of failing at once.
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, see _on_begin
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # BEGIN IMMEDIATE takes the write lock up front: a claim can never be upgraded
        # to a writer half-way and fail with "database is locked".
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def sqlite_file(engine: Engine) -> Path | None:
    """The SQLite database's file (what lives beside it goes beside it); None on
    PostgreSQL and for an in-memory database."""
    database = engine.url.database
    if not is_sqlite(engine) or not database or database == ":memory:":
        return None
    return Path(database)


def ensure_sqlite_folder(engine: Engine) -> None:
    """``init`` may be the first command run: create the SQLite file's folder."""
    if (path := sqlite_file(engine)) is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
