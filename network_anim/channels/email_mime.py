"""Email messages: an :class:`Outbound` to RFC 5322 wire bytes, with no I/O.

The pure part of the email channel (DESIGN.md §2): :func:`build_email` and the
deterministic :func:`message_id_for`. The transports that send or write these bytes are
:mod:`network_anim.channels.email_smtp` and :mod:`network_anim.channels.email_file`.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from datetime import datetime
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache

from network_anim.channels.contract import Outbound

__all__ = [
    "RETURN_PATH",
    "ascii_address",
    "build_email",
    "envelope_sender_of",
    "key_hash",
    "message_id_for",
    "message_key_hash",
]

# The key of an Outbound's ``extra`` holding its envelope sender (compose/bounce_token.py
# writes it when the row is planned; the VERP address carries the delivery's token).
ENVELOPE_EXTRA = "envelope_sender"
RETURN_PATH = "Return-Path"

# Headers the builder owns: letting the planner's ``headers`` mapping override them would
# break the MIME structure or the deterministic Message-ID.
_RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        # The envelope sender is the transport's (MAIL FROM, or the file's first line).
        "return-path",
    }
)
# RFC 5322 field name: printable ASCII except colon (and, in practice, no space).
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
# A mailbox we can put on an SMTP command line and in a header without quoting tricks.
_ADDR_FORBIDDEN = re.compile(r'[\s<>"(),;:\\\[\]]')
_FALLBACK_ID_DOMAIN = "network-anim"
_CRLF = "\r\n"
_MAX_HEADER_LINE = 78  # RFC 5322 §2.1.1 "SHOULD"; the hard limit is 998
# MIME headers of one text part, then the blank line that ends them.
_TEXT_HEADERS = (
    'Content-Type: text/{subtype}; charset="utf-8"\r\n'
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
)


def key_hash(idempotency_key: str) -> str:
    return hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()


def message_key_hash(idempotency_key: str) -> str:
    """The 32 hex digits the Message-ID and the bounce token carry (``delivery.key_hash``)."""
    return key_hash(idempotency_key)[:32]


def envelope_sender_of(item: Outbound, sender: str) -> str:
    """The envelope sender of ``item``: the one planned with it (VERP, return path), else
    the sender's address (a row planned before envelope senders, a portal login code).
    Raises ValueError when it is not one plain mailbox."""
    planned = item.extra.get(ENVELOPE_EXTRA)
    address = planned if isinstance(planned, str) and planned else parseaddr(sender)[1]
    return ascii_address(address)


def ascii_address(address: str) -> str:
    """Return ``address`` in a form that needs no SMTPUTF8: IDNA domain, ASCII local part.

    Raises ValueError for something that is not one plain mailbox (display names, spaces,
    several ``@``...): such a value reaching SMTP could smuggle extra command arguments.
    """
    address = address.strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or _ADDR_FORBIDDEN.search(address):
        raise ValueError(f"not a valid email address: {address!r}")
    if not local.isascii():
        # Non-ASCII local parts need SMTPUTF8 end to end; B2B relays rarely offer it.
        raise ValueError(f"non-ASCII local part is not supported: {address!r}")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"invalid international domain in {address!r}: {exc}") from None
    return f"{local}@{domain}"


@lru_cache(maxsize=64)
def _mailbox_header(value: str) -> str:
    """``Name <addr>`` from a display form, the name RFC 2047-encoded when non-ASCII."""
    name, addr = parseaddr(_single_line(value))
    if not addr:
        raise ValueError(f"no email address in {value!r}")
    return formataddr((name, ascii_address(addr)), charset="utf-8")


def _single_line(value: str) -> str:
    # A CR or LF in a header value would start a new header (header injection).
    if "\n" in value or "\r" in value:
        return _LINE_BREAKS.sub(" ", value)
    return value


@lru_cache(maxsize=64)
def _domain_of(sender: str) -> str:
    addr = parseaddr(sender)[1]
    domain = addr.rpartition("@")[2].strip().lower()
    if not domain:
        return _FALLBACK_ID_DOMAIN
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return _FALLBACK_ID_DOMAIN


def message_id_for(idempotency_key: str, *, sender: str) -> str:
    """The Message-ID of the message built for ``idempotency_key``.

    Derived from the key only, so a message re-sent after a crash carries the same id and
    receivers (and our own bounce handling) can recognise the duplicate.
    """
    # 128 bits of the SHA-256 are plenty and keep the header on one line.
    return f"<{message_key_hash(idempotency_key)}@{_domain_of(sender)}>"


def _quoted_printable(text: str) -> str:
    """UTF-8 quoted-printable text with CRLF line ends, decoding back to exactly ``text``.

    ``binascii.b2a_qp`` is the C encoder: lines stay at most 76 characters (far under the
    998 limit of RFC 5322) and it is much faster than ``email.quoprimime``. Trailing
    spaces are encoded, so no relay can strip them.
    """
    normalized = _LINE_BREAKS.sub("\n", text) if "\r" in text else text
    encoded = binascii.b2a_qp(normalized.encode("utf-8"), istext=True).decode("ascii")
    return encoded.replace("\n", _CRLF)


_WORD_OVERHEAD = len("=?utf-8?b??=")


@lru_cache(maxsize=4096)
def _encoded_words_line(name: str, value: str) -> str:
    """``name: value`` as RFC 2047 base64 encoded words (UTF-8), each line at most 78
    columns, split between characters; decodes back to ``value``.

    Cached and hand-made because ``email.header.Header`` spent about 0.3 ms on each
    subject, as much as the rest of the message together (a broadcast repeats its subject).
    """
    words: list[str] = []
    budget = _MAX_HEADER_LINE - len(name) - 2  # after "Name: "
    chunk = b""
    for char in value:
        data = char.encode("utf-8")
        # base64 turns each started group of 3 bytes into 4 characters.
        if chunk and _WORD_OVERHEAD + 4 * -(-(len(chunk) + len(data)) // 3) > budget:
            words.append(f"=?utf-8?b?{binascii.b2a_base64(chunk, newline=False).decode()}?=")
            chunk, budget = b"", _MAX_HEADER_LINE - 1  # continuation lines start with a space
        chunk += data
    words.append(f"=?utf-8?b?{binascii.b2a_base64(chunk, newline=False).decode()}?=")
    return f"{name}: " + f"{_CRLF} ".join(words) + _CRLF


def _header_line(name: str, value: str) -> str:
    """One header field, folded at 78 columns, with its CRLF.

    ASCII values are folded only at existing spaces, so unfolding gives back the value
    verbatim (List-Unsubscribe must survive byte for byte). Other values are RFC 2047
    encoded words, which ``Header`` folds itself.
    """
    value = _single_line(value)
    if not value.isascii():
        return _encoded_words_line(name, value)
    line = f"{name}: {value}"
    if len(line) <= _MAX_HEADER_LINE:
        return line + _CRLF
    lines: list[str] = []
    head = current = f"{name}:"
    for word in value.split(" "):
        piece = " " + word
        # Fold before a space, never right after the colon (the value would then start
        # with whitespace) and never leaving a line of whitespace only (RFC 5322 §3.2.2).
        if word and current != head and len(current) + len(piece) > _MAX_HEADER_LINE:
            lines.append(current)
            current = piece
        else:
            current += piece
    lines.append(current)
    return _CRLF.join(lines) + _CRLF


def build_email(
    item: Outbound,
    *,
    sender: str,
    date: datetime,
    reply_to: str | None = None,
    return_path: str | None = None,
) -> bytes:
    """Build the wire bytes (CRLF line ends, 7-bit clean) of the message for ``item``.

    ``sender`` and ``reply_to`` are display forms (``"Animation réseau <a@example.com>"``).
    ``date`` is the ``Date:`` header: the engine clock's time of the send (simulated in
    ``plan`` and ``demo``), never the machine's, so a simulated month's emails carry it.
    Headers in ``item.headers`` (List-Unsubscribe and its One-Click companion) are copied
    as given; a ``Reply-To`` there replaces ``reply_to``. The structure is text/plain, or
    multipart/alternative (text/plain then text/html) when ``item.html`` is set.

    The bytes are assembled by hand with the stdlib encoders (``formataddr``, ``Header``,
    ``binascii.b2a_qp``) rather than through ``email.message``: its generator spends most
    of its time re-folding every header, and a 5 KB two-part message measured about
    3,400 msg/s with compat32 ``Message.as_bytes`` against about 12,000 msg/s this way
    (EmailMessage with the default policy is slower still). The tests parse the output
    back with the strict default policy to keep the hand assembly honest.

    ``return_path``: written first as ``Return-Path: <address>`` when given: what a
    receiving MTA would add, for a message written to a file. An SMTP client never
    writes it (RFC 5321 §4.4): the envelope's MAIL FROM says it.

    Raises ValueError when the recipient has no usable address or a header is malformed.
    """
    recipient = item.recipient
    if not recipient.email:
        raise ValueError("recipient has no email address")

    extra: list[tuple[str, str]] = []
    for name, value in item.headers.items():
        if not _HEADER_NAME.match(name):
            raise ValueError(f"invalid header name {name!r}")
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {name!r} is set by the email builder")
        extra.append((name, value))

    if date.tzinfo is None:
        raise ValueError("the Date header needs an aware datetime (the engine clock's)")
    when = date

    to_name = _single_line(recipient.display_name)
    headers = [f"Return-Path: <{ascii_address(return_path)}>{_CRLF}"] if return_path else []
    headers += [
        _header_line("From", _mailbox_header(sender)),
        _header_line("To", formataddr((to_name, ascii_address(recipient.email)), charset="utf-8")),
        _header_line("Subject", item.subject),
        _header_line("Date", format_datetime(when)),
        _header_line("Message-ID", message_id_for(item.idempotency_key, sender=sender)),
    ]
    if reply_to and not any(name.lower() == "reply-to" for name, _ in extra):
        headers.append(_header_line("Reply-To", _mailbox_header(reply_to)))
    headers.extend(_header_line(name, value) for name, value in extra)
    headers.append("MIME-Version: 1.0\r\n")

    if item.html:
        # A boundary holding "=_" can never occur inside quoted-printable text (a literal
        # "=" is always encoded as "=3D"), so no collision scan is needed; deriving it
        # from the key keeps the bytes reproducible.
        boundary = f"=_netanim_{key_hash(item.idempotency_key)[:32]}"
        headers.append(f'Content-Type: multipart/alternative;{_CRLF} boundary="{boundary}"{_CRLF}')
        # The CRLF before each "--boundary" belongs to the delimiter (RFC 2046 §5.1.1),
        # so each part decodes to exactly its text.
        body = (
            f"{_CRLF}--{boundary}{_CRLF}{_TEXT_HEADERS.format(subtype='plain')}"
            f"{_quoted_printable(item.text)}"
            f"{_CRLF}--{boundary}{_CRLF}{_TEXT_HEADERS.format(subtype='html')}"
            f"{_quoted_printable(item.html)}"
            f"{_CRLF}--{boundary}--{_CRLF}"
        )
    else:
        headers.append(_TEXT_HEADERS.format(subtype="plain"))
        body = _quoted_printable(item.text)
        # SMTP needs a final CRLF; a soft line break ("=" at the end) adds one without
        # adding a newline to the decoded text.
        if not body.endswith(_CRLF):
            body += "=" + _CRLF
    return ("".join(headers) + body).encode("ascii")
