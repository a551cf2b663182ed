"""Email over SMTP: failures to outcomes, and the transport with long-lived sessions.

:func:`classify_smtp_error` (an SMTP failure to a normalized :class:`SendResult`) is pure
and tested on its own; :class:`SmtpTransport` (aiosmtplib, a few long-lived sessions)
makes the network call. The message bytes come from
:func:`network_anim.channels.email_mime.build_email`, dated by the engine's clock.

Why the SMTP transactions are driven by hand (:mod:`network_anim.channels.smtp_wire`)
once aiosmtplib has opened the session: the dispatcher must tell "the server never got
the message" (safe to retry) from "the server may have queued it" (never resend
automatically), so the envelope and the payload are two steps and the transport records
which one failed; and aiosmtplib's per-command machinery cost more CPU than the rest of
the engine's work on an email (the envelope is also pipelined where the server offers it).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from email.utils import parseaddr

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

from network_anim.channels.contract import (
    Outbound,
    Pace,
    ResultCallback,
    SendResult,
    TransportBase,
)
from network_anim.channels.email_mime import (
    ascii_address,
    build_email,
    envelope_sender_of,
    message_id_for,
)
from network_anim.channels.smtp_wire import SmtpWire
from network_anim.clock import Clock
from network_anim.config.settings import EmailSettings
from network_anim.domain import Outcome

__all__ = ["SmtpTransport", "classify_smtp_error"]

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
# The transport
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
    ``clock`` dates each message (its ``Date:`` header) when it is sent.
    ``tls_context`` overrides certificate checks (a private CA, or tests).
    ``max_unrecorded`` bounds the messages sent (final "." written) whose result the
    caller has not yet recorded: what a crash can make a restart send twice.
    """

    def __init__(
        self,
        settings: EmailSettings,
        *,
        clock: Clock,
        username: str | None = None,
        password: str | None = None,
        concurrency: int = 4,
        tls_context: ssl.SSLContext | None = None,
        max_unrecorded: int = 1,
    ) -> None:
        if concurrency < 1 or max_unrecorded < 1:
            raise ValueError("concurrency and max_unrecorded must be at least 1")
        self._settings = settings
        self._clock = clock
        self._username = username
        self._password = password
        self._tls_context = tls_context
        self._concurrency = concurrency
        self.concurrency = concurrency
        self._gate = asyncio.Semaphore(max_unrecorded)
        self.max_unrecorded = max_unrecorded
        self._holding = [False] * concurrency
        # Fail at construction on a sender the relay could never accept: a config error.
        self._envelope_sender = ascii_address(parseaddr(settings.sender)[1])
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
            recipient = ascii_address(item.recipient.email)
            # Per message: the VERP address names this delivery, so its bounce finds it.
            envelope = envelope_sender_of(item, self._settings.sender)
            message = build_email(
                item,
                sender=self._settings.sender,
                reply_to=self._settings.reply_to,
                date=self._clock.now(),
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
                client, recipient, payload, len(message), message_id, slot, state, envelope
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
        envelope: str | None = None,
    ) -> tuple[SendResult, bool]:
        """One mail transaction; returns the result and whether a retry is safe and useful.

        The envelope (MAIL, RCPT, DATA) and the payload are separate steps so that a lost
        connection is known to have happened before the payload (DEFERRED) or after it
        (UNKNOWN).
        """
        data_sent = False
        try:
            await client.transaction_start(envelope or self._envelope_sender, recipient, size)
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
