"""A real IMAP server for tests: Debian's dovecot on 127.0.0.1, one throwaway instance.

The fixture writes a dovecot config in a temporary directory (its own base_dir, a free port, a
passwd-file user, maildir storage there, logs to a file there), runs
``dovecot -F -c <conf>`` as a child process and stops it after the test. It never
touches the system's dovecot (/etc/dovecot, /run/dovecot). Messages are delivered with
IMAP APPEND, as a mail server would file them::

    def test_x(imap_server: ImapPeer) -> None:
        imap_server.append("INBOX", raw_bytes)
        ...
        assert len(imap_server.messages("netanim/processed")) == 1

``imap_server_factory(tls=True)`` adds STARTTLS on the IMAP port and an implicit-TLS
port, with a self-signed certificate whose ``ssl_context`` the client trusts.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

__all__ = ["ImapPeer", "imap_server", "imap_server_factory"]

USER = "bounces"
PASSWORD = "s3cret-imap"  # a throwaway instance's own password, nothing real
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


@dataclass
class ImapPeer:
    host: str
    port: int
    user: str
    password: str
    root: Path
    process: subprocess.Popen[bytes]
    ssl_port: int | None = None
    ssl_context: ssl.SSLContext | None = None
    log: Path = field(default_factory=Path)

    def connect(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        client.login(self.user, self.password)
        return client

    def append(self, folder: str, raw: bytes) -> None:
        """Deliver one message (CRLF line ends, as IMAP wants them) into ``folder``."""
        data = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        client = self.connect()
        try:
            client.create(_quote(folder))  # NO when it exists: fine
            status, answer = client.append(_quote(folder), None, None, data)
            assert status == "OK", answer
        finally:
            client.logout()

    def messages(self, folder: str) -> list[bytes]:
        """The messages of ``folder`` (not flagged \\Deleted), oldest first; [] when the
        folder does not exist."""
        client = self.connect()
        try:
            status, _ = client.select(_quote(folder), readonly=True)
            if status != "OK":
                return []
            _, found = client.uid("SEARCH", "UNDELETED")
            out = []
            for uid in found[0].split():
                _, data = client.uid("FETCH", uid, "(BODY.PEEK[])")
                out.append(next(part[1] for part in data if isinstance(part, tuple)))
            return out
        finally:
            client.logout()

    def folders(self) -> list[str]:
        client = self.connect()
        try:
            _, listing = client.list()
            return sorted(line.decode().rsplit(' "/" ', 1)[-1].strip('"') for line in listing)
        finally:
            client.logout()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def _mail_account() -> tuple[int, int, str, str]:
    """The uid/gid mail is stored as, and dovecot's internal and login users: as root,
    the package's unprivileged users (dovecot refuses root for mail); otherwise the
    current user for all of them."""
    if os.geteuid() == 0:
        mail = pwd.getpwnam("dovecot")
        return mail.pw_uid, mail.pw_gid, "dovecot", "dovenull"
    me = pwd.getpwuid(os.geteuid())
    return me.pw_uid, me.pw_gid, me.pw_name, me.pw_name


def start_dovecot(root: Path, *, tls: bool = False, move: bool = True) -> ImapPeer:
    """``move=False``: the server announces neither MOVE nor UIDPLUS (older servers)."""
    if not Path(DOVECOT).exists():
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd; .ci/install)")
    root.mkdir(parents=True, exist_ok=True)
    uid, gid, internal_user, login_user = _mail_account()
    run_dir, mail_dir = root / "run", root / "mail"
    run_dir.mkdir()
    mail_dir.mkdir()
    os.chown(mail_dir, uid, gid)
    root.chmod(0o755)
    passwd = root / "passwd"
    passwd.write_text(f"{USER}:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{mail_dir}::\n", encoding="utf-8")
    port = _free_port()
    ssl_port = _free_port() if tls else None
    log = root / "dovecot.log"
    lines = [
        f"base_dir = {run_dir}",
        f"state_dir = {root / 'state'}",
        "protocols = imap",
        "listen = 127.0.0.1",
        f"log_path = {log}",
        f"info_log_path = {log}",
        f"default_internal_user = {internal_user}",
        f"default_login_user = {login_user}",
        f"default_internal_group = {pwd.getpwnam(internal_user).pw_name}"
        if os.geteuid() == 0
        else "",
        "disable_plaintext_auth = no",
        "auth_failure_delay = 0",  # the wrong-password test need not wait 2 s
        "auth_mechanisms = plain login",
        f"mail_location = maildir:{mail_dir}/Maildir:LAYOUT=fs",
        "mail_privileged_group =",
        f"first_valid_uid = {min(uid, 500)}",
        f"first_valid_gid = {min(gid, 500)}",
        "passdb {\n  driver = passwd-file\n  args = " + str(passwd) + "\n}",
        "userdb {\n  driver = passwd-file\n  args = " + str(passwd) + "\n}",
        "namespace inbox {\n  inbox = yes\n  separator = /\n}",
        "service anvil {\n  chroot =\n}",
        "service imap-login {\n  chroot =\n"
        f"  inet_listener imap {{\n    port = {port}\n  }}\n"
        f"  inet_listener imaps {{\n    port = {ssl_port or 0}\n"
        f"    ssl = {'yes' if tls else 'no'}\n  }}\n}}",
    ]
    if not move:
        lines.append("protocol imap {\n  imap_capability = IMAP4rev1 SASL-IR LITERAL+ IDLE\n}")
    context = None
    if tls:
        cert, key = _self_signed(root)
        lines += ["ssl = yes", f"ssl_cert = <{cert}", f"ssl_key = <{key}"]
        context = ssl.create_default_context(cafile=str(cert))
    else:
        lines.append("ssl = no")
    conf = root / "dovecot.conf"
    conf.write_text("\n".join(line for line in lines if line) + "\n", encoding="utf-8")
    process = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    peer = ImapPeer(
        host="127.0.0.1",
        port=port,
        user=USER,
        password=PASSWORD,
        root=root,
        process=process,
        ssl_port=ssl_port,
        ssl_context=context,
        log=log,
    )
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            out = process.stdout.read().decode(errors="replace") if process.stdout else ""
            logged = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"dovecot exited {process.returncode}: {out}\n{logged}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(100).startswith(b"* OK"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            peer.stop()
            raise RuntimeError("dovecot did not answer within 15 s: " + str(log))
        time.sleep(0.05)
    return peer


@pytest.fixture
def imap_server_factory() -> Iterator[Callable[..., ImapPeer]]:
    # Not in tmp_path: pytest makes its parents 0700, and dovecot's auth and mail
    # processes run as the package's unprivileged users, who must read the passwd file
    # and write the maildir.
    base = Path(tempfile.mkdtemp(prefix="netanim-dovecot-"))
    base.chmod(0o755)
    started: list[ImapPeer] = []

    def start(*, tls: bool = False, move: bool = True) -> ImapPeer:
        peer = start_dovecot(base / f"dovecot{len(started)}", tls=tls, move=move)
        started.append(peer)
        return peer

    try:
        yield start
    finally:
        for peer in started:
            peer.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def imap_server(imap_server_factory: Callable[..., ImapPeer]) -> ImapPeer:
    return imap_server_factory()
