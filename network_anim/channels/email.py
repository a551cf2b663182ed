"""Email channel: build RFC 5322 messages, send them over SMTP or write them as ``.eml`` files.

The module follows the adapter split of DESIGN.md §2:

* the pure part, :func:`build_email` (an :class:`Outbound` to message bytes) and
  :func:`classify_smtp_error` (an SMTP failure to a normalized :class:`SendResult`), does
  no I/O and is tested on its own;
* the transports, :class:`SmtpTransport` (aiosmtplib, a few long-lived sessions) and
  :class:`FileEmailTransport` (one file per message, the credential-free default), make
  the single network or file call.

Why the SMTP transactions are driven by hand (:mod:`network_anim.channels.smtp_wire`)
once aiosmtplib has opened the session: the dispatcher must tell "the server never got
the message" (safe to retry) from "the server may have queued it" (never resend
automatically), so the envelope and the payload are two steps and the transport records
which one failed; and aiosmtplib's per-command machinery cost more CPU than the rest of
the engine's work on an email (the envelope is also pipelined where the server offers it).
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import os
import re
import secrets
import socket
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from pathlib import Path

from aiosmtplib import (
    SMTP,
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPDataError,
    SMTPHeloError,
    SMTPNotSupported,
    SMTPRecipientRefused,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)

from network_anim.channels.base import Outbound, Pace, ResultCallback, SendResult, TransportBase
from network_anim.channels.smtp_wire import SmtpWire
from network_anim.config.settings import EmailSettings
from network_anim.domain import Outcome

__all__ = [
    "FileEmailTransport",
    "SmtpTransport",
    "build_email",
    "classify_smtp_error",
    "message_id_for",
]

# --------------------------------------------------------------------------------------
# Pure part: message building
# --------------------------------------------------------------------------------------

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


def _hash_key(idempotency_key: str) -> str:
    return hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()


def _ascii_address(address: str) -> str:
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
    return formataddr((name, _ascii_address(addr)), charset="utf-8")


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
    return f"<{_hash_key(idempotency_key)[:32]}@{_domain_of(sender)}>"


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
    reply_to: str | None = None,
    date: datetime | None = None,
) -> bytes:
    """Build the wire bytes (CRLF line ends, 7-bit clean) of the message for ``item``.

    ``sender`` and ``reply_to`` are display forms (``"Animation réseau <a@example.com>"``).
    ``date`` defaults to now; pass the engine clock's time for reproducible output.
    Headers in ``item.headers`` (List-Unsubscribe and its One-Click companion) are copied
    as given; a ``Reply-To`` there replaces ``reply_to``. The structure is text/plain, or
    multipart/alternative (text/plain then text/html) when ``item.html`` is set.

    The bytes are assembled by hand with the stdlib encoders (``formataddr``, ``Header``,
    ``binascii.b2a_qp``) rather than through ``email.message``: its generator spends most
    of its time re-folding every header, and a 5 KB two-part message measured about
    3,400 msg/s with compat32 ``Message.as_bytes`` against about 12,000 msg/s this way
    (EmailMessage with the default policy is slower still). The tests parse the output
    back with the strict default policy to keep the hand assembly honest.

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

    when = date or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)

    to_name = _single_line(recipient.display_name)
    headers = [
        _header_line("From", _mailbox_header(sender)),
        _header_line("To", formataddr((to_name, _ascii_address(recipient.email)), charset="utf-8")),
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
        boundary = f"=_netanim_{_hash_key(item.idempotency_key)[:32]}"
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


# --------------------------------------------------------------------------------------
# Pure part: SMTP failures to outcomes
# --------------------------------------------------------------------------------------

_CREDENTIALS_HINT = (
    "check the SMTP credentials in the environment variables named by "
    "[channels.email] username_env and password_env"
)
# Replies that mean "our login is missing or wrong" whatever command they answer: a
# configuration problem, so the message waits instead of burning the recipient's fallback.
_AUTH_CODES = frozenset({530, 534, 535, 538})
_NOT_RESENT = "the server may have queued it, so it is not resent automatically"


def _reply_text(code: int, message: str) -> str:
    # Multi-line replies come joined by newlines; a detail is one line.
    return f"{code} {' '.join(message.split())}".strip()


def _stage_of(exc: SMTPResponseException) -> str:
    if isinstance(exc, SMTPSenderRefused):
        return " (at MAIL FROM)"
    if isinstance(exc, SMTPRecipientRefused):
        return " (at RCPT TO)"
    if isinstance(exc, SMTPDataError):
        return " (at DATA)"
    return ""


def _no_clear_answer(what: str, *, data_sent: bool) -> SendResult:
    if data_sent:
        return SendResult(
            Outcome.UNKNOWN, detail=f"{what} after the message data was sent: {_NOT_RESENT}"
        )
    return SendResult(Outcome.DEFERRED, detail=what)


def classify_smtp_error(exc: BaseException, *, data_sent: bool) -> SendResult:
    """Map an aiosmtplib failure to the dispatcher's outcome (DESIGN.md §2).

    * a reply code is a clear answer whatever the stage: 4xx is DEFERRED (retry with
      backoff), 5xx is FAILED (permanent: the dispatcher tries the next channel);
    * no clear answer (connection refused or lost, timeout, garbled reply) is DEFERRED
      while the message data has not been sent, and UNKNOWN once it has
      (``data_sent=True``): the server may have queued it, a resend could duplicate it;
    * configuration problems are DEFERRED even when the code is 5xx, because they are
      not the recipient's fault: failed login (the detail points at the credentials
      variables), refused connection greeting, refused envelope sender.

    ``detail`` starts with the SMTP code and the server's text when there is a reply
    (``"550 5.1.1 mailbox unavailable (at RCPT TO)"``). ``retry_after`` is left to the
    dispatcher, which owns backoff.
    """
    if isinstance(exc, SMTPRecipientsRefused):
        # One recipient per transaction here, so the first refusal is the answer.
        if exc.recipients:
            return classify_smtp_error(exc.recipients[0], data_sent=data_sent)
        return _no_clear_answer("all recipients refused", data_sent=data_sent)
    if isinstance(exc, SMTPResponseException):
        reply = _reply_text(exc.code, exc.message)
        if isinstance(exc, SMTPAuthenticationError) or exc.code in _AUTH_CODES:
            return SendResult(
                Outcome.DEFERRED, detail=f"{reply}: authentication failed; {_CREDENTIALS_HINT}"
            )
        if isinstance(exc, SMTPConnectError):
            return SendResult(Outcome.DEFERRED, detail=f"{reply} (server refused the session)")
        if isinstance(exc, SMTPHeloError):
            return SendResult(Outcome.DEFERRED, detail=f"{reply} (at EHLO/HELO)")
        if isinstance(exc, SMTPSenderRefused) and exc.code >= 500 and exc.code != 552:
            # 552 at MAIL FROM is "message too big" (SIZE), a property of this message.
            return SendResult(
                Outcome.DEFERRED,
                detail=f"{reply} (sender {exc.sender} refused: check [channels.email] sender)",
            )
        if 400 <= exc.code < 500:
            return SendResult(Outcome.DEFERRED, detail=reply + _stage_of(exc))
        if 500 <= exc.code < 600:
            return SendResult(Outcome.FAILED, detail=reply + _stage_of(exc))
        # aiosmtplib reports a garbled or unexpected reply with code -1 or a 2xx/3xx.
        return _no_clear_answer(f"unexpected reply {reply}", data_sent=data_sent)
    if isinstance(exc, SMTPConnectError):
        return SendResult(Outcome.DEFERRED, detail=f"cannot connect: {exc}")
    if isinstance(exc, SMTPNotSupported):
        return SendResult(Outcome.DEFERRED, detail=f"server lacks a required feature: {exc}")
    if isinstance(exc, ssl.SSLError):
        # Certificate or protocol mismatch with the relay: configuration, not recipient.
        return _no_clear_answer(f"TLS failure ({exc})", data_sent=data_sent)
    if isinstance(exc, SMTPServerDisconnected | ConnectionError):
        return _no_clear_answer(f"connection lost ({exc})", data_sent=data_sent)
    if isinstance(exc, SMTPTimeoutError | TimeoutError):
        return _no_clear_answer(f"timed out ({exc})", data_sent=data_sent)
    if isinstance(exc, OSError):
        return _no_clear_answer(f"network error ({exc})", data_sent=data_sent)
    if isinstance(exc, ValueError) and not data_sent:
        # aiosmtplib refuses addresses that are unsafe on an SMTP command line.
        return SendResult(Outcome.FAILED, detail=f"address refused by the SMTP client: {exc}")
    return _no_clear_answer(f"{type(exc).__name__}: {exc}", data_sent=data_sent)


# --------------------------------------------------------------------------------------
# Transports
# --------------------------------------------------------------------------------------

_NO_ADDRESS = SendResult(Outcome.FAILED, detail="no email address")
_RECORDING_FAILED = SendResult(
    Outcome.DEFERRED, detail="not sent: a result of the batch could not be recorded"
)


_END_OF_DATA = b".\r\n"


def _data_payload(message: bytes) -> bytes:
    """The bytes sent after ``354``: dot-stuffed (RFC 5321 §4.5.2), ended by ``.`` alone.

    :func:`build_email` already ends every line with CRLF, so no line ending rewrite.
    """
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    if message.startswith(b"."):
        message = b"." + message
    # Every line ends with CRLF, so every line but the first starts after one.
    return message.replace(b"\r\n.", b"\r\n..") + b".\r\n"


@dataclass(slots=True)
class _BatchState:
    # When results are recorded as they come: from the end of a message's DATA (the moment
    # the server may accept it) until its result is recorded, the message holds one of the
    # transport's ``max_unrecorded`` permits, so a crash leaves at most that many
    # accepted-but-unrecorded messages, whatever the concurrency.
    gated: bool = False
    # First connection failure of the batch: when the relay is down or our login is
    # refused, the other messages are deferred at once instead of each waiting for its
    # own connect timeout.
    connect_failure: SendResult | None = None
    # A result could not be recorded (the database is gone): no further message may be
    # accepted, each would be sent again once its row is taken back.
    recording_failed: bool = False


class SmtpTransport(TransportBase):
    """Sends email through an SMTP relay with up to ``concurrency`` long-lived sessions.

    Use it as an async context manager: sessions open lazily on first use, stay open
    across :meth:`send_batch` calls (one per worker), are reopened transparently when
    the server closed them (after a 421, an idle timeout) and are closed with QUIT on
    exit. Each message is its own transaction (MAIL, one RCPT, DATA), so one refusal
    never affects another message. Batches are sent one at a time; the concurrency is
    inside a batch.

    ``username``/``password`` are the secrets read from the variables named by
    ``settings.username_env``/``password_env``; no login happens without a username.
    ``tls_context`` overrides certificate checks (a private CA, or tests).
    ``max_unrecorded`` bounds the messages sent (final "." written) whose result the
    caller has not yet recorded: what a crash can make a restart send twice.
    """

    def __init__(
        self,
        settings: EmailSettings,
        *,
        username: str | None = None,
        password: str | None = None,
        concurrency: int = 4,
        tls_context: ssl.SSLContext | None = None,
        max_unrecorded: int = 1,
    ) -> None:
        if concurrency < 1 or max_unrecorded < 1:
            raise ValueError("concurrency and max_unrecorded must be at least 1")
        self._settings = settings
        self._username = username
        self._password = password
        self._tls_context = tls_context
        self._concurrency = concurrency
        self.concurrency = concurrency
        self._gate = asyncio.Semaphore(max_unrecorded)
        self.max_unrecorded = max_unrecorded
        self._holding = [False] * concurrency
        # Fail at construction on a sender the relay could never accept: a config error.
        self._envelope_sender = _ascii_address(parseaddr(settings.sender)[1])
        self._clients: list[SmtpWire | None] = [None] * concurrency
        self._local_hostname: str | None = None
        self._batch_lock = asyncio.Lock()
        self.connections_opened = 0
        """How many SMTP sessions this transport opened (reuse shows as a small number)."""

    async def open(self) -> None:
        # aiosmtplib resolves the EHLO name with socket.getfqdn on every connect, which
        # may wait on DNS; resolve it once in a thread.
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)

    async def aclose(self) -> None:
        """QUIT and close every open session (the transport can be used again after)."""
        clients = [client for client in self._clients if client is not None]
        self._clients = [None] * self._concurrency
        await asyncio.gather(*(self._quit(client) for client in clients))

    async def _quit(self, client: SmtpWire) -> None:
        try:
            if client.is_connected:
                async with asyncio.timeout(min(self._settings.timeout, 5.0)):
                    await client.quit()
        except Exception:
            pass  # the server may already be gone: closing our side is all that is left
        finally:
            client.close()

    # The dispatcher may record each result as it comes (see ``on_result``).
    streams_results = True

    async def send_batch(
        self,
        items: Sequence[Outbound],
        on_result: ResultCallback | None = None,
        pace: Pace | None = None,
    ) -> list[SendResult]:
        """Send ``items``; one result per item, in order. Never raises for one message.

        ``on_result(index, result)`` is called as soon as each message is answered and
        returns a future done once the caller recorded it; no more than
        ``max_unrecorded`` sent messages wait for their recording at any moment (the next
        final "." waits), so a crash leaves at most that many sent but unrecorded.
        ``pace()`` is awaited before each message (the channel's rate limit)."""
        results: list[SendResult | None] = [None] * len(items)
        # A shared iterator is the work queue: each worker pulls the next message as soon
        # as its session is free, so one slow answer does not hold the others back.
        pending = iter(enumerate(items))
        state = _BatchState(gated=on_result is not None)
        recordings: list[asyncio.Future[None]] = []
        async with self._batch_lock:
            async with asyncio.TaskGroup() as workers:
                for slot in range(min(self._concurrency, len(items))):
                    workers.create_task(
                        self._work(slot, pending, results, state, on_result, pace, recordings)
                    )
            # A recording that failed fails the batch, as it would have done in line.
            for outcome in await asyncio.gather(*recordings, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    raise outcome
        return [
            result or SendResult(Outcome.DEFERRED, detail="not attempted") for result in results
        ]

    async def _work(
        self,
        slot: int,
        pending: Iterator[tuple[int, Outbound]],
        results: list[SendResult | None],
        state: _BatchState,
        on_result: ResultCallback | None,
        pace: Pace | None,
        recordings: list[asyncio.Future[None]],
    ) -> None:
        for index, item in pending:
            if state.recording_failed:
                return  # the rest stays "not attempted"
            try:
                if pace is not None:
                    await pace()
                result = results[index] = await self._send_one(slot, item, state)
                if on_result is not None:
                    recorded = on_result(index, result)
                    recordings.append(recorded)
                    if self._holding[slot]:
                        # The permit now belongs to the recording: freed once it is done.
                        self._holding[slot] = False
                        recorded.add_done_callback(lambda done: self._recorded(done, state))
            finally:
                if self._holding[slot]:
                    self._holding[slot] = False
                    self._gate.release()

    def _recorded(self, done: asyncio.Future[None], state: _BatchState) -> None:
        if done.cancelled() or done.exception() is not None:
            state.recording_failed = True
        self._gate.release()

    async def _send_one(self, slot: int, item: Outbound, state: _BatchState) -> SendResult:
        if not item.recipient.email:
            return _NO_ADDRESS
        try:
            recipient = _ascii_address(item.recipient.email)
            message = build_email(
                item, sender=self._settings.sender, reply_to=self._settings.reply_to
            )
        except ValueError as exc:
            return SendResult(Outcome.FAILED, detail=f"cannot build the message: {exc}")
        message_id = message_id_for(item.idempotency_key, sender=self._settings.sender)
        payload = _data_payload(message)

        client = self._clients[slot]
        reused = client is not None and client.is_connected
        while True:
            if client is None or not client.is_connected:
                connected = await self._connect(slot, state)
                if isinstance(connected, SendResult):
                    return connected
                client = connected
            result, retry = await self._transact(
                client, recipient, payload, len(message), message_id, slot, state
            )
            if retry and reused:
                # The server dropped a session we had kept open (idle timeout) before
                # answering MAIL: nothing was sent, so try once more on a fresh session.
                reused = False
                continue
            return result

    async def _connect(self, slot: int, state: _BatchState) -> SmtpWire | SendResult:
        old = self._clients[slot]
        if old is not None:
            old.close()
            self._clients[slot] = None
        if state.connect_failure is not None:
            failure = state.connect_failure
            return replace(failure, detail=f"not attempted, {failure.detail}")
        settings = self._settings
        client = SMTP(
            hostname=settings.host,
            port=settings.port,
            local_hostname=self._local_hostname,
            timeout=settings.timeout,
            use_tls=settings.security == "ssl",
            # False, not None, for "none": None would upgrade opportunistically and then
            # fail on a relay whose certificate does not match its name.
            start_tls=settings.security == "starttls",
            username=self._username,
            password=self._password,
            tls_context=self._tls_context,
        )
        try:
            await client.connect()  # closes itself on failure
            # EHLO now: the extensions (PIPELINING, SIZE) decide how messages are sent.
            await _ehlo_if_needed(client)
            wire = SmtpWire.take_over(client, timeout=settings.timeout)
        except Exception as exc:
            client.close()
            result = classify_smtp_error(exc, data_sent=False)
            result = replace(result, detail=f"{result.detail} [{settings.host}:{settings.port}]")
            state.connect_failure = result
            return result
        self._clients[slot] = wire
        self.connections_opened += 1
        return wire

    async def _transact(
        self,
        client: SmtpWire,
        recipient: str,
        payload: bytes,
        size: int,
        message_id: str,
        slot: int = 0,
        state: _BatchState | None = None,
    ) -> tuple[SendResult, bool]:
        """One mail transaction; returns the result and whether a retry is safe and useful.

        The envelope (MAIL, RCPT, DATA) and the payload are separate steps so that a lost
        connection is known to have happened before the payload (DEFERRED) or after it
        (UNKNOWN).
        """
        data_sent = False
        try:
            await client.transaction_start(self._envelope_sender, recipient, size)
            if state is not None and state.gated:
                rest = payload  # a free permit is taken at once: one write is enough
                if self._gate.locked():
                    # Everything but the final "." now; the final dot, which makes the
                    # server take the message, waits its turn (see _BatchState.gated).
                    client.write(payload[: -len(_END_OF_DATA)])
                    rest = _END_OF_DATA
                await self._gate.acquire()
                if state.recording_failed:
                    self._gate.release()
                    client.close()  # without the final ".", the server drops the message
                    return _RECORDING_FAILED, False
                self._holding[slot] = True
                client.write(rest)
            else:
                client.write(payload)  # raises, with nothing sent, on a closed connection
            data_sent = True
            reply = await client.reply()
            if reply.code != 250:
                raise SMTPDataError(reply.code, reply.message)
        except asyncio.CancelledError:
            client.close()  # mid-transaction: the session state is unknown
            raise
        except Exception as exc:
            await _end_transaction(client, exc)
            # Only a session lost before MAIL was answered may be retried: from RCPT on,
            # the server has seen the envelope, and after the payload it may have queued
            # the message.
            retry = (
                not client.mail_answered
                and not data_sent
                and isinstance(exc, SMTPServerDisconnected)
            )
            return classify_smtp_error(exc, data_sent=data_sent), retry
        accepted = _reply_text(reply.code, reply.message)
        return SendResult.sent(provider_id=message_id, detail=accepted), False


async def _ehlo_if_needed(client: SMTP) -> None:
    # Done before MAIL so the SIZE extension is known (aiosmtplib would do it inside mail()).
    if client.is_ehlo_or_helo_needed:
        try:
            await client.ehlo()
        except SMTPHeloError:
            if not client.is_connected:
                raise
            await client.helo()


async def _end_transaction(client: SmtpWire, exc: Exception) -> None:
    """Leave the session ready for the next message, or closed if that is not certain."""
    if isinstance(exc, SMTPResponseException) and exc.code > 0 and client.is_connected:
        # A clear refusal: the session is fine, RSET clears any half-built envelope.
        try:
            await client.rset()
        except Exception:
            client.close()
    else:
        # Lost, timed out or garbled: a late reply could be paired with the next command.
        client.close()


class FileEmailTransport(TransportBase):
    """Writes each message as ``<hash of the idempotency key>.eml`` in ``directory``.

    The embedded default: runs with no credentials and lets a person open the result.
    A retry of the same outbox row overwrites its file instead of adding one, and each
    file appears whole (written aside, then renamed with ``os.replace``).
    """

    def __init__(self, directory: Path, *, sender: str, reply_to: str | None = None) -> None:
        self._directory = Path(directory)
        self._sender = sender
        self._reply_to = reply_to

    @property
    def directory(self) -> Path:
        return self._directory

    def path_for(self, idempotency_key: str) -> Path:
        return self._directory / f"{_hash_key(idempotency_key)[:32]}.eml"

    async def open(self) -> None:
        await asyncio.to_thread(self._directory.mkdir, parents=True, exist_ok=True)

    async def send_batch(self, items: Sequence[Outbound]) -> list[SendResult]:
        # One thread hop per batch: file writes block, the daemon's loop must not.
        return await asyncio.to_thread(self._write_all, list(items))

    def _write_all(self, items: list[Outbound]) -> list[SendResult]:
        self._directory.mkdir(parents=True, exist_ok=True)
        return [self._write_one(item) for item in items]

    def _write_one(self, item: Outbound) -> SendResult:
        if not item.recipient.email:
            return _NO_ADDRESS
        try:
            message = build_email(item, sender=self._sender, reply_to=self._reply_to)
        except ValueError as exc:
            return SendResult(Outcome.FAILED, detail=f"cannot build the message: {exc}")
        path = self.path_for(item.idempotency_key)
        try:
            _write_atomically(path, message)
        except OSError as exc:
            # Disk full, permissions: the folder's problem, not the recipient's.
            return SendResult(Outcome.DEFERRED, detail=f"cannot write {path}: {exc}")
        return SendResult.sent(provider_id=str(path), detail=f"written to {path}")


def _write_atomically(path: Path, data: bytes) -> None:
    # A unique temporary name in the same folder (same file system, so os.replace is an
    # atomic rename); "x" mode never follows or clobbers an existing file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
