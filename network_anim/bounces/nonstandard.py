"""Bounces without a delivery-status part: the plain-text forms of real MTAs.

Exim ("This message was created automatically by mail delivery software"), qmail ("Hi.
This is the qmail-send program"), old Exchange ("did not reach some or all of the
intended recipients"), Lotus Domino, Yahoo, Sendmail without DSN: a bounce is known by
who sends it or its subject, and by the words of its text (``MARKERS``). Each failed
address is read from the human part (above the copy of the original), with the status
found in the words that follow it, through the tables of ``statuses``.
"""

from __future__ import annotations

import re
from email.message import Message

from network_anim.bounces import clues, statuses
from network_anim.bounces.dsn import Outcome
from network_anim.bounces.events import DeliveryRef, FeedbackEvent
from network_anim.bounces.unreadable import UnreadableReport

SOURCE = "dsn"  # the same thing as a DSN, in words: one source for both

# Who sends bounces (local parts of From), lower-case.
BOUNCE_SENDERS = ("mailer-daemon", "mailer_daemon", "mailerdaemon", "postmaster", "mail-daemon")

# Subjects of bounces, lower-case substrings.
BOUNCE_SUBJECTS = (
    "undeliverable",
    "undelivered mail",
    "mail delivery failed",
    "delivery status notification (failure)",
    "failure notice",
    "returned mail",
    "delivery failure",
    "delivery has failed",
    "delivery notification",
    "nondeliverable",
    "non remis",
    "unzustellbar",
    "non recapitabile",
    "mail system error",
)

# Words of the body that say "this is a bounce", by MTA, lower-case.
MARKERS: dict[str, tuple[str, ...]] = {
    "exim": ("this message was created automatically by mail delivery software",),
    "qmail": ("this is the qmail-send program",),
    "postfix": ("this is the mail system at host",),
    "sendmail": ("the original message was received at", "----- transcript of session follows"),
    "exchange": ("did not reach some or all of the intended recipients",),
    "office365": ("delivery has failed to these recipients or groups",),
    "gmail": ("address not found", "your message wasn't delivered to"),
    "yahoo": ("sorry, we were unable to deliver your message",),
    "domino": ("was not delivered to:",),
    "generic": (
        "could not be delivered",
        "permanent error",
        "delivery to the following recipient",
        "undeliverable",
        "user unknown",
    ),
}

# Where the copy of the original starts in the text: the failed addresses are above.
ORIGINAL_MARKERS = re.compile(
    r"^\s*(?:-+\s*)?(?:this is a copy of the message"
    r"|below this line is a copy of the message"
    r"|original message headers"
    r"|-+ ?original message ?-+"
    r"|the headers of your message"
    r"|\S*\s*unsent message below"
    r"|the original message)",
    re.I | re.M,
)


def _sender_is_daemon(report: Message) -> bool:
    sender = next(iter(clues.addresses(report, "From")), "")
    return sender.partition("@")[0] in BOUNCE_SENDERS


def _human_text(report: Message) -> str:
    """The bounce's own text: its text parts outside any returned original."""
    texts: list[str] = []
    html: list[str] = []
    stack = [report]
    while stack:
        part = stack.pop(0)
        ctype = part.get_content_type()
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                stack[:0] = [p for p in payload if isinstance(p, Message)]
            continue
        if ctype.startswith("message/") or ctype == "text/rfc822-headers":
            continue  # the original, not the bounce's words
        if ctype == "text/plain":
            texts.append(clues.decoded_text(part))
        elif ctype == "text/html":
            html.append(re.sub(r"<[^>]+>", " ", clues.decoded_text(part)))
    return "\n".join(texts or html)


def looks_like_bounce(report: Message) -> bool:
    subject = clues.header_text(report, "Subject").lower()
    text = _human_text(report).lower()
    says_so = any(m in text for markers in MARKERS.values() for m in markers)
    return says_so and (_sender_is_daemon(report) or any(s in subject for s in BOUNCE_SUBJECTS))


def _failed_addresses(human: str, report: Message, verp_local_part: str) -> list[tuple[str, int]]:
    """Each failed address with where it first appears in the bounce's words."""
    own = set(clues.addresses(report, "From")) | set(clues.addresses(report, "To"))
    own |= set(clues.addresses(report, "Delivered-To"))
    found: dict[str, int] = {}
    for match in clues.ADDRESS.finditer(human):
        addr = match.group(0).strip(".").lower()
        local = addr.partition("@")[0]
        if addr in own or local in BOUNCE_SENDERS or clues.verp_token(addr, verp_local_part):
            continue
        found.setdefault(addr, match.start())
    return sorted(found.items(), key=lambda item: item[1])


def read_plain_bounce(report: Message, raw: bytes, *, verp_local_part: str) -> Outcome:
    text = _human_text(report)
    cut = ORIGINAL_MARKERS.search(text)
    human, rest = (text[: cut.start()], text[cut.start() :]) if cut else (text, "")
    failed = _failed_addresses(human, report, verp_local_part)
    if not failed:
        raise UnreadableReport("bounce text names no failed address")
    original = clues.original_part(report) or clues.quoted_headers(rest)
    token = clues.envelope_token(report, verp_local_part) or clues.original_token(
        original, verp_local_part
    )
    original_id = clues.message_id(str(original.get("Message-ID", ""))) if original else None
    report_id = clues.report_identity(report, raw)
    when = clues.parse_date(str(report.get("Date", "")))
    events = []
    for index, (recipient, start) in enumerate(failed):
        end = failed[index + 1][1] if index + 1 < len(failed) else len(human)
        segment = human[start:end]
        # The words after the address say why; the bounce's preamble ("permanent
        # error") is the fallback, and a bounce that says nothing more is permanent.
        status = statuses.status_in(segment) or statuses.status_in(human) or "5.0.0"
        diagnostic = " ".join(segment[len(recipient) :].split()).strip(" :<>")
        events.append(
            FeedbackEvent(
                kind=statuses.kind_of(status),
                source=SOURCE,
                key=clues.event_key(SOURCE, report_id, recipient, status),
                ref=DeliveryRef(token=token, message_id=original_id, recipient=recipient),
                occurred_at=when,
                status=status,
                diagnostic=diagnostic[:500],
            )
        )
    return Outcome(events, f"plain-text bounce: {len(events)} failed")


__all__ = ["looks_like_bounce", "read_plain_bounce"]
