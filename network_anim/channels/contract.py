"""The one contract every channel transport follows (DESIGN.md §2).

An adapter is split in two: a pure part that builds the provider payload and parses the
provider's answer into a :class:`SendResult`, and a transport that makes the single
network (or file, or database) call. Transports are passed in, so tests inject real local
peers (or :class:`~network_anim.channels.recording.RecordingTransport`) instead of
patching modules.

What the dispatcher needs to know of a transport is declared, never guessed:

``mode``
    :attr:`SendMode.BATCH`: ``send_batch(chunk)`` takes a chunk of ``concurrency`` items
    (all of them when ``None``) in one call: local writers (portal posts, letters, files).
    :attr:`SendMode.PACED`: one message per rate-limit token, ``concurrency`` requests in
    flight, each result recorded before its worker takes the next (HTTP APIs: Twilio).
    :attr:`SendMode.STREAM`: the transport pulls the messages itself through
    ``send_stream(items, on_result=, pace=)`` and reports each result as it comes (SMTP).
``concurrency``
    Sessions or requests in flight at most (``None``: one call per chunk).
``max_unrecorded``
    STREAM only: accepted messages whose result may wait for its recording at once, i.e.
    what a crash can make a restart send twice.
``throttled``
    Whether the channel's rate limit (``[channels.<name>] rate_per_second``, else its
    definition's ``rate``) paces this transport: a relay's or a provider's pace. Writers of
    local files and portal posts are not throttled: nothing downstream has a pace to keep.
``resend_safe``
    Whether sending a row twice is harmless (the target deduplicates by key, or a second
    copy is recognised as one): rows of a dead worker are then sent again instead of being
    marked ``unknown``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self

from network_anim.domain import Outcome


@dataclass(frozen=True, slots=True)
class Recipient:
    """What a transport needs to know about the person it reaches."""

    contact_id: int
    external_id: str
    display_name: str
    email: str | None = None
    phone: str | None = None
    # Postal address block, already ordered (NF Z10-011), one string per line.
    postal_lines: tuple[str, ...] = ()
    language: str = "fr"


@dataclass(frozen=True, slots=True)
class Outbound:
    """One rendered message for one recipient on one channel, taken from the outbox."""

    delivery_id: int
    idempotency_key: str
    channel: str
    recipient: Recipient
    # Rendered parts: subject/title, text body, html body (email), as the renderer made them.
    subject: str = ""
    text: str = ""
    html: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # Free data a channel may need (post level and expiry, letter reference...).
    extra: Mapping[str, Any] = field(default_factory=dict)
    message_id: int = 0  # the outbox row's message (recorded on its events)


@dataclass(frozen=True, slots=True)
class SendResult:
    """The normalized outcome of one send, whatever the provider."""

    outcome: Outcome
    detail: str = ""
    provider_id: str | None = None
    cost: float | None = None
    # For DEFERRED: seconds the provider asked us to wait, if it said so.
    retry_after: float | None = None

    @classmethod
    def sent(
        cls, provider_id: str | None = None, detail: str = "", cost: float | None = None
    ) -> Self:
        return cls(Outcome.SENT, detail=detail, provider_id=provider_id, cost=cost)


# Called with (index in the batch, result) as each message is answered; returns a future
# done once the result is durably recorded (a streaming transport keeps the message
# counted as "accepted but unrecorded" until then).
ResultCallback = Callable[[int, SendResult], "asyncio.Future[None]"]
# Awaited before each message is sent: the channel's rate limit.
Pace = Callable[[], Awaitable[None]]


class SendMode(StrEnum):
    BATCH = "batch"
    PACED = "paced"
    STREAM = "stream"


class Transport(Protocol):
    """Sends outbound messages on one channel (see the module docstring for the traits).

    Used as an async context manager so a transport can keep its connections (one SMTP
    session per worker, one keep-alive HTTP pool) open across batches. Results come back
    in the order of ``items``; a transport never raises for a per-message failure, it
    returns a result saying what happened.
    """

    mode: SendMode
    concurrency: int | None
    max_unrecorded: int
    throttled: bool
    resend_safe: bool

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def send_batch(self, items: Sequence[Outbound]) -> list[SendResult]: ...

    async def send_stream(
        self, items: Sequence[Outbound], *, on_result: ResultCallback, pace: Pace | None
    ) -> list[SendResult]: ...


class TransportBase:
    """Defaults for the traits, and the async context-manager plumbing.

    ``open`` acquires what the transport keeps for its life (connections, files,
    folders); ``aclose`` releases it. Subclasses override either or both, and declare
    the traits that differ from these defaults.
    """

    mode: SendMode = SendMode.BATCH
    concurrency: int | None = None
    max_unrecorded: int = 1
    throttled: bool = True
    resend_safe: bool = False

    # Transitional: channels/email.py predates this module and marks its SMTP transport
    # with ``streams_results = True`` and a ``send_batch(items, on_result=, pace=)``.
    # Once that module declares ``mode = SendMode.STREAM`` and ``send_stream``, delete
    # this hook (nothing else uses it).
    _LEGACY_STREAM: ClassVar[str] = "streams_results"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get(cls._LEGACY_STREAM) and "send_stream" not in cls.__dict__:
            cls.mode = SendMode.STREAM
            batch = cls.__dict__["send_batch"]

            async def send_stream(
                self: Any,
                items: Sequence[Outbound],
                *,
                on_result: ResultCallback,
                pace: Pace | None,
            ) -> list[SendResult]:
                return await batch(self, items, on_result=on_result, pace=pace)

            cls.send_stream = send_stream

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def send_batch(self, items: Sequence[Outbound]) -> list[SendResult]:
        raise NotImplementedError

    async def send_stream(
        self, items: Sequence[Outbound], *, on_result: ResultCallback, pace: Pace | None
    ) -> list[SendResult]:
        raise TypeError(f"{type(self).__name__} is a {self.mode} transport, not a stream")


__all__ = [
    "Outbound",
    "Pace",
    "Recipient",
    "ResultCallback",
    "SendMode",
    "SendResult",
    "Transport",
    "TransportBase",
]
