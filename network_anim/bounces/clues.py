"""What a report received by email carries that leads back to our delivery.

Three clues, strongest first (``DeliveryRef``): the signed token of the VERP envelope
address the report was sent to (``bounces+<token>@domain``) or of the ``X-Netanim-Delivery``
header of the returned original, the original's ``Message-ID``, and the recipient. They are
read as found, never verified here: ``apply`` checks the token's signature.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

# The header the sender puts on every email (the effects side writes it, signed).
DELIVERY_HEADER = "X-Netanim-Delivery"
# Where the receiving MTA writes the envelope address a report was delivered to.
ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
# An original's own headers that name the envelope sender it was sent with.
ORIGINAL_SENDER_HEADERS = ("Return-Path", "X-Original-Return-Path")

ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_MESSAGE_ID = re.compile(r"<[^<>\s]+@[^<>\s]+>")


def header_text(message: Message, name: str) -> str:
    """A header decoded (RFC 2047) and unfolded; "" when absent or undecodable."""
    value = message.get(name)
    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(str(value))))
    except (UnicodeError, LookupError, ValueError, TypeError):
        text = str(value)  # an unknown charset: the raw words still say something
    return " ".join(text.split())


def addresses(message: Message, name: str) -> list[str]:
    """The addresses of a header, lower-cased."""
    values = [str(v) for v in message.get_all(name, [])]
    return [addr.lower() for _, addr in getaddresses(values) if "@" in addr]


def address_of(value: str, *, lower: bool = True) -> str | None:
    """One address out of ``rfc822; <Jo@Example.com>``, ``<jo@example.com>`` or a name-addr;
    lower-cased unless ``lower`` is False (a VERP token is case-sensitive)."""
    value = value.strip()
    if ";" in value:
        value = value.split(";", 1)[1]
    _, addr = parseaddr(value.strip())
    if "@" not in addr:
        match = ADDRESS.search(value)
        addr = match.group(0) if match else ""
    addr = addr.strip()
    return (addr.lower() if lower else addr) or None


def verp_token(address: str, local_part: str) -> str | None:
    """The token of ``<local_part>+<token>@domain``; None for any other address."""
    local, at, _ = address.rpartition("@")
    if not at:
        return None
    prefix = f"{local_part}+".lower()
    # The token is case-sensitive (base64url); only the fixed local part is compared
    # without case, as some MTAs lower-case what they do not own.
    if local.lower().startswith(prefix) and len(local) > len(prefix):
        return local[len(prefix) :]
    return None


def envelope_token(message: Message, local_part: str) -> str | None:
    """The VERP token of the address the report was delivered to."""
    for name in ENVELOPE_HEADERS:
        for value in message.get_all(name, []):
            for _, addr in getaddresses([str(value)]):
                token = verp_token(addr, local_part)
                if token:
                    return token
    return None


def original_token(original: Message | None, local_part: str) -> str | None:
    """The token of the returned original: its delivery header, else its Return-Path."""
    if original is None:
        return None
    header = header_text(original, DELIVERY_HEADER)
    if header:
        return header
    for name in ORIGINAL_SENDER_HEADERS:
        addr = address_of(str(original.get(name, "")), lower=False)
        token = verp_token(addr, local_part) if addr else None
        if token:
            return token
    return None


def message_id(value: str) -> str | None:
    """The first ``<id@host>`` of a header value."""
    match = _MESSAGE_ID.search(value or "")
    return match.group(0) if match else None


def original_part(report: Message) -> Message | None:
    """The returned original: a message/rfc822 part (whole message) or a
    text/rfc822-headers part (headers only), as a Message; None when there is neither."""
    for part in report.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/rfc822-headers"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
            if isinstance(payload, str):
                return HeaderParser().parsestr(payload)
        if ctype == "text/rfc822-headers":
            return HeaderParser().parsestr(decoded_text(part))
    return None


def quoted_headers(text: str) -> Message | None:
    """The original's headers quoted in a plain-text bounce (qmail, Exim, Yahoo copy the
    message below a marker line), found from its first header-looking line."""
    match = re.search(r"^(?:Return-Path|Received|Message-I[dD]|From|To|Subject|Date):", text, re.M)
    if match is None:
        return None
    return HeaderParser().parsestr(text[match.start() :])


def decoded_text(part: Message) -> str:
    """A leaf part's text, transfer-decoded, in its charset (replacing what does not fit)."""
    payload = part.get_payload(decode=True)
    if payload is None:
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def parse_date(value: str) -> datetime | None:
    """An RFC 5322 date as UTC; None when absent or unreadable."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": the sender did not know its zone; UTC is the rule
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def event_key(source: str, report_id: str, recipient: str | None, status: str) -> str:
    """The idempotency key: the same report read twice gives the same key."""
    text = "\n".join([source, report_id, recipient or "", status])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def report_identity(report: Message, raw: bytes) -> str:
    """The report's own Message-ID, else a hash of its bytes (a report without one)."""
    found = message_id(str(report.get("Message-ID", "")))
    if found:
        return found
    # Line ends normalized: the same report saved as a file (LF) and fetched over IMAP
    # (CRLF) is one report.
    canonical = raw.replace(b"\r\n", b"\n").rstrip()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


__all__ = [
    "ADDRESS",
    "DELIVERY_HEADER",
    "address_of",
    "addresses",
    "decoded_text",
    "envelope_token",
    "event_key",
    "header_text",
    "message_id",
    "original_part",
    "original_token",
    "parse_date",
    "quoted_headers",
    "report_identity",
    "verp_token",
]
