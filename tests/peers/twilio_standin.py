"""A local stand-in of Twilio's Messages API (``CreateMessage`` of the 2010-04-01 API).

A real HTTP server on 127.0.0.1 (free port, background thread), so the official
``twilio`` client is exercised for real: URL building, Basic auth, form encoding, error
parsing. Shaped after ``/work/shared/twilio-oai/twilio_api_v2010.json``: form fields,
the 201 body of the spec's examples, Twilio's legacy error body
``{"code", "message", "more_info", "status"}``.

Fault injection is keyed by the ``To`` number (see :data:`DEFAULT_FAULTS`): an HTTP
status, a (status, Twilio code) pair, :class:`Delay` (answer 201, but late) or
:class:`Hangup` (close the connection without answering).

Register the fixture in ``tests/conftest.py``::

    from tests.peers.twilio_standin import twilio_standin  # noqa: F401
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs

import pytest

from network_anim.channels.sms_encoding import sms_segments

ACCOUNT_SID_RE = re.compile(r"^AC[0-9a-fA-F]{32}$")
MESSAGING_SERVICE_SID_RE = re.compile(r"^MG[0-9a-fA-F]{32}$")
E164_RE = re.compile(r"^\+[1-9]\d{1,14}$")
CONTENT_SID_RE = re.compile(r"^HX[0-9a-fA-F]{32}$")
PATH_RE = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")


@dataclass(frozen=True)
class Delay:
    """Answer normally, but only after ``seconds`` (longer than the client's timeout)."""

    seconds: float


@dataclass(frozen=True)
class Hangup:
    """Read the whole request, then close the connection without answering."""


Fault = int | tuple[int, int] | Delay | Hangup

# Numbers that trigger canned answers. All are valid E.164, in the French mobile range.
DEFAULT_FAULTS: dict[str, Fault] = {
    "+33600000429": 429,
    "+33600000500": 500,
    "+33600000503": 503,
    "+33600021610": (400, 21610),
    "+33600021211": (400, 21211),
    "+33600021614": (400, 21614),
    "+33600021408": (400, 21408),
    "+33600000999": Hangup(),
}

# Messages as Twilio words them (https://www.twilio.com/docs/api/errors).
ERROR_MESSAGES: dict[int, str] = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21211: "Invalid 'To' Phone Number",
    21408: (
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' number"
    ),
    21602: "Message body is required.",
    21603: "A 'From' or 'MessagingServiceSid' parameter is required to send a message",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
}
# The Twilio code that goes with a bare HTTP status fault.
STATUS_CODES: dict[int, int] = {401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the stand-in received it (the form decoded, one value per field)."""

    path: str
    form: dict[str, str]
    headers: dict[str, str]
    # Basic auth user and password, None when absent or not Basic.
    auth: tuple[str, str] | None
    # What the stand-in answered (0 for a hang-up), and the message SID it created.
    status: int
    sid: str | None = None


@dataclass
class TwilioStandin:
    """The server and its records. Use as a context manager, or through the fixture."""

    account_sid: str = field(default_factory=lambda: "AC" + secrets.token_hex(16))
    auth_token: str = field(default_factory=lambda: secrets.token_hex(16))
    faults: dict[str, Fault] = field(default_factory=lambda: dict(DEFAULT_FAULTS))
    # Applied to every accepted message when set (on top of per-number Delay faults).
    delay: float | None = None
    # Accepted (201) requests, in arrival order.
    requests: list[RecordedRequest] = field(default_factory=list)
    # Every POST received, whatever the answer.
    attempts: list[RecordedRequest] = field(default_factory=list)
    # Highest number of requests being handled at the same time (concurrency checks).
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._in_flight = 0

    # -- lifecycle

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("stand-in not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        handler = type("Handler", (_Handler,), {"standin": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            # A short poll interval keeps shutdown (and each test's teardown) quick.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="twilio-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        # Wake sleeping handlers first so shutdown does not wait for their delay.
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- request handling (called from server threads)

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.attempts.append(request)
            if request.status == 201:
                self.requests.append(request)

    def handle(
        self, path: str, form: dict[str, str], auth: tuple[str, str] | None
    ) -> tuple[tuple[int, dict[str, Any]], float]:
        """(Status, JSON body) and the delay before answering, for one POST."""
        if auth != (self.account_sid, self.auth_token):
            return _error(401, 20003), 0.0
        match = PATH_RE.match(path)
        if match is None or not ACCOUNT_SID_RE.match(match["sid"]):
            return _error(404, 20404), 0.0
        if match["sid"] != auth[0]:
            # Credentials of one account cannot create messages in another.
            return _error(401, 20003), 0.0
        to = form.get("To")
        if not to:
            return _error(400, 21604), 0.0
        content = form.get("ContentSid")
        if content is not None and not CONTENT_SID_RE.match(content):
            return _error(400, 21655, f"The ContentSid {content} is invalid."), 0.0
        if form.get("ContentVariables") and content is None:
            return _error(400, 21655, "ContentVariables needs a ContentSid."), 0.0
        if not form.get("Body") and content is None:
            return _error(400, 21602), 0.0
        # A channel address (whatsapp:+33...) carries an E.164 number after its prefix.
        channel, _, number = to.rpartition(":")
        if channel not in ("", "whatsapp"):
            return _error(400, 21211, f"The 'To' address {to} has an unknown channel."), 0.0
        if (
            channel
            and not form.get("MessagingServiceSid")
            and not form.get("From", "").startswith(f"{channel}:")
        ):
            return _error(400, 63007, "The 'From' address is not a WhatsApp sender."), 0.0
        service = form.get("MessagingServiceSid")
        if not form.get("From") and not service:
            return _error(400, 21603), 0.0
        if service is not None and not MESSAGING_SERVICE_SID_RE.match(service):
            return _error(400, 21603, f"Invalid MessagingServiceSid {service}"), 0.0
        if not E164_RE.match(number):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number."), 0.0
        fault = self.faults.get(to, self.faults.get(number))
        delay = self.delay or 0.0
        if isinstance(fault, Hangup):
            return (0, {}), 0.0
        if isinstance(fault, Delay):
            delay = max(delay, fault.seconds)
        elif isinstance(fault, tuple):
            return _error(*fault), 0.0
        elif isinstance(fault, int):
            return _error(fault, STATUS_CODES.get(fault, fault)), 0.0
        return (201, self._message(form, match["sid"])), delay

    def _message(self, form: dict[str, str], account_sid: str) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(UTC), usegmt=False)
        uri = f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}"
        body = form.get("Body", "")
        return {
            "account_sid": account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(sms_segments(body).segments),
            "price": None,
            "price_unit": None,
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": form["To"],
            "uri": f"{uri}.json",
        }


def _error(status: int, code: int, message: str | None = None) -> tuple[int, dict[str, Any]]:
    return status, {
        "code": code,
        "message": message or ERROR_MESSAGES.get(code, "Error"),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class _Handler(BaseHTTPRequestHandler):
    standin: TwilioStandin  # set on the subclass built in TwilioStandin.start
    # Keep-alive, like api.twilio.com, so the client's connection pool is exercised.
    protocol_version = "HTTP/1.1"
    # Idle keep-alive connections are dropped after this, so threads do not linger.
    timeout = 10

    def do_POST(self) -> None:
        self.standin._enter()
        try:
            self._answer()
        finally:
            self.standin._leave()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        form: dict[str, str] = {}
        if self.headers.get_content_type() == "application/x-www-form-urlencoded":
            parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
            form = {key: values[-1] for key, values in parsed.items()}
        auth = _basic_auth(self.headers.get("Authorization"))
        path = self.path.split("?", 1)[0]
        (status, body), delay = self.standin.handle(path, form, auth)
        headers = dict(self.headers.items())
        self.standin._record(RecordedRequest(path, form, headers, auth, status, body.get("sid")))
        if status == 0:  # Hangup: the request is in, the answer never comes
            self.close_connection = True
            return
        if delay and self.standin._stopping.wait(delay):
            self.close_connection = True
            return  # shutting down: drop the answer, like a server that went away
        payload = json.dumps(body).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (timeout) before the answer: nothing to do.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        # Silence the per-request stderr lines; the records are the log.
        pass


def _basic_auth(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except ValueError:
        return None
    return user, password


def unused_base_url() -> str:
    """A URL where nothing listens (a port just freed), to play a server that is down."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextmanager
def unresponsive_base_url() -> Iterator[str]:
    """A URL where the TCP handshake never completes (a connect timeout, nothing sent).

    A listening socket that never accepts, its accept queue filled by a few connections:
    Linux then drops further SYNs, so the client hangs in connect.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(4):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        yield f"http://127.0.0.1:{port}"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@pytest.fixture
def twilio_standin() -> Iterator[TwilioStandin]:
    """A started stand-in with :data:`DEFAULT_FAULTS`; fresh records for every test."""
    with TwilioStandin() as standin:
        yield standin
