"""A transport that records every message and answers what it is told: for tests.

Ships with the package (django-anymail's test backend, httpx's mock transport) so that
users' own tests can run a dispatch end to end without a provider::

    from network_anim.channels.recording import RecordingTransport
    from network_anim.domain import Outcome

    sms = RecordingTransport(outcome=Outcome.FAILED, detail="HTTP 400: not a mobile")
    ... Dispatcher(app, {"sms": sms, "email": RecordingTransport()}, worker_id="t") ...
    assert [item.recipient.phone for item in sms.sent] == ["+33612345678"]

``answer`` decides per message (a function of the :class:`Outbound`) when one outcome
for all is not enough. Every call is kept: ``sent`` holds what the transport was given,
in order, whatever it answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from network_anim.channels.contract import Outbound, SendMode, SendResult, TransportBase
from network_anim.domain import Outcome


class RecordingTransport(TransportBase):
    def __init__(
        self,
        outcome: Outcome = Outcome.SENT,
        *,
        detail: str = "",
        answer: Callable[[Outbound], SendResult] | None = None,
        mode: SendMode = SendMode.BATCH,
        concurrency: int | None = None,
        resend_safe: bool = True,
        throttled: bool = True,
        delay: float = 0.0,
        keep: bool = True,
    ) -> None:
        if mode is SendMode.STREAM:
            raise ValueError("RecordingTransport answers at once: use BATCH or PACED")
        self.outcome = outcome
        self.detail = detail
        self.answer = answer
        self.mode = mode
        self.concurrency = concurrency
        self.resend_safe = resend_safe
        self.throttled = throttled  # False: as a file writer, the channel's rate is not kept
        self.delay = delay  # seconds each call takes (concurrency tests)
        self.keep = keep  # False: answer only (a dry run over months keeps no messages)
        self.sent: list[Outbound] = []
        self.opened = 0

    async def open(self) -> None:
        self.opened += 1

    async def send_batch(self, items: Sequence[Outbound]) -> list[SendResult]:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.keep:
            self.sent.extend(items)
        return [self._answer(item) for item in items]

    def _answer(self, item: Outbound) -> SendResult:
        if self.answer is not None:
            return self.answer(item)
        provider_id = f"recorded:{item.idempotency_key}"
        if self.outcome is Outcome.SENT:
            return SendResult.sent(provider_id=provider_id, detail=self.detail or "recorded")
        return SendResult(self.outcome, detail=self.detail or f"recorded as {self.outcome}")

    @property
    def keys(self) -> list[str]:
        """The idempotency keys of what it was given, in order."""
        return [item.idempotency_key for item in self.sent]


__all__ = ["RecordingTransport"]
