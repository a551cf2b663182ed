"""The one shape every bounce source is read into: a normalized feedback event.

Each source (a DSN or an ARF report read from a mailbox or a file, a provider's webhook)
maps its own vocabulary onto these kinds with a plain table of its own; what a kind does
to a delivery and a contact is decided in one place (``network_anim.bounces.apply``), the
same whatever the source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class FeedbackKind(StrEnum):
    HARD_BOUNCE = "hard_bounce"  # the address does not exist or refuses us for good
    SOFT_BOUNCE = "soft_bounce"  # mailbox full, greylisted, relay down: may work later
    COMPLAINT = "complaint"  # the recipient marked the email as spam (ARF, provider)
    AUTO_REPLY = "auto_reply"  # out of office and the like: not a bounce, recorded only
    UNSUBSCRIBE = "unsubscribe"  # a request to stop (provider event, mailto: reply)


@dataclass(frozen=True, slots=True)
class DeliveryRef:
    """What a report carries that leads back to our delivery, strongest first.

    ``token``: the signed delivery token of the VERP envelope sender
    (``bounces+<token>@domain``) or of the delivery header, unverified as read;
    ``message_id``: the original message's Message-ID (``<...@...>``), as read;
    ``recipient``: the address the report is about (lower-cased), the weakest clue.
    """

    token: str | None = None
    message_id: str | None = None
    recipient: str | None = None


@dataclass(frozen=True, slots=True)
class FeedbackEvent:
    kind: FeedbackKind
    source: str  # "dsn", "arf", "ses", "postmark", "sendgrid", ...
    # Identity of this report for idempotency: the same report read twice (the same DSN
    # in the mailbox and in a file, a webhook retried) gives the same key, so it counts
    # once. Built from the source and the report's own identifiers, never from the time
    # it was read.
    key: str
    ref: DeliveryRef
    occurred_at: datetime | None = None  # when the report says it happened (UTC), if it does
    status: str = ""  # enhanced status code (5.1.1) or the provider's bounce type
    diagnostic: str = ""  # the remote server's or provider's words, for the operator


__all__ = ["DeliveryRef", "FeedbackEvent", "FeedbackKind"]
