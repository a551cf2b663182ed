"""The Standard Webhooks signature (standardwebhooks.com): HMAC-SHA256 over
``{webhook-id}.{webhook-timestamp}.{body}`` with the key the ``whsec_`` secret encodes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime

from network_anim.config.settings import WebhookSubscriber, secret_from_env
from network_anim.errors import UserError

_PREFIX = "whsec_"


def subscriber_key(subscriber: WebhookSubscriber) -> bytes:
    """The HMAC key of a subscriber, from the variable its ``secret_env`` names."""
    where = f"webhooks {subscriber.name}: secret_env {subscriber.secret_env}"
    secret = secret_from_env(subscriber.secret_env, purpose=f"webhooks {subscriber.name}")
    if not secret.startswith(_PREFIX):
        raise UserError(f"{where}: the secret must start with {_PREFIX}", [_HOW_TO_MAKE])
    try:
        key = base64.b64decode(secret.removeprefix(_PREFIX), validate=True)
    except binascii.Error:
        raise UserError(f"{where}: what follows {_PREFIX} is not base64", [_HOW_TO_MAKE]) from None
    if len(key) < 24:
        raise UserError(f"{where}: the key is {len(key)} bytes, give 24 to 64", [_HOW_TO_MAKE])
    return key


_HOW_TO_MAKE = "make one with: netanim webhooks secret"


def new_secret() -> str:
    import secrets

    return _PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def signed_headers(key: bytes, webhook_id: str, moment: datetime, body: str) -> dict[str, str]:
    """The headers of one attempt: signed at ``moment`` (the engine clock's now)."""
    timestamp = str(int(moment.timestamp()))
    content = f"{webhook_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode("ascii"),
    }
