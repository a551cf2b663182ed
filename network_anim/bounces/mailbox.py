"""The bounce mailbox over IMAP (stdlib ``imaplib``): fetch, hand over, file away.

``poll_mailbox`` reads every message of ``[bounces.mailbox] folder`` by UID, hands each
one's bytes to a callback, then moves it to ``processed_folder`` (the callback returned)
or ``unreadable_folder`` (it raised :class:`UnreadableReport`), creating the folders if
needed; MOVE when the server has it (RFC 6851), else COPY + ``\\Deleted`` + EXPUNGE.

It is idempotent by design rather than by bookkeeping: the callback's effects are keyed
by each event's key, so a crash after the callback and before the move only means the
message is read again next time, and changes nothing then. Credentials come from the
environment variables the settings name; they are never logged.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from network_anim.bounces.unreadable import UnreadableReport
from network_anim.config.settings import BounceMailbox
from network_anim.errors import UserError

log = logging.getLogger("netanim.bounces.mailbox")

# Messages read per poll at most: a tick stays short; the rest waits for the next one.
DEFAULT_LIMIT = 500


class MailboxUnavailable(Exception):
    """The server cannot be reached or broke the session: retried on the next poll."""


@dataclass
class MailboxStats:
    read: int = 0
    processed: int = 0
    unreadable: int = 0
    # (uid, reason) of each unreadable message, for the log
    problems: list[tuple[str, str]] = field(default_factory=list)


def credentials(
    settings: BounceMailbox, environ: Mapping[str, str] | None = None
) -> tuple[str, str]:
    environ = os.environ if environ is None else environ
    values = []
    for key, name in (
        ("username_env", settings.username_env),
        ("password_env", settings.password_env),
    ):
        value = environ.get(name)
        if not value:
            raise UserError(
                f"[bounces.mailbox] {key}: environment variable {name} is not set",
                [
                    f"export {name}=... before starting the daemon (or set {key} to another variable)"
                ],
            )
        values.append(value)
    return values[0], values[1]


def connect(
    settings: BounceMailbox,
    *,
    environ: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> imaplib.IMAP4:
    """A logged-in session with the settings' security; ``ssl_context`` replaces the
    system's trust store (tests bring their own certificate authority)."""
    if not settings.host:
        raise UserError("[bounces.mailbox] host is not set: there is no bounce mailbox to read")
    user, password = credentials(settings, environ)
    port = settings.port or (993 if settings.security == "ssl" else 143)
    where = f"{settings.host}:{port}"
    context = ssl_context or ssl.create_default_context()
    try:
        if settings.security == "ssl":
            client: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                settings.host, port, ssl_context=context, timeout=settings.timeout
            )
        else:
            client = imaplib.IMAP4(settings.host, port, timeout=settings.timeout)
            if settings.security == "starttls":
                client.starttls(ssl_context=context)
    except (TimeoutError, OSError, imaplib.IMAP4.error) as exc:
        raise MailboxUnavailable(f"bounce mailbox {where}: {exc}") from exc
    try:
        client.login(user, password)
    except imaplib.IMAP4.error as exc:
        _close(client)
        raise UserError(
            f"[bounces.mailbox] {where} refused the login of ${settings.username_env}",
            [f"check ${settings.username_env} and ${settings.password_env} ({_text(exc)})"],
        ) from exc
    except OSError as exc:
        _close(client)
        raise MailboxUnavailable(f"bounce mailbox {where}: {exc}") from exc
    return client


def _text(exc: BaseException) -> str:
    words = exc.args[0] if exc.args else exc
    return words.decode(errors="replace") if isinstance(words, bytes) else str(words)


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _close(client: imaplib.IMAP4) -> None:
    with contextlib.suppress(OSError, imaplib.IMAP4.error):  # the session is gone either way
        client.logout()


def _check(status: str, data: list, what: str) -> list:
    if status != "OK":
        raise MailboxUnavailable(f"{what}: {status} {_text(Exception(*data)) if data else ''}")
    return data


def _capabilities(client: imaplib.IMAP4) -> set[str]:
    # Asked after login: servers announce more (MOVE, UIDPLUS) once authenticated.
    status, data = client.capability()
    if status != "OK" or not data or data[0] is None:
        return set(client.capabilities)
    return {word.upper() for word in data[0].decode(errors="replace").split()}


def _ensure_folder(client: imaplib.IMAP4, folder: str) -> None:
    status, data = client.create(_quote(folder))
    if status != "OK" and b"ALREADYEXISTS" not in b" ".join(d for d in data if d).upper():
        # Some servers say "NO Mailbox exists" without the response code: check it is there.
        status, found = client.list('""', _quote(folder))
        if status != "OK" or not [f for f in found if f]:
            raise MailboxUnavailable(f"cannot create the folder {folder}: {data}")


def _move(client: imaplib.IMAP4, uids: list[bytes], folder: str, can_move: bool) -> None:
    if not uids:
        return
    _ensure_folder(client, folder)
    uid_set = b",".join(uids).decode()
    if can_move:
        _check(*client.uid("MOVE", uid_set, _quote(folder)), f"MOVE to {folder}")
        return
    _check(*client.uid("COPY", uid_set, _quote(folder)), f"COPY to {folder}")
    _check(*client.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Deleted)"), "STORE \\Deleted")
    # Without UIDPLUS, EXPUNGE removes every \Deleted message of the folder, ours and
    # any a person flagged: the bounce folder is ours alone, that is the deal.
    if "UIDPLUS" in _capabilities(client):
        _check(*client.uid("EXPUNGE", uid_set), "UID EXPUNGE")
    else:
        _check(*client.expunge(), "EXPUNGE")


def _fetch(client: imaplib.IMAP4, uid: bytes) -> bytes | None:
    status, data = client.uid("FETCH", uid, "(BODY.PEEK[])")
    _check(status, data, f"FETCH {uid.decode()}")
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            return item[1]
    return None  # expunged by someone else meanwhile


def poll_mailbox(
    settings: BounceMailbox,
    handle: Callable[[bytes], object],
    *,
    environ: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    limit: int = DEFAULT_LIMIT,
) -> MailboxStats:
    """Read the folder once. ``handle(raw)`` processes one message; raising
    UnreadableReport files it as unreadable; any other exception stops the poll after
    the messages already handled are filed (the rest stays for the next poll)."""
    stats = MailboxStats()
    client = connect(settings, environ=environ, ssl_context=ssl_context)
    try:
        can_move = "MOVE" in _capabilities(client)
        _check(*client.select(_quote(settings.folder)), f"SELECT {settings.folder}")
        status, data = client.uid("SEARCH", "UNDELETED")
        uids = _check(status, data, "SEARCH")[0].split()[:limit]
        processed: list[bytes] = []
        unreadable: list[bytes] = []
        try:
            for uid in uids:
                raw = _fetch(client, uid)
                if raw is None:
                    continue
                stats.read += 1
                try:
                    handle(raw)
                except UnreadableReport as exc:
                    unreadable.append(uid)
                    stats.problems.append((uid.decode(), exc.reason))
                    log.warning(
                        "bounce mailbox: message UID %s unreadable: %s", uid.decode(), exc.reason
                    )
                else:
                    processed.append(uid)
        finally:
            # What was handled is filed even when a later message stopped the poll.
            _move(client, processed, settings.processed_folder, can_move)
            _move(client, unreadable, settings.unreadable_folder, can_move)
            stats.processed, stats.unreadable = len(processed), len(unreadable)
    except (OSError, imaplib.IMAP4.abort) as exc:
        raise MailboxUnavailable(f"bounce mailbox {settings.host}: {exc}") from exc
    finally:
        _close(client)
    return stats


__all__ = ["MailboxStats", "MailboxUnavailable", "connect", "credentials", "poll_mailbox"]
