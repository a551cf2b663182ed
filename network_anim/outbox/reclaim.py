"""Taking back the rows of workers that stopped while sending.

A worker that dies leaves rows in ``claimed``. What its sent journal noted is recorded as
sent first (not resent); then rows of transports that may resend go back to ``pending``
(at least once), the others (SMS, letters: they cannot be taken back) become ``unknown``
for an operator.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import and_, func, or_, select, update

from network_anim.app import App
from network_anim.db.models import Delivery
from network_anim.domain import DeliveryStatus
from network_anim.outbox import sent_journal
from network_anim.outbox.sent_rows import SentRecorder


class Reclaimer:
    def __init__(
        self,
        app: App,
        sent_rows: SentRecorder,
        journal_folder: Path | None,
        *,
        resend_safe: Callable[[str], bool],
        dead_owners: Callable[[set[str]], set[str]],
    ) -> None:
        self.app = app
        self._sent_rows = sent_rows
        self._journal_folder = journal_folder
        self.resend_safe = resend_safe
        # Which lease owners are known dead (their liveness lock is free), for a quick reclaim.
        self.dead_owners = dead_owners

    def reclaim_expired(self) -> tuple[int, int]:
        """Take back rows of workers that died: those whose lease ran out, and at once
        those of owners that ``dead_owners`` knows to be gone. What their sent journals
        hold is recorded as sent first; then rows of transports that may resend go back
        to pending (at least once), the others become unknown. Returns (rows recorded
        from journals, rows taken back)."""
        now = self.app.clock.now()
        expired = and_(Delivery.status == DeliveryStatus.CLAIMED.value, Delivery.lease_until < now)  # type: ignore[operator]
        with self.app.engine.connect() as conn:
            # Each owner of claimed rows, with its oldest lease: lapsed if before now.
            leases = dict(
                conn.execute(
                    select(Delivery.lease_owner, func.min(Delivery.lease_until))
                    .where(Delivery.status == DeliveryStatus.CLAIMED.value)
                    .where(Delivery.lease_owner.is_not(None))  # type: ignore[union-attr]
                    .group_by(Delivery.lease_owner)
                ).all()
            )
        owners = set(leases)
        lapsed = {owner for owner, until in leases.items() if until is not None and until < now}
        journaled = set()
        if self._journal_folder is not None:
            journaled = sent_journal.owners(self._journal_folder)
        candidates = owners | journaled
        dead = self.dead_owners(candidates) if candidates else set()
        recovered = self.replay_journals(journaled & (dead | lapsed), dead)
        if dead:
            expired = or_(
                expired,
                and_(
                    Delivery.status == DeliveryStatus.CLAIMED.value,
                    Delivery.lease_owner.in_(sorted(dead)),  # type: ignore[union-attr]
                ),
            )
        safe = [ch for ch in self.app.definitions if self.resend_safe(ch)]
        with self.app.engine.begin() as conn:
            requeued = conn.execute(
                update(Delivery)
                .where(expired, Delivery.channel.in_(safe))  # type: ignore[attr-defined]
                .values(
                    status=DeliveryStatus.PENDING.value,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
            ).rowcount
            unknown = conn.execute(
                update(Delivery)
                .where(expired, Delivery.channel.not_in(safe))  # type: ignore[attr-defined]
                .values(
                    status=DeliveryStatus.UNKNOWN.value,
                    last_error="the worker stopped while sending: outcome unknown, check first",
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
            ).rowcount
        return recovered, int(requeued or 0) + int(unknown or 0)

    def replay_journals(self, owners: set[str], dead: set[str]) -> int:
        """Record what these workers noted as sent and did not commit (a journal of a
        worker that is only late is read, and kept)."""
        folder = self._journal_folder
        recovered = 0
        for owner in sorted(owners) if folder is not None else ():
            for noted in sent_journal.read(folder, owner):
                mine = self._sent_rows.record(
                    [(noted.delivery_id, noted.result)], noted.at, owner=owner
                )
                recovered += len(mine)
            if owner in dead:
                sent_journal.discard(folder, owner)
        return recovered
