"""From a source to applied feedback: the report files, the bounce mailbox.

Every source reads its input into events (``reports``, ``providers``) and hands them to
``apply.apply_feedback``, idempotent per event key: a report read twice, from the mailbox
and from a file, changes nothing the second time.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from network_anim.app import App
from network_anim.bounces.apply import FeedbackStats, apply_feedback
from network_anim.bounces.events import FeedbackEvent
from network_anim.bounces.mailbox import MailboxStats, poll_mailbox
from network_anim.bounces.reports import classify
from network_anim.bounces.unreadable import UnreadableReport

log = logging.getLogger("netanim.bounces")


@dataclass
class FileReading:
    path: Path
    events: list[FeedbackEvent] = field(default_factory=list)
    note: str = ""
    unreadable: str | None = None  # the reason, when the file could not be read


def read_files(app: App, paths: list[Path]) -> list[FileReading]:
    """Each file read into events (nothing applied yet); unreadable ones say why."""
    local = app.config.bounces.verp_local_part
    readings = []
    for path in paths:
        try:
            outcome = classify(path.read_bytes(), verp_local_part=local)
        except UnreadableReport as exc:
            readings.append(FileReading(path, unreadable=exc.reason))
        except OSError as exc:
            readings.append(FileReading(path, unreadable=f"cannot read the file: {exc.strerror}"))
        else:
            readings.append(FileReading(path, outcome.events, outcome.note))
    return readings


def apply_files(app: App, readings: list[FileReading]) -> FeedbackStats:
    """The events of every readable file, applied in one transaction."""
    return apply_feedback(app, [e for r in readings if r.unreadable is None for e in r.events])


@dataclass
class MailboxRound:
    mailbox: MailboxStats
    feedback: FeedbackStats


def _add(total: FeedbackStats, part: FeedbackStats) -> None:
    for name, value in vars(part).items():
        current = getattr(total, name)
        if isinstance(value, int):
            setattr(total, name, current + value)
        else:
            current.update(value)  # the Counters


def poll_bounce_mailbox(
    app: App,
    *,
    environ: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> MailboxRound:
    """Read the bounce mailbox once: each message applied in its own transaction, then
    filed (processed or unreadable). Raises MailboxUnavailable when the server is down."""
    settings = app.config.bounces
    total = FeedbackStats()

    def handle(raw: bytes) -> None:
        outcome = classify(raw, verp_local_part=settings.verp_local_part)
        if outcome.events:
            _add(total, apply_feedback(app, outcome.events))
        else:
            log.info("bounce mailbox: %s", outcome.note)

    stats = poll_mailbox(settings.mailbox, handle, environ=environ, ssl_context=ssl_context)
    return MailboxRound(stats, total)


__all__ = ["FileReading", "MailboxRound", "apply_files", "poll_bounce_mailbox", "read_files"]
