"""RFC 3464 delivery status notifications: ``multipart/report; report-type=delivery-status``.

The machine-readable part (``message/delivery-status``) holds one block of per-message
fields, then one block per recipient (Action, Status, Final-Recipient, Diagnostic-Code).
Only ``failed`` recipients are bounces; ``delayed`` is a warning that the relay still
tries (the message may yet arrive: no event), and ``delivered``/``relayed``/``expanded``
are successes.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

from network_anim.bounces import clues, statuses
from network_anim.bounces.events import DeliveryRef, FeedbackEvent
from network_anim.bounces.unreadable import UnreadableReport

SOURCE = "dsn"

# What each Action does (RFC 3464 section 2.3.3); None: no event.
ACTIONS: dict[str, str | None] = {
    "failed": "bounce",
    "delayed": None,  # a warning, the relay retries: a later DSN says failed or nothing
    "delivered": None,
    "relayed": None,  # passed to a system that sends no DSN: nothing to say yet
    "expanded": None,  # a list was expanded: delivered to its members
}


@dataclass(frozen=True, slots=True)
class Outcome:
    events: list[FeedbackEvent]
    note: str  # why there is no event, or what was read, for the operator


def status_part(report: Message) -> Message | None:
    for part in report.walk():
        if part.get_content_type() == "message/delivery-status":
            return part
    return None


def _blocks(part: Message) -> list[Message]:
    """The field blocks of a delivery-status part: the stdlib parser splits them; a part
    it could not split (sent as one text) is split here."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    chunks = [c for c in clues.decoded_text(part).replace("\r\n", "\n").split("\n\n")]
    return [HeaderParser().parsestr(c.strip() + "\n") for c in chunks if c.strip()]


def read_dsn(report: Message, raw: bytes, *, verp_local_part: str) -> Outcome:
    part = status_part(report)
    if part is None:
        raise UnreadableReport(
            "delivery-status report without a message/delivery-status part (truncated?)"
        )
    blocks = _blocks(part)
    per_message = blocks[0] if blocks else Message()
    recipients = [b for b in blocks if b.get("Final-Recipient") or b.get("Original-Recipient")]
    if not recipients:
        raise UnreadableReport("delivery-status part names no recipient (no Final-Recipient)")
    original = clues.original_part(report)
    token = clues.envelope_token(report, verp_local_part) or clues.original_token(
        original, verp_local_part
    )
    original_id = clues.message_id(str(original.get("Message-ID", ""))) if original else None
    report_id = clues.report_identity(report, raw)
    received = clues.parse_date(str(report.get("Date", "")))
    events: list[FeedbackEvent] = []
    actions: list[str] = []
    for block in recipients:
        action = " ".join(str(block.get("Action", "")).split()).lower()
        actions.append(action or "?")
        if ACTIONS.get(action, "bounce" if action == "" else None) is None:
            continue
        recipient = clues.address_of(str(block.get("Original-Recipient", ""))) or (
            clues.address_of(str(block.get("Final-Recipient", "")))
        )
        diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
        if ";" in diagnostic:
            diagnostic = diagnostic.split(";", 1)[1].strip()
        status = statuses.enhanced_in(str(block.get("Status", "")))
        status = (
            statuses.refine(status, diagnostic)
            if status
            else statuses.status_in(diagnostic) or "5.0.0"  # failed, with no word why
        )
        # When it failed: the last attempt, else when the report was written; the
        # original's arrival at the relay is the last resort.
        when = (
            clues.parse_date(str(block.get("Last-Attempt-Date", "")))
            or received
            or clues.parse_date(str(per_message.get("Arrival-Date", "")))
        )
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
    if events:
        return Outcome(events, f"delivery status notification: {len(events)} failed")
    return Outcome([], f"delivery status notification, action {', '.join(actions)}: no bounce")


__all__ = ["ACTIONS", "Outcome", "read_dsn", "status_part"]
