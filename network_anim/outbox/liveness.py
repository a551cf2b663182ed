"""Liveness of senders: every process that claims outbox rows holds a lock for its life
(an advisory lock on PostgreSQL, a flock beside SQLite), released by the kernel or the
server when it dies, SIGKILL included. A claimed row whose owner's lock can be taken
belongs to a dead sender and is taken back at once."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from pathlib import Path
from typing import IO
from urllib.parse import quote

import psycopg
from sqlalchemy import Engine

from network_anim.db.engine import sqlite_file


def _owner_key(worker: str) -> int:
    return int.from_bytes(
        hashlib.sha256(b"network-anim:worker:" + worker.encode()).digest()[:8], "big", signed=True
    )


class PostgresLiveness:
    """Each daemon holds an advisory lock named after its worker id for its whole life.

    A claimed row whose owner's lock can be taken belongs to a dead daemon: its rows are
    taken back at once, without waiting for the lease to run out.
    """

    def __init__(self, engine: Engine, worker: str) -> None:
        self._dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._worker = worker
        self._conn: psycopg.Connection | None = None

    def start(self) -> None:
        self._conn = psycopg.connect(self._dsn, autocommit=True)
        self._conn.execute("SELECT pg_advisory_lock(%s)", (_owner_key(self._worker),))

    def dead(self, owners: set[str]) -> set[str]:
        if self._conn is None:
            return set()
        gone = set()
        for owner in owners - {self._worker}:
            key = _owner_key(owner)
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if row and row[0]:
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                gone.add(owner)
        return gone

    def stop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # Released here, not by the server once it notices the closed socket (a few ms
            # later): a daemon asking right after a clean stop must see it stopped.
            with contextlib.suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock_all()")
            with contextlib.suppress(psycopg.Error):
                conn.close()


class SqliteLiveness:
    """Each sender on a SQLite file (the daemon, a ``netanim broadcast`` or ``dispatch``
    running beside it) holds an exclusive ``flock`` on a file named after its worker id,
    in ``<database>-workers/``, for as long as it may claim rows. The OS releases it when
    the process dies, SIGKILL included. An owner whose file nobody holds (or that has no
    file) is dead: its rows are taken back at once. (Until 2026-11 any owner other than
    the daemon counted as dead, so the daemon took back, and sent again, the rows a
    broadcast was sending at the same time.)"""

    def __init__(self, database: Path, worker: str) -> None:
        self._folder = database.with_name(database.name + "-workers")
        self._worker = worker
        self._handle: IO[bytes] | None = None

    def start(self) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        handle = open(self._path(self._worker), "ab")  # noqa: SIM115 (held while claiming)
        fcntl.flock(handle, fcntl.LOCK_EX)  # blocks only while another checks us
        self._handle = handle

    def dead(self, owners: set[str]) -> set[str]:
        gone = set()
        for owner in owners - {self._worker}:
            try:
                handle = open(self._path(owner), "rb")  # noqa: SIM115
            except FileNotFoundError:
                gone.add(owner)  # never registered, or stopped cleanly
                continue
            with handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # alive
                gone.add(owner)
                self._path(owner).unlink(missing_ok=True)  # still ours: nobody can race
        return gone

    def stop(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            self._path(self._worker).unlink(missing_ok=True)
            handle.close()

    def _path(self, worker: str) -> Path:
        return self._folder / (quote(worker, safe="") + ".alive")


class SoleProcessLiveness:
    """An in-memory SQLite database: no other process can claim its rows."""

    def start(self) -> None:
        return None

    def dead(self, owners: set[str]) -> set[str]:
        return set()

    def stop(self) -> None:
        return None


Liveness = PostgresLiveness | SqliteLiveness | SoleProcessLiveness


def liveness_for(engine: Engine, worker: str) -> Liveness:
    """The liveness every sender (daemon or CLI) holds while it may claim rows, so that
    the others take its rows back only once it is dead."""
    if engine.dialect.name == "postgresql":
        return PostgresLiveness(engine, worker)
    database = sqlite_file(engine)
    return SoleProcessLiveness() if database is None else SqliteLiveness(database, worker)
