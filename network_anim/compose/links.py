"""HMAC-signed links: post links, unsubscribe links, tracked clicks.

A token is ``payload.mac`` in URL-safe base64: the payload is compact JSON, the MAC is a
truncated HMAC-SHA256 over a purpose label and the payload, so a token minted for one
purpose (say, reading a post) can never be replayed for another (unsubscribing).

Key rotation: new tokens are signed with the current key; a token verifies with the current
key or any previous one (``<secret_key_env>_PREVIOUS``, comma-separated), so changing the
key never breaks the unsubscribe and tracking links of messages already sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

from network_anim.config.env_overrides import previous_secrets_env
from network_anim.errors import UserError

_MAC_BYTES = 12  # 96 bits: far beyond guessing, short enough for an SMS link
MIN_ENV_SECRET = 32  # characters of a key given in the environment
_HREF = re.compile(r"""\bhref\s*=\s*(["'])(.*?)\1""", re.IGNORECASE | re.DOTALL)
_HREF_LOWERED = re.compile(r"""href\s*=\s*(["'])(.*?)\1""", re.DOTALL)  # literal start
_WORD = re.compile(r"\w")


class BadToken(ValueError):
    """A token that was forged, altered, truncated or minted for another purpose."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _compact_json(payload: Any) -> str:
    """``json.dumps(payload, separators=(",", ":"), ensure_ascii=False)``, faster for the
    short lists of ints and strings every token carries (several per planned message)."""
    if type(payload) is list:
        parts = []
        for item in payload:
            kind = type(item)
            if kind is int:
                parts.append(str(item))
            elif kind is str:
                parts.append(encode_basestring(item))
            else:
                return _ENCODE(payload)
        return "[" + ",".join(parts) + "]"
    return _ENCODE(payload)


class _Key:
    """One signing key, with its purpose prefix hashed once per purpose: each token copies
    that state instead of hashing the key again."""

    __slots__ = ("_key", "_prefixed")

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._prefixed: dict[str, Any] = {}

    def mac(self, purpose: str, payload: bytes) -> bytes:
        prefixed = self._prefixed.get(purpose)
        if prefixed is None:
            prefixed = hmac.new(self._key, purpose.encode() + b"\0", hashlib.sha256)
            self._prefixed[purpose] = prefixed
        mac = prefixed.copy()
        mac.update(payload)
        return mac.digest()[:_MAC_BYTES]

    def __repr__(self) -> str:
        return "<signing key>"  # never the key itself, in a log or a traceback


class LinkSigner:
    """Signs with ``secret``; verifies with it, then with each of ``previous`` in order."""

    def __init__(self, secret: bytes, base_url: str, *, previous: Sequence[bytes] = ()) -> None:
        if any(len(key) < 16 for key in (secret, *previous)):
            raise ValueError("a signing secret must be at least 16 bytes")
        # The current key may still be listed among the previous ones mid-rotation: once.
        self._keys = tuple(_Key(key) for key in dict.fromkeys((secret, *previous)))
        self._current = self._keys[0]
        self.base_url = base_url.rstrip("/")

    def sign(self, purpose: str, payload: Any) -> str:
        raw = _compact_json(payload).encode()
        return f"{_b64(raw)}.{_b64(self._current.mac(purpose, raw))}"

    def verify(self, purpose: str, token: str) -> Any:
        try:
            raw_b64, mac_b64 = token.split(".", 1)
            raw, mac = _unb64(raw_b64), _unb64(mac_b64)
        except (ValueError, UnicodeError):
            raise BadToken("malformed token") from None
        if not any(hmac.compare_digest(mac, key.mac(purpose, raw)) for key in self._keys):
            raise BadToken("bad signature")
        try:
            return json.loads(raw)
        except ValueError:
            raise BadToken("malformed payload") from None

    def mac(self, purpose: str, payload: bytes) -> bytes:
        """The current key's MAC of raw bytes, for tokens that need their own encoding
        (the bounce token must survive a lower-cased email address: base32)."""
        return self._current.mac(purpose, payload)

    def mac_matches(self, purpose: str, payload: bytes, mac: bytes) -> bool:
        """Whether ``mac`` is the MAC of ``payload`` under the current or a previous key."""
        return any(hmac.compare_digest(mac, key.mac(purpose, payload)) for key in self._keys)

    # The URLs messages carry. The portal (web app) serves these paths.
    def post_url(self, post_id: int, contact_id: int) -> str:
        return f"{self.base_url}/p/{self.sign('post', [post_id, contact_id])}"

    def unsubscribe_url(self, contact_id: int, channel: str) -> str:
        return f"{self.base_url}/u/{self.sign('unsubscribe', [contact_id, channel])}"

    def click_url(self, delivery_key: str, link_id: int) -> str:
        """A tracked click of delivery ``delivery_key`` on stored link ``link_id`` (the
        ``links`` table): the token names the link, never its URL."""
        return f"{self.base_url}/c/{self.sign('click', [delivery_key, link_id])}"

    def open_pixel_url(self, delivery_key: str) -> str:
        """The 1x1 image an HTML email loads: an open of delivery ``delivery_key``."""
        return f"{self.base_url}/o/{self.sign('open', [delivery_key])}.gif"

    def track_html(self, body: str, delivery_key: str, link_id: Callable[[str], int | None]) -> str:
        """An HTML email with every outside http(s) link wrapped in a signed click URL and
        the open pixel added before ``</body>`` (or at the end).

        ``link_id(url)`` is the stored link of each outside target (stored on first sight,
        see :mod:`network_anim.compose.stored_links`); a target it gives no id for is
        left as written. Links to this server (post, unsubscribe, already wrapped) are
        left alone: the post link records its own click, and the unsubscribe link must
        never be a redirect.
        """
        folded = body.lower()
        pieces: list[str] = []
        done = 0
        for start, end, quote, value in _hrefs(body, folded):
            url = html.unescape(value).strip()
            own = url == self.base_url or url.startswith(self.base_url + "/")
            if own or not url.lower().startswith(("http://", "https://")):
                continue
            stored = link_id(url)
            if stored is None:
                continue
            pieces += (
                body[done:start],
                f"href={quote}{self.click_url(delivery_key, stored)}{quote}",
            )
            done = end
        tracked = "".join((*pieces, body[done:])) if pieces else body
        pixel = (
            f'<img src="{self.open_pixel_url(delivery_key)}" width="1" height="1" alt="" '
            'style="display:block;border:0;width:1px;height:1px">'
        )
        end = (tracked.lower() if pieces else folded).rfind("</body>")
        return tracked + pixel if end < 0 else tracked[:end] + pixel + tracked[end:]


def _hrefs(body: str, folded: str) -> Iterator[tuple[int, int, str, str]]:
    """(start, end, quote, value) of every ``_HREF`` match in ``body``, in order.

    ``_HREF`` is case-insensitive and starts with ``\\b``, so the regular expression engine
    tries it at every character (tens of microseconds per email, for every planned
    email). Only ASCII letters match "href" case-insensitively, so a literal search in the
    lowered text finds the same places, when lowering kept every character's position.
    """
    if len(folded) != len(body):  # a character lowered into several: positions moved
        for match in _HREF.finditer(body):
            yield match.start(), match.end(), match.group(1), match.group(2)
        return
    position = 0
    while (match := _HREF_LOWERED.search(folded, position)) is not None:
        start = match.start()
        if start and _WORD.match(body, start - 1):  # no word boundary before "href"
            position = start + 1
            continue
        yield start, match.end(), match.group(1), body[match.start(2) : match.end(2)]
        position = match.end()


def load_secret(env_var: str, data_dir: Path) -> bytes:
    """The signing secret: from the environment, else a key generated once in ``data_dir``.

    The generated key keeps the embedded default working without any credential; a
    deployment sets the environment variable instead (several daemons must share it).
    """
    value = os.environ.get(env_var)
    if value:
        if len(value) < MIN_ENV_SECRET:
            raise UserError(
                f"environment variable {env_var} is too short: "
                f"use at least {MIN_ENV_SECRET} characters"
            )
        return value.encode()
    key_file = data_dir / "secret.key"
    if key_file.exists():
        return key_file.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48).encode()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def load_previous_secrets(env_var: str) -> tuple[bytes, ...]:
    """The retired keys links still verify with, from ``<env_var>_PREVIOUS`` (comma-separated,
    newest first; unset or empty: none). Messages never name a key, only its position."""
    name = previous_secrets_env(env_var)
    keys = [item.strip() for item in os.environ.get(name, "").split(",")]
    for position, key in enumerate(keys, 1):
        if key and len(key) < MIN_ENV_SECRET:
            raise UserError(
                f"environment variable {name}: key {position} is too short: "
                f"use at least {MIN_ENV_SECRET} characters",
                ["keys are separated by commas, newest first"],
            )
    return tuple(key.encode() for key in keys if key)
