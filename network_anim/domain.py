"""Vocabulary shared by every layer: urgencies, message kinds, portal levels, statuses.

Plain string enums so they travel unchanged through TOML, CSV, SQL and JSON.
"""

from __future__ import annotations

from enum import StrEnum


class Urgency(StrEnum):
    """How fast and how loud a message must land (DESIGN.md §1, the channel table)."""

    FLASH = "flash"  # very urgent, short, perishable: on-screen flash post
    URGENT = "urgent"  # immediate: SMS in the pocket
    REMINDER = "reminder"  # the follow-up that points back to the portal: email
    IMPORTANT = "important"  # relationship and weight, lands on the desk: print
    INFO = "info"  # reference information: portal post plus an email alert


URGENT_LEVELS = frozenset({Urgency.FLASH, Urgency.URGENT})


class MessageKind(StrEnum):
    """Marketing messages are capped and windowed; operational ones never are."""

    MARKETING = "marketing"
    OPERATIONAL = "operational"


class Level(StrEnum):
    """Portal tier of a contact; a post of one level is visible to that level and above."""

    SELLER = "seller"
    CORRESPONDENT = "correspondent"
    DIRECTOR = "director"

    @property
    def rank(self) -> int:
        return _LEVEL_RANK[self]


_LEVEL_RANK = {Level.SELLER: 1, Level.CORRESPONDENT: 2, Level.DIRECTOR: 3}


class EmailKind(StrEnum):
    PERSONAL = "personal"
    SHARED = "shared"  # a generic mailbox read by several people: email loses relevance
    NONE = "none"


class LawfulBasis(StrEnum):
    """What a contact's row records for one channel (GDPR art. 6 basis, or an objection)."""

    CONSENT = "consent"
    LEGITIMATE_INTEREST = "legitimate_interest"
    OPTED_OUT = "opted_out"


SENDABLE_BASES = frozenset({LawfulBasis.CONSENT, LawfulBasis.LEGITIMATE_INTEREST})


class DeliveryStatus(StrEnum):
    """Life of one outbox row."""

    PENDING = "pending"  # waiting for its due_at
    CLAIMED = "claimed"  # taken by a dispatcher under a lease
    SENT = "sent"  # the provider accepted it
    FAILED = "failed"  # permanent failure on this channel (a fallback row may follow)
    UNKNOWN = "unknown"  # the provider may or may not have it: never resent automatically
    OPTED_OUT = "opted_out"  # the provider reports the recipient has opted out
    DEAD = "dead"  # transient failures exhausted the attempts
    CANCELLED = "cancelled"  # withdrawn by an operator
    # Accepted by the relay, then returned: a bounce report (DSN, provider webhook) came
    # back for it (bounces/apply.py); a hard bounce plans its fallback, a soft one a retry.
    BOUNCED = "bounced"


FINAL_STATUSES = frozenset(
    {
        DeliveryStatus.SENT,
        DeliveryStatus.FAILED,
        DeliveryStatus.UNKNOWN,
        DeliveryStatus.OPTED_OUT,
        DeliveryStatus.DEAD,
        DeliveryStatus.CANCELLED,
        DeliveryStatus.BOUNCED,
    }
)


class Outcome(StrEnum):
    """One normalized answer from any provider (django-anymail's habit)."""

    SENT = "sent"
    DEFERRED = "deferred"  # transient: retry later with backoff
    FAILED = "failed"  # permanent for this channel: try the router's next channel
    UNKNOWN = "unknown"  # sending is not idempotent here: do not resend by ourselves
    OPTED_OUT = "opted_out"  # recipient refused this channel: update consent


CHANNEL_NAMES = ("email", "sms", "intranet", "flash", "print", "whatsapp")

RFM_INACTIVE = "inactive"
# RFM segments, best to worst: the order of reports and of `netanim segment rfm`.
RFM_SEGMENTS: tuple[str, ...] = (
    "champions",
    "loyal",
    "potential",
    "new",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose",
    "hibernating",
    "lost",
    RFM_INACTIVE,
)

# Ledger entry kinds a challenge's points (leaderboards, audiences) add up.
RANKED_KINDS: tuple[str, ...] = ("earn", "bonus", "adjust")
