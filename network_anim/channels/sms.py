"""SMS channel: Twilio's Messages API through the official client, or a JSON-lines file.

Pure part (no I/O): :func:`build_twilio_params` turns one outbound message into the
keyword arguments of ``client.messages.create_async``; :func:`classify_twilio_error`
turns a Twilio error answer into a normalized :class:`SendResult`; :func:`sms_cost`
prices a text from its segments.

Transports (``contract.Transport``): :class:`TwilioTransport` makes the one network call per
message with the official ``twilio`` client; :class:`FileSmsTransport` writes what would
have been sent, so the default configuration runs without credentials.

Failure classes (DESIGN.md §2). Creating a Twilio message is NOT idempotent (the API has
no idempotency key), so anything that may have reached Twilio without a clear answer is
UNKNOWN and never resent by us: 5xx, read timeouts, connections dropped after the request
went out. Only failures where nothing was sent (connection refused, connect timeout, 429,
bad credentials) are DEFERRED for a retry.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TextIO
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from network_anim.channels.contract import Outbound, SendMode, SendResult, TransportBase
from network_anim.channels.registry import Adapter, BuildContext
from network_anim.channels.sms_encoding import SmsEncoding, sms_segments
from network_anim.clock import Clock
from network_anim.config.channel_defs import ChannelDefinition
from network_anim.config.settings import SmsSettings, secret_from_env
from network_anim.domain import Outcome

# E.164: "+", a country code not starting with 0, at most 15 digits in all.
E164 = re.compile(r"^\+[1-9]\d{1,14}$")

# Twilio error codes (https://www.twilio.com/docs/api/errors) this adapter treats apart.
OPTED_OUT_CODES: dict[int, str] = {
    21610: "the recipient replied STOP to this sender (Twilio blocks further messages)",
}
PERMANENT_CODES: dict[int, str] = {
    21211: "the 'To' number is not a valid phone number",
    21214: "the 'To' number cannot be reached",
    21408: "sending to this region is not enabled (Twilio console > Messaging > Geo permissions)",
    21606: "the 'From' number is not a valid sender for this account",
    21612: "Twilio cannot route a message from this sender to this number",
    21614: "the 'To' number is not a mobile number",
    21617: "the body is longer than Twilio accepts (1600 characters)",
}
# Twilio's own "too many requests" code, in case it comes with another HTTP status.
RATE_LIMIT_CODES = frozenset({20429})

# twilio's TwilioRestException prefixes the provider message with this; it adds nothing.
_CLIENT_PREFIX = "Unable to create record: "


# --------------------------------------------------------------------------- pure part


def build_twilio_params(
    item: Outbound, settings: SmsSettings, *, status_callback_url: str | None = None
) -> dict[str, str]:
    """Keyword arguments for ``client.messages.create_async(**params)`` (twilio >= 9).

    Returned in the client's kwargs form, not as raw form fields: the client maps
    ``to``/``from_``/``body``/``messaging_service_sid``/``status_callback`` to the form
    fields ``To``/``From``/``Body``/``MessagingServiceSid``/``StatusCallback`` itself.
    With a Messaging Service SID, ``From`` is left out so Twilio picks a sender from the
    service's pool. Raises ``ValueError`` when the recipient has no phone number.
    """
    phone = item.recipient.phone
    if not phone:
        raise ValueError(f"delivery {item.delivery_id}: recipient has no mobile number")
    params: dict[str, str] = {"to": phone, "body": item.text}
    if settings.messaging_service_sid:
        params["messaging_service_sid"] = settings.messaging_service_sid
    else:
        params["from_"] = settings.sender
    if status_callback_url:
        params["status_callback"] = status_callback_url
    return params


def sms_cost(text: str, definition: ChannelDefinition) -> float:
    """What sending ``text`` once costs: segments x the per-segment price (+ per message)."""
    return _cost(definition, sms_segments(text))


def classify_twilio_error(
    status: int,
    code: int | None,
    message: str,
    *,
    settings: SmsSettings | None = None,
) -> SendResult:
    """Normalize one Twilio error answer (HTTP status, Twilio error code, message).

    ``settings`` only serves to name the credential environment variables in the hint
    given for authentication failures; the defaults are used without it.
    """
    where = f"HTTP {status}" + (f", Twilio error {code}" if code is not None else "")
    detail = f"{where}: {message}" if message else where
    if status == 429 or code in RATE_LIMIT_CODES:
        # Twilio refused before queuing anything: safe to retry after a backoff.
        return SendResult(Outcome.DEFERRED, detail=f"{detail} (rate limited by Twilio)")
    if status >= 500:
        # Message creation is not idempotent: Twilio may have queued it before failing.
        return SendResult(
            Outcome.UNKNOWN,
            detail=f"{detail} (Twilio may have queued the message: check the console, "
            "it is not resent automatically)",
        )
    if status in (401, 403):
        # Wrong credentials fail every message alike; nothing was sent, so retry once the
        # operator has fixed the environment.
        sms = settings or SmsSettings()
        return SendResult(
            Outcome.DEFERRED,
            detail=f"{detail} (Twilio refused the credentials: check the environment "
            f"variables {sms.account_sid_env} and {sms.auth_token_env} named in "
            "[channels.sms] of the config)",
        )
    if code in OPTED_OUT_CODES:
        return SendResult(Outcome.OPTED_OUT, detail=f"{detail} ({OPTED_OUT_CODES[code]})")
    if 400 <= status < 500:
        # Invalid number, landline, region disabled, bad sender...: retrying cannot help,
        # the router tries the next channel.
        explained = PERMANENT_CODES.get(code) if code is not None else None
        return SendResult(Outcome.FAILED, detail=f"{detail} ({explained})" if explained else detail)
    # A 1xx/3xx error from the client means something between us and Twilio misbehaved;
    # whether the message went out cannot be told.
    return SendResult(Outcome.UNKNOWN, detail=f"{detail} (unexpected answer)")


def _no_phone_result(item: Outbound) -> SendResult | None:
    """FAILED without any call when the recipient has no usable number, else None."""
    phone = item.recipient.phone
    if not phone:
        return SendResult(Outcome.FAILED, detail="no mobile number")
    if not E164.match(phone):
        return SendResult(Outcome.FAILED, detail=f"mobile number {phone!r} is not in E.164 format")
    return None


# ------------------------------------------------------------------------- Twilio transport


@dataclass
class _Progress:
    """Whether the current request's headers left for the server (set by an aiohttp trace)."""

    sent: bool = False


# One holder per send task (asyncio.gather gives each its own context): a timeout or a
# dropped connection before the headers went out means nothing was sent (DEFERRED);
# after, Twilio may have queued the message (UNKNOWN).
_PROGRESS: ContextVar[_Progress | None] = ContextVar("twilio_request_progress", default=None)


# Raised while connecting. ConnectionTimeoutError only exists from aiohttp 3.10 on.
_CONNECT_ERRORS: tuple[type[Exception], ...] = (aiohttp.ClientConnectorError,) + (
    (aiohttp.ConnectionTimeoutError,) if hasattr(aiohttp, "ConnectionTimeoutError") else ()
)


async def _on_request_headers_sent(
    session: aiohttp.ClientSession, context: SimpleNamespace, params: object
) -> None:
    progress = _PROGRESS.get()
    if progress is not None:
        progress.sent = True


class RebasedAsyncHttpClient(AsyncTwilioHttpClient):
    """The official async HTTP client, pointed at ``base_url`` and with a real timeout.

    Two reasons for the subclass (``http_client`` is Twilio's documented extension
    point): the client builds absolute ``https://api.twilio.com/...`` URLs, so a
    stand-in or a staging proxy needs scheme and host rewritten; and the stock class
    ignores its own ``timeout`` argument (the generated resources pass ``timeout=None``
    to every request, which aiohttp reads as "no timeout at all").

    It also traces when request headers are sent, so the transport can tell a timeout
    while connecting (nothing sent) from one while waiting for the answer.

    Build it inside a running event loop: the base constructor opens an aiohttp session.
    ``max_retries`` is never set: aiohttp_retry would resend POSTs on any 5xx, i.e.
    possibly send the same SMS twice.
    """

    def __init__(self, base_url: str, *, timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"api_base_url must look like https://host[:port], got {base_url!r}")
        trace = aiohttp.TraceConfig()
        trace.on_request_headers_sent.append(_on_request_headers_sent)
        super().__init__(pool_connections=True, timeout=timeout, trace_configs=[trace])
        self._scheme = parts.scheme
        self._netloc = parts.netloc
        self._prefix = parts.path.rstrip("/")

    def rebase(self, url: str) -> str:
        parts = urlsplit(url)
        return urlunsplit(
            (self._scheme, self._netloc, self._prefix + parts.path, parts.query, parts.fragment)
        )

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if auth is not None:
            # Send Basic auth as a header: the stock client passes aiohttp.BasicAuth through
            # ``auth=``, deprecated since aiohttp 3.14 (a warning per request, gone in 4.0).
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            headers = {**(headers or {}), "Authorization": f"Basic {token}"}
        return await super().request(
            method,
            self.rebase(url),
            params=params,
            data=data,
            headers=headers,
            auth=None,
            timeout=self.timeout if timeout is None else timeout,
            allow_redirects=allow_redirects,
        )


class TwilioTransport(TransportBase):
    """Sends SMS with ``client.messages.create_async``, ``concurrency`` requests at a time.

    One aiohttp session (keep-alive pool) lives as long as the ``async with`` block when
    the transport builds its own HTTP client; an ``http_client`` passed in belongs to the
    caller, who opens and closes it. The status callback URL is sent only when
    ``settings.status_callback`` is true.
    """

    mode = SendMode.PACED
    # Creating a Twilio message is not idempotent: a second request is a second SMS.
    resend_safe = False

    def __init__(
        self,
        settings: SmsSettings,
        definition: ChannelDefinition,
        *,
        account_sid: str,
        auth_token: str,
        status_callback_url: str | None = None,
        concurrency: int = 8,
        http_client: AsyncTwilioHttpClient | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if not account_sid or not auth_token:
            # The client would silently fall back to TWILIO_* variables of os.environ.
            raise ValueError("account_sid and auth_token must be given explicitly")
        self.settings = settings
        self.definition = definition
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._callback = status_callback_url if settings.status_callback else None
        self._given_http = http_client
        self._http: AsyncTwilioHttpClient | None = None
        self._client: Client | None = None
        self._semaphore = asyncio.Semaphore(concurrency)
        self.concurrency = concurrency

    async def open(self) -> None:
        self._http = self._given_http or RebasedAsyncHttpClient(
            self.settings.api_base_url, timeout=self.settings.timeout
        )
        self._client = Client(self._account_sid, self._auth_token, http_client=self._http)
        # The client imports its API modules on first use (some 30 ms): done here, not
        # between the first message's rate-limit token and its request, which would then
        # reach Twilio in the same second as the next ones (429 at the rate limit).
        _ = self._client.messages

    async def aclose(self) -> None:
        http, self._http, self._client = self._http, None, None
        if http is not None and http is not self._given_http:
            await http.close()

    async def send_batch(self, items: Sequence[Outbound]) -> list[SendResult]:
        if self._client is None:
            raise RuntimeError("TwilioTransport must be used inside 'async with'")
        client = self._client
        refused = await self.refusals(items)

        async def one(index: int, item: Outbound) -> SendResult:
            return refused[index] if index in refused else await self._send_one(client, item)

        return list(await asyncio.gather(*(one(i, item) for i, item in enumerate(items))))

    async def refusals(self, items: Sequence[Outbound]) -> dict[int, SendResult]:
        """Items refused before any call, by index (a subclass's rules; none for SMS)."""
        return {}

    def params(self, item: Outbound) -> dict[str, str]:
        """The keyword arguments of ``messages.create_async`` for ``item``."""
        return build_twilio_params(item, self.settings, status_callback_url=self._callback)

    def accepted(self, item: Outbound, sid: str, status: str) -> SendResult:
        encoding = sms_segments(item.text)
        return SendResult.sent(
            provider_id=sid,
            detail=f"{status}, {encoding.segments} segment(s) {encoding.encoding}",
            cost=_cost(self.definition, encoding),
        )

    async def _send_one(self, client: Client, item: Outbound) -> SendResult:
        refused = _no_phone_result(item)
        if refused is not None:
            return refused
        params = self.params(item)
        progress = _Progress()
        token = _PROGRESS.set(progress)
        try:
            async with self._semaphore:
                message = await client.messages.create_async(**params)
        except TwilioRestException as exc:
            return classify_twilio_error(
                exc.status,
                _twilio_code(exc.code, exc.status),
                _clean(exc.msg),
                settings=self.settings,
            )
        except TwilioServiceException as exc:  # RFC 9457 error bodies (newer APIs)
            text = exc.detail or exc.title
            return classify_twilio_error(
                exc.status, _twilio_code(exc.code, exc.status), text, settings=self.settings
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            return self._network_failure(exc, sent=self._maybe_sent(exc, progress))
        except Exception as exc:
            # A bug or an unparsable answer: whether Twilio queued the message is unknown.
            return SendResult(
                Outcome.UNKNOWN, detail=f"unexpected error {type(exc).__name__}: {exc}"
            )
        finally:
            _PROGRESS.reset(token)
        return self.accepted(item, message.sid, message.status)

    def _maybe_sent(self, exc: BaseException, progress: _Progress) -> bool:
        """Whether the request may have reached Twilio before ``exc``."""
        if isinstance(exc, _CONNECT_ERRORS):
            return False  # raised while connecting: not a byte of the request left
        if isinstance(self._http, RebasedAsyncHttpClient):
            return progress.sent  # traced: we know whether the headers went out
        return True  # an untraced client: assume the worst

    def _network_failure(self, exc: BaseException, *, sent: bool) -> SendResult:
        what = (
            f"no answer from Twilio within {self.settings.timeout:g} s"
            if isinstance(exc, TimeoutError)
            else f"{type(exc).__name__}: {exc}"
        )
        if not sent:
            return SendResult(
                Outcome.DEFERRED, detail=f"cannot connect to Twilio ({what}), nothing was sent"
            )
        # Refused, reset or timed out after the request went out: Twilio may have queued
        # the message, and creating one is not idempotent.
        return SendResult(
            Outcome.UNKNOWN,
            detail=f"{what} after the request was sent: the message may be queued, "
            "it is not resent automatically",
        )


def _twilio_code(code: int | None, status: int) -> int | None:
    # Without a JSON body the client reports the HTTP status as the code: that is no code.
    if code is None or code == status:
        return None
    return int(code)


def _clean(message: str) -> str:
    return message.removeprefix(_CLIENT_PREFIX)


# --------------------------------------------------------------------------- file transport


class FileSmsTransport(TransportBase):
    """Appends one JSON line per message to ``sms.jsonl``; nothing leaves the machine.

    ``path_or_dir`` is the folder (the file is ``sms.jsonl`` in it) or a ``*.jsonl`` file.
    Keys already in the file are skipped, so a batch retried after a crash between the
    write and the outbox update never writes a message twice. Each batch is flushed and
    fsynced before results are returned: a SENT result means the line is on disk.
    """

    FILE_NAME = "sms.jsonl"
    resend_safe = True  # keys already in the file are skipped
    throttled = False  # a file has no provider's pace to keep

    def __init__(self, path_or_dir: Path, definition: ChannelDefinition, *, clock: Clock) -> None:
        path = Path(path_or_dir)
        self.path = path if path.suffix == ".jsonl" else path / self.FILE_NAME
        self.definition = definition
        self._clock = clock  # each record's "at": the engine's time of the batch
        self._keys: set[str] = set()
        self._file: TextIO | None = None
        self._entered = False

    async def open(self) -> None:
        await asyncio.to_thread(self._open)
        self._entered = True

    async def aclose(self) -> None:
        self._entered = False
        file, self._file = self._file, None
        if file is not None:
            file.close()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._keys.clear()
        torn_tail = False
        if self.path.exists():
            raw = self.path.read_bytes()
            torn_tail = bool(raw) and not raw.endswith(b"\n")
            for line in raw.decode("utf-8", errors="replace").splitlines():
                try:
                    key = json.loads(line)["idempotency_key"]
                except (ValueError, KeyError, TypeError):
                    # A line torn by a crash: its message was never confirmed, so it is
                    # not counted as written and will be written again in full.
                    continue
                self._keys.add(str(key))
        self._file = self.path.open("a", encoding="utf-8")
        if torn_tail:
            # Start on a fresh line so the next record is not glued to the torn one.
            self._file.write("\n")

    async def send_batch(self, items: Sequence[Outbound]) -> list[SendResult]:
        if not self._entered:
            raise RuntimeError("FileSmsTransport must be used inside 'async with'")
        if self._file is None:
            # The previous batch hit a write error: the file, not memory, says what is written.
            try:
                await asyncio.to_thread(self._open)
            except OSError as exc:
                detail = f"cannot open {self.path}: {exc}"
                return [SendResult(Outcome.DEFERRED, detail=detail) for _ in items]
        results: list[SendResult] = []
        lines: list[str] = []
        written: list[int] = []  # indexes in results of the lines written by this batch
        at = self._clock.now().isoformat()
        for item in items:
            refused = _no_phone_result(item)
            if refused is not None:
                results.append(refused)
                continue
            encoding = sms_segments(item.text)
            cost = _cost(self.definition, encoding)
            key = item.idempotency_key
            if key in self._keys:
                results.append(
                    SendResult.sent(
                        provider_id=f"file:{key}",
                        detail=f"already in {self.path.name}, not written again",
                        cost=cost,
                    )
                )
                continue
            self._keys.add(key)
            lines.append(_record(item, encoding, cost, at))
            written.append(len(results))
            results.append(
                SendResult.sent(
                    provider_id=f"file:{key}",
                    detail=f"written to {self.path}, {encoding.segments} segment(s) "
                    f"{encoding.encoding}",
                    cost=cost,
                )
            )
        if lines:
            try:
                await asyncio.to_thread(self._append, lines)
            except OSError as exc:
                # Disk full, permissions...: retry later. Some lines may have reached the
                # file; the next open re-reads the keys, so the retry skips those.
                file, self._file = self._file, None
                self._keys.clear()
                if file is not None:
                    with contextlib.suppress(OSError):
                        file.close()
                for index in written:
                    results[index] = SendResult(
                        Outcome.DEFERRED, detail=f"cannot write {self.path}: {exc}"
                    )
        return results

    def _append(self, lines: list[str]) -> None:
        assert self._file is not None
        self._file.write("".join(lines))
        self._file.flush()
        os.fsync(self._file.fileno())


def _cost(definition: ChannelDefinition, encoding: SmsEncoding) -> float:
    # Rounded so 3 x 0.075 reads 0.225 in the ledger, not 0.22499999999999998.
    return round(definition.estimate_cost(encoding.segments), 6)


def _record(item: Outbound, encoding: SmsEncoding, cost: float, at: str) -> str:
    record = {
        "idempotency_key": item.idempotency_key,
        "to": item.recipient.phone,
        "body": item.text,
        "encoding": encoding.encoding,
        "segments": encoding.segments,
        "cost": cost,
        "at": at,
    }
    # ensure_ascii=False keeps French accents readable in the file.
    return json.dumps(record, ensure_ascii=False) + "\n"


def _build(ctx: BuildContext) -> TwilioTransport | FileSmsTransport:
    cfg = ctx.config.channels.sms
    if cfg.transport == "file":
        return FileSmsTransport(ctx.resolve(cfg.directory), ctx.definition, clock=ctx.clock)
    return TwilioTransport(
        cfg,
        ctx.definition,
        account_sid=secret_from_env(cfg.account_sid_env, purpose="Twilio account SID"),
        auth_token=secret_from_env(cfg.auth_token_env, purpose="Twilio auth token"),
        status_callback_url=ctx.callback_url("/hooks/twilio/status"),
        concurrency=cfg.concurrency or ctx.definition.rate.concurrency,
    )


def _resend_safe(ctx: BuildContext) -> bool:
    kind = FileSmsTransport if ctx.config.channels.sms.transport == "file" else TwilioTransport
    return kind.resend_safe


ADAPTER = Adapter(build=_build, resend_safe=_resend_safe)

__all__ = [
    "ADAPTER",
    "FileSmsTransport",
    "RebasedAsyncHttpClient",
    "TwilioTransport",
    "build_twilio_params",
    "classify_twilio_error",
    "sms_cost",
]
