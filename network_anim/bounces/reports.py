"""``read_report(raw)``: one message of the bounce mailbox (or a file) into events.

Which reader reads it, in order: a standard feedback report (ARF) or delivery status
notification (RFC 3464), then the plain-text bounces of MTAs without one, then
auto-replies (after bounces: Exim marks its bounces ``Auto-Submitted: auto-replied``),
then replies asking to unsubscribe. Anything else, or anything broken, is an
:class:`UnreadableReport` the caller logs and skips.
"""

from __future__ import annotations

from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

from network_anim.bounces import arf, autoreply, dsn, nonstandard
from network_anim.bounces.dsn import Outcome
from network_anim.bounces.events import FeedbackEvent
from network_anim.bounces.unreadable import UnreadableReport

# Larger than any report a mailbox should hold (a DSN with a full original attachment
# stays well under): beyond, it is not a report but a mistake.
MAX_REPORT_BYTES = 25 * 1024 * 1024


def parse_message(raw: bytes) -> Message:
    """The message, or UnreadableReport when the bytes are not an RFC 5322 message."""
    if not isinstance(raw, bytes | bytearray) or not raw.strip():
        raise UnreadableReport("empty input: not a message")
    if len(raw) > MAX_REPORT_BYTES:
        raise UnreadableReport(f"{len(raw)} bytes: too large for a report")
    head = raw[:8192].split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    if b"\x00" in head:
        raise UnreadableReport("binary data, not a message")
    # compat32: the stdlib's tolerant parser, which records defects instead of raising.
    message = BytesParser(policy=compat32).parsebytes(bytes(raw))
    if not message.keys() or not (message.get("From") or message.get("Content-Type")):
        raise UnreadableReport("no message header (no From, no Content-Type)")
    return message


def classify(raw: bytes, *, verp_local_part: str = "bounces") -> Outcome:
    """The events of one report and a note saying what it was (why none, when none)."""
    message = parse_message(raw)
    ctype = message.get_content_type()
    report_type = str(message.get_param("report-type", "") or "").lower()
    try:
        if report_type == "feedback-report" or arf.feedback_part(message) is not None:
            return arf.read_arf(message, raw, verp_local_part=verp_local_part)
        if report_type == "delivery-status" or dsn.status_part(message) is not None:
            return dsn.read_dsn(message, raw, verp_local_part=verp_local_part)
        if ctype == "multipart/report":
            raise UnreadableReport(f"multipart/report of unknown type {report_type or '(none)'}")
        if nonstandard.looks_like_bounce(message):
            return nonstandard.read_plain_bounce(message, raw, verp_local_part=verp_local_part)
        if autoreply.is_auto_reply(message):
            return autoreply.read_auto_reply(message, raw, verp_local_part=verp_local_part)
        if autoreply.is_unsubscribe(message):
            return autoreply.read_unsubscribe(message, raw, verp_local_part=verp_local_part)
    except UnreadableReport:
        raise
    except (LookupError, ValueError, TypeError, AttributeError, IndexError) as exc:
        # The stdlib's parser is tolerant, but odd structures can still trip a reader:
        # the report is unreadable, the caller goes on.
        raise UnreadableReport(f"malformed message ({type(exc).__name__}: {exc})") from exc
    raise UnreadableReport("not a delivery report, complaint, auto-reply or unsubscribe request")


def read_report(raw: bytes, *, verp_local_part: str = "bounces") -> list[FeedbackEvent]:
    """The feedback events of one RFC 5322 message as received in the bounce mailbox.

    ``[]`` for a report that is no bounce (a delay warning, a success notice, a
    not-spam report); :class:`UnreadableReport` for malformed or unknown input.
    """
    return classify(raw, verp_local_part=verp_local_part).events


__all__ = ["UnreadableReport", "classify", "parse_message", "read_report"]
