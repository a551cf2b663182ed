"""Complaint feedback reports: ARF, RFC 5965 (``multipart/report;
report-type=feedback-report``), as mailbox providers' feedback loops send them (Yahoo,
Microsoft JMRP, AOL, Comcast...).

The ``message/feedback-report`` part says what kind of feedback it is; the third part,
the original message or its headers, carries our clues (the delivery header, the VERP
Return-Path, the Message-ID). Providers often redact the recipient; Microsoft gives it in
``X-HmXmrOriginalRecipient``.
"""

from __future__ import annotations

from email.message import Message
from email.parser import HeaderParser

from network_anim.bounces import clues
from network_anim.bounces.dsn import Outcome
from network_anim.bounces.events import DeliveryRef, FeedbackEvent, FeedbackKind
from network_anim.bounces.unreadable import UnreadableReport

SOURCE = "arf"

# Feedback-Type (RFC 5965 section 7.3 registry) -> kind; None: no event.
FEEDBACK_TYPES: dict[str, FeedbackKind | None] = {
    "abuse": FeedbackKind.COMPLAINT,  # "this is spam"
    "fraud": FeedbackKind.COMPLAINT,  # phishing, as the recipient sees it
    "virus": FeedbackKind.COMPLAINT,
    "other": FeedbackKind.COMPLAINT,
    "not-spam": None,  # the opposite: a message wrongly filtered was rescued
    "auth-failure": None,  # an SPF/DKIM/DMARC failure report, no one complained
}
# A type not in the registry counts as "other" (RFC 5965 section 3.1).
UNKNOWN_TYPE = FeedbackKind.COMPLAINT

# Headers of the original that name its recipient, strongest first.
RECIPIENT_HEADERS = ("X-HmXmrOriginalRecipient", "X-Original-To", "To")


def feedback_part(report: Message) -> Message | None:
    for part in report.walk():
        if part.get_content_type() == "message/feedback-report":
            return part
    return None


def _fields(part: Message) -> Message:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    return HeaderParser().parsestr(clues.decoded_text(part))


def _recipient(fields: Message, original: Message | None) -> str | None:
    candidates = [str(fields.get("Original-Rcpt-To", ""))]
    if original is not None:
        candidates += [str(original.get(name, "")) for name in RECIPIENT_HEADERS]
    for value in candidates:
        addr = clues.address_of(value) if value.strip() else None
        # Redacted by the loop ("redacted@", "xxxxx@"): no clue, not a wrong one.
        if addr and "redacted" not in addr and not addr.startswith("xxx"):
            return addr
    return None


def read_arf(report: Message, raw: bytes, *, verp_local_part: str) -> Outcome:
    part = feedback_part(report)
    if part is None:
        raise UnreadableReport("feedback report without a message/feedback-report part")
    fields = _fields(part)
    feedback_type = " ".join(str(fields.get("Feedback-Type", "")).split()).lower()
    if not feedback_type:
        raise UnreadableReport("feedback report without a Feedback-Type")
    kind = FEEDBACK_TYPES.get(feedback_type, UNKNOWN_TYPE)
    if kind is None:
        return Outcome([], f"feedback report of type {feedback_type}: no complaint")
    original = clues.original_part(report)
    mail_from = clues.address_of(str(fields.get("Original-Mail-From", "")), lower=False)
    token = (
        clues.original_token(original, verp_local_part)
        or (clues.verp_token(mail_from, verp_local_part) if mail_from else None)
        or clues.envelope_token(report, verp_local_part)
    )
    original_id = clues.message_id(str(original.get("Message-ID", ""))) if original else None
    recipient = _recipient(fields, original)
    if not (token or original_id or recipient):
        raise UnreadableReport("feedback report with no clue to the original (no original part)")
    when = clues.parse_date(str(fields.get("Arrival-Date", fields.get("Received-Date", ""))))
    event = FeedbackEvent(
        kind=kind,
        source=SOURCE,
        key=clues.event_key(SOURCE, clues.report_identity(report, raw), recipient, feedback_type),
        ref=DeliveryRef(token=token, message_id=original_id, recipient=recipient),
        occurred_at=when or clues.parse_date(str(report.get("Date", ""))),
        status=feedback_type,
        diagnostic=" ".join(str(fields.get("User-Agent", "")).split())[:200],
    )
    return Outcome([event], f"feedback report ({feedback_type})")


__all__ = ["FEEDBACK_TYPES", "read_arf"]
