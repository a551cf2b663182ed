"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, recording and fault-injecting.

Tests talk to it over TCP with the production transport, so nothing of aiosmtplib is
mocked. The server runs in its own thread and event loop (aiosmtpd's ``Controller``).

Use the ``smtp_server`` fixture for a plain server, or ``smtp_server_factory`` for one
with STARTTLS, implicit TLS or AUTH::

    def test_x(smtp_server: SmtpPeer) -> None:
        smtp_server.fail("nobody@example.com", MAILBOX_UNAVAILABLE)
        ...
        assert smtp_server.messages[0].rcpt_tos == ("someone@example.com",)
        assert smtp_server.connections == 1

Register both fixtures with ``pytest_plugins = ["tests.peers.smtp_server"]`` in
``tests/conftest.py`` (or import them into a test module).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Literal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = [
    "MAILBOX_UNAVAILABLE",
    "SERVICE_CLOSING",
    "TRY_LATER",
    "Fault",
    "Received",
    "SmtpPeer",
    "make_tls_contexts",
    "smtp_server",
    "smtp_server_factory",
]


@dataclass(frozen=True, slots=True)
class Received:
    """One message the server accepted (or swallowed, for the drop/hang faults)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes  # the message as received, dot-unstuffed, CRLF line ends
    tls: bool = False  # the session was encrypted (STARTTLS or implicit TLS)

    def message(self) -> EmailMessage:
        """The message parsed with the strict default policy."""
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass(slots=True)
class Fault:
    """What the server does instead of accepting, at RCPT or after the DATA payload.

    ``reply`` is the full reply line (``"451 4.3.0 try later"``), or None to send none.
    ``close`` closes the connection after the reply (what a real server does after 421).
    ``delay`` waits that many seconds before replying (a slow or hung server).
    ``times`` limits how many messages the fault hits (None: every one).
    """

    stage: Literal["mail", "rcpt", "data"]
    reply: str | None
    close: bool = False
    delay: float = 0.0
    times: int | None = None

    @classmethod
    def drop_at_mail(cls, *, times: int | None = None) -> Fault:
        """Close the connection on MAIL FROM without a reply (a session that timed out
        on the server just as the client reused it). Applies through ``fail_all``."""
        return cls("mail", None, close=True, times=times)

    @classmethod
    def at_rcpt(cls, reply: str, *, close: bool = False, times: int | None = None) -> Fault:
        return cls("rcpt", reply, close=close, times=times)

    @classmethod
    def at_data(cls, reply: str, *, close: bool = False, times: int | None = None) -> Fault:
        """Reply ``reply`` after the whole payload was received."""
        return cls("data", reply, close=close, times=times)

    @classmethod
    def drop_after_data(cls, *, times: int | None = None) -> Fault:
        """Receive the payload, then close the connection without any reply."""
        return cls("data", None, close=True, times=times)

    @classmethod
    def hang_after_data(cls, seconds: float, *, times: int | None = None) -> Fault:
        """Receive the payload, then stay silent for ``seconds`` before answering 250."""
        return cls("data", "250 OK late", delay=seconds, times=times)


SERVICE_CLOSING = Fault.at_rcpt(
    "421 4.3.2 Service not available, closing transmission channel", close=True
)
TRY_LATER = Fault.at_rcpt("451 4.3.0 try again later")
MAILBOX_UNAVAILABLE = Fault.at_rcpt("550 5.1.1 mailbox unavailable")


class _CountingSMTP(SMTP):
    """aiosmtpd's protocol, telling the peer about each new TCP connection."""

    def __init__(self, handler: Any, *, on_connect: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._on_connect = on_connect

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # STARTTLS calls connection_made again on the same protocol: not a new connection.
        is_new = self.transport is None
        super().connection_made(transport)
        if is_new:
            self._on_connect()


class _PeerController(Controller):
    def __init__(self, peer: SmtpPeer, **kwargs: Any) -> None:
        super().__init__(peer, **kwargs)
        self._peer = peer

    def factory(self) -> SMTP:
        on_connect = self._peer._count_connection
        return _CountingSMTP(self.handler, on_connect=on_connect, **self.SMTP_kwargs)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(eq=False)
class SmtpPeer:
    """aiosmtpd server plus the handler that records envelopes and injects faults.

    ``starttls`` offers STARTTLS with that server context; ``implicit_tls`` wraps the
    whole connection (port 465 style); ``credentials`` turns on AUTH (PLAIN/LOGIN, no
    TLS required so tests stay simple); ``idle_timeout`` makes the server close a
    session silent for that many seconds (aiosmtpd's default is 300); ``pipelining``
    advertises PIPELINING (RFC 2920), which aiosmtpd does not by default although it
    reads pipelined commands in order, as the standard asks.
    """

    starttls: ssl.SSLContext | None = None
    implicit_tls: ssl.SSLContext | None = None
    credentials: tuple[str, str] | None = None
    idle_timeout: float | None = None
    pipelining: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[Received] = field(default_factory=list)
    faults: dict[str, Fault] = field(default_factory=dict)
    default_fault: Fault | None = None
    connections: int = 0
    quits: int = 0
    auth_attempts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None

    # -- set-up ------------------------------------------------------------------------

    def start(self) -> SmtpPeer:
        self.port = _free_port()
        kwargs: dict[str, Any] = {"server_hostname": "peer.test", "ready_timeout": 5.0}
        if self.starttls is not None:
            kwargs["tls_context"] = self.starttls
        if self.implicit_tls is not None:
            kwargs["ssl_context"] = self.implicit_tls
        if self.idle_timeout is not None:
            kwargs["timeout"] = self.idle_timeout
        if self.credentials is not None:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_require_tls"] = False
        self._controller = _PeerController(self, hostname=self.host, port=self.port, **kwargs)
        self._controller.start()
        # Controller.start() opens one connection of its own to check the server is up.
        with self._lock:
            self.connections = 0
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpPeer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def fail(self, address: str, fault: Fault) -> None:
        """Apply ``fault`` to messages for ``address``."""
        self.faults[address.lower()] = fault

    def fail_all(self, fault: Fault | None) -> None:
        """Apply ``fault`` to every recipient without a fault of its own (None: stop)."""
        self.default_fault = fault

    def received_for(self, address: str) -> list[Received]:
        return [m for m in self.messages if address.lower() in (r.lower() for r in m.rcpt_tos)]

    # -- aiosmtpd handler hooks (run in the server's thread) ---------------------------

    def _count_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def _fault_for(self, address: str, stage: str) -> Fault | None:
        with self._lock:
            fault = self.faults.get(address.lower(), self.default_fault)
            if fault is None or fault.stage != stage:
                return None
            if fault.times is not None:
                if fault.times <= 0:
                    return None
                fault.times -= 1
            return fault

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            # Before the last line ("250 HELP"): every line but the last has "250-".
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        # The sender is not a recipient: only ``fail_all`` faults apply at MAIL.
        fault = self._fault_for("", "mail")
        if fault is not None:
            return await self._reply(server, fault)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        fault = self._fault_for(address, "rcpt")
        if fault is not None:
            return await self._reply(server, fault)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        transport = server.transport
        tls = transport is not None and transport.get_extra_info("ssl_object") is not None
        received = Received(
            envelope.mail_from or "", tuple(envelope.rcpt_tos), bytes(data), tls=tls
        )
        fault = next(
            (f for f in (self._fault_for(a, "data") for a in envelope.rcpt_tos) if f), None
        )
        refused = fault is not None and fault.reply is not None and fault.reply[0] in "45"
        if not refused:
            # Dropped or slow answers still count as received: the point of those faults
            # is a server that has the message while the client cannot know it.
            with self._lock:
                self.messages.append(received)
        if fault is not None:
            return await self._reply(server, fault)
        return "250 2.0.0 OK queued"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            self.quits += 1
        return "221 Bye"

    async def _reply(self, server: SMTP, fault: Fault) -> str:
        """The reply aiosmtpd should push, after the fault's delay; or close, never reply."""
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if not fault.close:
            assert fault.reply is not None
            return fault.reply
        if fault.reply is not None:
            await server.push(fault.reply)
        if server.transport is not None:
            server.transport.close()
        # connection_lost cancels this coroutine, so aiosmtpd never pushes a reply on the
        # closed transport.
        await asyncio.Event().wait()
        raise AssertionError("unreachable")  # pragma: no cover

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        with self._lock:
            self.auth_attempts += 1
        if self.credentials is None or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        username, password = self.credentials
        ok = auth_data.login == username.encode() and auth_data.password == password.encode()
        return AuthResult(success=ok, handled=False)


def make_tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A throw-away self-signed certificate for 127.0.0.1: (server context, client context).

    Needs the ``cryptography`` package; tests using it should ``importorskip`` it.
    """
    import datetime as dt
    import ipaddress
    import tempfile
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "peer.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # load_cert_chain only reads files.
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert_file.write_bytes(cert_pem)
        key_file.write_bytes(key_pem)
        server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=cert_pem.decode("ascii"))
    return server, client


@pytest.fixture
def smtp_server() -> Iterator[SmtpPeer]:
    """A running recording SMTP server on 127.0.0.1 (plain, no AUTH)."""
    with SmtpPeer() as peer:
        yield peer


@pytest.fixture
def smtp_server_factory() -> Iterator[Callable[..., SmtpPeer]]:
    """Start servers with :class:`SmtpPeer` options (``starttls=``, ``credentials=``...)."""
    peers: list[SmtpPeer] = []

    def start(**options: Any) -> SmtpPeer:
        peer = SmtpPeer(**options).start()
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        peer.stop()
