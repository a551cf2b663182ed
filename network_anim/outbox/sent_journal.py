"""The sent journal: accepted messages noted in a local file before their commit.

The SMTP transport lets at most ``max_unrecorded`` accepted messages wait for their
recording (a crash resends at most that many). Committing each result on its own kept
that bound at 1 but cost half the throughput. On SQLite the database is a file on this
host, written with ``synchronous = NORMAL``: a commit survives the process, not the
machine. One ``write()`` to an append-only file on the same disk gives the same promise
for a few microseconds: once a result is noted here it counts as recorded, its permit is
freed at once, and the database gets the results in group commits.

After a crash, :meth:`Reclaimer.reclaim_expired` replays the dead worker's journal
(each line marks its row ``sent`` if the row is still the dead worker's claim) before it
puts the rest back to pending. Replaying is idempotent: a line whose row was already
recorded, or taken over, changes nothing. A torn last line (a kill during the write) was
never noted: its message is the one resend the permit allows.

PostgreSQL has no journal: several daemons on several hosts share its outbox, and a
journal on one host's disk is invisible to the others that take its rows back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, unquote

from sqlalchemy import Engine

from network_anim.channels.contract import SendResult
from network_anim.db.engine import sqlite_file

_SUFFIX = ".sent"


@dataclass(frozen=True, slots=True)
class NotedSend:
    delivery_id: int
    at: datetime
    result: SendResult


def journal_folder(engine: Engine) -> Path | None:
    """Where a SQLite database's journals live (beside its file); None where there is
    no journal (PostgreSQL, in-memory SQLite)."""
    path = sqlite_file(engine)
    return None if path is None else path.with_name(path.name + "-sent-journal")


class SentJournal:
    """One worker's journal. Writers (one per batch being sent) enter and leave it; when
    the last one leaves and every writer committed what it noted, the file is emptied.
    A writer whose recording failed leaves the journal ``dirty``: its notes stay until
    the dispatcher has recorded them (:meth:`clear` then)."""

    def __init__(self, folder: Path, owner: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = _path(folder, owner)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._writers = 0
        self.dirty = False

    def note(self, delivery_id: int, at: datetime, result: SendResult) -> None:
        """Append one accepted message: one ``write()``, durable once it returns (the
        kernel has it, whatever happens to this process)."""
        line = [delivery_id, at.isoformat(), result.provider_id, result.detail[:500], result.cost]
        os.write(self._fd, (json.dumps(line, ensure_ascii=False) + "\n").encode())

    def enter(self) -> None:
        self._writers += 1

    def leave(self, committed: bool) -> None:
        """A writer is done; ``committed``: everything it noted is in the database."""
        self._writers -= 1
        self.dirty = self.dirty or not committed
        if self.idle and not self.dirty:
            os.ftruncate(self._fd, 0)

    @property
    def idle(self) -> bool:
        return self._writers == 0

    def clear(self) -> None:
        """Everything noted is in the database (replayed after a failure)."""
        os.ftruncate(self._fd, 0)
        self.dirty = False

    def close(self) -> None:
        empty = os.fstat(self._fd).st_size == 0
        os.close(self._fd)
        if empty:
            self.path.unlink(missing_ok=True)


def owners(folder: Path) -> set[str]:
    """Workers that left a journal in ``folder``."""
    if not folder.is_dir():
        return set()
    return {unquote(path.name[: -len(_SUFFIX)]) for path in folder.glob(f"*{_SUFFIX}")}


def read(folder: Path, owner: str) -> list[NotedSend]:
    """What ``owner`` noted; a line cut short by a crash is not a note."""
    try:
        data = _path(folder, owner).read_bytes()
    except FileNotFoundError:
        return []
    return list(_parse(data))


def discard(folder: Path, owner: str) -> None:
    _path(folder, owner).unlink(missing_ok=True)


def _parse(data: bytes) -> Iterator[NotedSend]:
    for raw in data.split(b"\n")[:-1]:  # the part after the last newline is torn
        delivery_id, at, provider_id, detail, cost = json.loads(raw)
        yield NotedSend(
            int(delivery_id),
            datetime.fromisoformat(at),
            SendResult.sent(provider_id=provider_id, detail=detail, cost=cost),
        )


def _path(folder: Path, owner: str) -> Path:
    # Worker ids hold ':' and may hold '/': quoting keeps the name reversible.
    return folder / (quote(owner, safe="") + _SUFFIX)
