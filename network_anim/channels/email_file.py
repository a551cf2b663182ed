"""Email written as ``.eml`` files: the credential-free default transport."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from network_anim.channels.contract import Outbound, SendResult, TransportBase
from network_anim.channels.email_mime import build_email, envelope_sender_of, key_hash
from network_anim.clock import Clock
from network_anim.domain import Outcome

__all__ = ["FileEmailTransport"]

_NO_ADDRESS = SendResult(Outcome.FAILED, detail="no email address")


class FileEmailTransport(TransportBase):
    """Writes each message as ``<hash of the idempotency key>.eml`` in ``directory``.

    The embedded default: runs with no credentials and lets a person open the result.
    A retry of the same outbox row overwrites its file instead of adding one, and each
    file appears whole (written aside, then renamed with ``os.replace``). Each message's
    ``Date:`` is the engine clock's time when it is written; its first line is the
    ``Return-Path:`` an SMTP send would use as MAIL FROM.
    """

    throttled = False  # a folder has no relay's pace to keep

    def __init__(
        self, directory: Path, *, sender: str, clock: Clock, reply_to: str | None = None
    ) -> None:
        self._directory = Path(directory)
        self._clock = clock
        self._sender = sender
        self._reply_to = reply_to

    @property
    def directory(self) -> Path:
        return self._directory

    def path_for(self, idempotency_key: str) -> Path:
        return self._directory / f"{key_hash(idempotency_key)[:32]}.eml"

    async def open(self) -> None:
        await asyncio.to_thread(self._directory.mkdir, parents=True, exist_ok=True)

    async def send_batch(self, items: Sequence[Outbound]) -> list[SendResult]:
        # One thread hop per batch: file writes block, the daemon's loop must not.
        return await asyncio.to_thread(self._write_all, list(items))

    def _write_all(self, items: list[Outbound]) -> list[SendResult]:
        self._directory.mkdir(parents=True, exist_ok=True)
        return [self._write_one(item) for item in items]

    def _write_one(self, item: Outbound) -> SendResult:
        if not item.recipient.email:
            return _NO_ADDRESS
        try:
            message = build_email(
                item,
                sender=self._sender,
                reply_to=self._reply_to,
                date=self._clock.now(),
                # What the receiving server would add: the envelope sender (VERP).
                return_path=envelope_sender_of(item, self._sender),
            )
        except ValueError as exc:
            return SendResult(Outcome.FAILED, detail=f"cannot build the message: {exc}")
        path = self.path_for(item.idempotency_key)
        try:
            _write_atomically(path, message)
        except OSError as exc:
            # Disk full, permissions: the folder's problem, not the recipient's.
            return SendResult(Outcome.DEFERRED, detail=f"cannot write {path}: {exc}")
        return SendResult.sent(provider_id=str(path), detail=f"written to {path}")


def _write_atomically(path: Path, data: bytes) -> None:
    # A unique temporary name in the same folder (same file system, so os.replace is an
    # atomic rename); "x" mode never follows or clobbers an existing file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
