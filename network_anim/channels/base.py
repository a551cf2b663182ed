"""The one contract every channel adapter follows.

An adapter is split in two (DESIGN.md §2): a pure part that builds the provider payload
and parses the provider's answer into an :class:`SendResult`, and a transport that makes
the single network (or file, or database) call. Transports are passed in, so tests inject
real local peers instead of patching modules.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self

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


class Transport(Protocol):
    """Sends batches of outbound messages on one channel.

    Used as an async context manager so a transport can keep its connections (one SMTP
    session per worker, one keep-alive HTTP pool) open across batches.
    Results come back in the order of ``items``; a transport never raises for a
    per-message failure, it returns a result saying what happened.
    """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def send_batch(self, items: Sequence[Outbound]) -> list[SendResult]: ...


class TransportBase:
    """The async context-manager plumbing every transport shares.

    ``open`` acquires what the transport keeps for its life (connections, files,
    folders); ``aclose`` releases it. Subclasses override either or both.
    """

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
