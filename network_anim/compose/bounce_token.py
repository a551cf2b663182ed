"""The signed delivery token every email carries, and the envelope sender it makes (VERP).

A bounce or a complaint comes back to the envelope sender (``Return-Path``) and often
quotes the original's headers; both carry this token, so the report finds its delivery
(bounces/apply.py). The token names the delivery by the hash of its idempotency key (the
same hash the Message-ID carries, ``delivery.key_hash``): it is known when the row is
planned, before the database gives the row an id, so the planner writes it with the
rest of the message and a resend after a crash carries the same token.

Shape: base32 (lower case, no padding) of the 16 hash bytes and the LinkSigner MAC
(purpose "bounce", 12 bytes): 45 characters of ``[a-z2-7]``. Case does not matter (some
MTAs lower-case or upper-case the local parts they do not own), and
``bounces+<token>@domain`` stays within the 64 characters of a local part (RFC 5321
§4.5.3.1.1) for a ``verp_local_part`` of up to 18 characters.
"""

from __future__ import annotations

import base64
import binascii
from email.utils import parseaddr

from network_anim.channels.email_mime import ENVELOPE_EXTRA, ascii_address
from network_anim.compose.links import LinkSigner
from network_anim.config.settings import BounceSettings
from network_anim.errors import UserError

PURPOSE = "bounce"
DELIVERY_HEADER = "X-Netanim-Delivery"  # read back by bounces/clues.py from returned mail
_HASH_BYTES = 16  # the 32 hex digits of delivery.key_hash and of the Message-ID
_MAC_BYTES = 12
_LOCAL_PART_MAX = 64


def token_for(signer: LinkSigner, key_hash: str) -> str:
    """The token of the delivery whose key hashes to ``key_hash`` (32 hex digits)."""
    raw = bytes.fromhex(key_hash[: 2 * _HASH_BYTES])
    mac = signer.mac(PURPOSE, raw)
    return base64.b32encode(raw + mac).decode("ascii").rstrip("=").lower()


def key_hash_of(signer: LinkSigner, token: str) -> str | None:
    """The key hash a token names, or None when it is not one of ours (malformed,
    forged, altered, or signed with a key no longer known). Case-insensitive."""
    text = token.strip().upper()
    try:
        data = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return None
    if len(data) != _HASH_BYTES + _MAC_BYTES:
        return None
    if base64.b32encode(data).decode("ascii").rstrip("=") != text:
        return None  # the last character's unused bits set: not a token we wrote
    raw, mac = data[:_HASH_BYTES], data[_HASH_BYTES:]
    return raw.hex() if signer.mac_matches(PURPOSE, raw, mac) else None


def envelope_sender(settings: BounceSettings, sender: str, token: str) -> str:
    """The envelope sender (SMTP MAIL FROM, ``Return-Path``) of one email: VERP when
    ``verp_domain`` is set, else ``return_path``, else the sender's own address. A value
    that is not one plain mailbox is a UserError naming its setting (checked when the
    message is planned, not when the relay refuses it)."""
    address = _envelope(settings, sender, token)
    try:
        return ascii_address(address)
    except ValueError as exc:
        key = (
            "bounces.verp_domain"
            if settings.verp_domain
            else "bounces.return_path"
            if settings.return_path
            else "channels.email.sender"
        )
        raise UserError(f"{key}: the envelope sender {address!r} is not usable: {exc}") from None


def _envelope(settings: BounceSettings, sender: str, token: str) -> str:
    if settings.verp_domain:
        local = f"{settings.verp_local_part}+{token}"
        if len(local) > _LOCAL_PART_MAX:
            raise UserError(
                f"bounces.verp_local_part {settings.verp_local_part!r} is too long: "
                f"{settings.verp_local_part}+<token> must fit the 64 characters of an "
                "address's local part",
                [f"use at most {_LOCAL_PART_MAX - len(token) - 1} characters"],
            )
        return f"{local}@{settings.verp_domain}"
    if settings.return_path:
        return parseaddr(settings.return_path)[1] or settings.return_path
    return parseaddr(sender)[1]


__all__ = [
    "DELIVERY_HEADER",
    "ENVELOPE_EXTRA",
    "PURPOSE",
    "envelope_sender",
    "key_hash_of",
    "token_for",
]
