"""Who may run: one daemon per SQLite file, one scheduler per PostgreSQL database."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path
from typing import IO

import psycopg
from sqlalchemy import Engine

from network_anim.errors import UserError

# One advisory lock key for the scheduler role, stable across versions and processes.
SCHEDULER_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"network-anim:scheduler").digest()[:8], "big", signed=True
)


class SqliteInstanceLock:
    """An exclusive lock on a file next to the database: a second daemon refuses to start.

    SQLite has one writer at a time; two daemons on one file would fight for it and
    both schedule every campaign. The OS releases the lock when the process dies, even
    by SIGKILL, so a crash never leaves a stale lock behind.
    """

    def __init__(self, database_path: Path) -> None:
        self.path = database_path.with_name(database_path.name + ".daemon.lock")
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held for the daemon's life)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise UserError(
                f"another netanim daemon (pid {holder}) is already running on this SQLite database",
                [
                    "stop it first (it reloads its config on SIGHUP: netanim reload)",
                    "several daemons need PostgreSQL ([engine] database or --db)",
                ],
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


class SchedulerRole:
    """The scheduler role on PostgreSQL: a session advisory lock held on a connection of
    its own (outside the pool, which would hand it to other work or recycle it).

    The holder checks each tick that its connection is still alive; when a holder dies
    its session ends and PostgreSQL frees the lock for the next daemon that asks.
    """

    def __init__(self, engine: Engine, *, connect_timeout: float = 5.0) -> None:
        url = engine.url.set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._timeout = connect_timeout
        self._conn: psycopg.Connection | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    def try_acquire(self) -> bool:
        if self._conn is not None:
            return self.still_held()
        try:
            conn = psycopg.connect(
                self._dsn, autocommit=True, connect_timeout=int(max(1, self._timeout))
            )
        except psycopg.OperationalError:
            return False
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (SCHEDULER_LOCK_KEY,)).fetchone()
        if row and row[0]:
            self._conn = conn
            return True
        conn.close()
        return False

    def still_held(self) -> bool:
        """False if the lock's connection broke: the role may already be someone else's."""
        if self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error:
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEDULER_LOCK_KEY,))
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()


class SqliteRole:
    """On SQLite the one daemon (see SqliteInstanceLock) always holds the scheduler role."""

    held = True

    def try_acquire(self) -> bool:
        return True

    def still_held(self) -> bool:
        return True

    def release(self) -> None:
        return None
