"""SendGrid's Event Webhook, with its signed requests.

SendGrid signs each POST with ECDSA (P-256, SHA-256) over the timestamp header's value
followed by the raw body; the base64 DER signature is in
``X-Twilio-Email-Event-Webhook-Signature``, the timestamp in
``X-Twilio-Email-Event-Webhook-Timestamp``, and the public key (base64 DER, as SendGrid's
settings show it, or PEM) in the variable ``[bounces] sendgrid_public_key_env``.

The body is a JSON array of events, mapped through ``EVENTS`` (``bounce`` by its ``type``,
``dropped`` by its ``reason``). Clues: a ``netanim_delivery`` custom argument (the token,
when sending sets one), ``smtp-id`` (our Message-ID), ``sg_message_id``, ``email``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from network_anim.bounces.clues import message_id
from network_anim.bounces.events import DeliveryRef, FeedbackEvent, FeedbackKind
from network_anim.bounces.providers.common import (
    ForgedRequest,
    WebhookResult,
    json_body,
    lower_address,
    provider_key,
    unix_time,
)
from network_anim.bounces.statuses import kind_of
from network_anim.bounces.unreadable import UnreadableReport

SOURCE = "sendgrid"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
CUSTOM_ARG_TOKEN = "netanim_delivery"

# event -> kind, or a reader's name for the events whose kind depends on a field.
EVENTS: dict[str, FeedbackKind | str | None] = {
    "bounce": "bounce",
    "dropped": "dropped",
    "spamreport": FeedbackKind.COMPLAINT,
    "unsubscribe": FeedbackKind.UNSUBSCRIBE,
    "group_unsubscribe": FeedbackKind.UNSUBSCRIBE,
    "deferred": None,  # the receiving server said try later; SendGrid retries (72 h)
    "processed": None,
    "delivered": None,
    "open": None,
    "click": None,
    "group_resubscribe": None,
}
# bounce "type": a "blocked" bounce is a refusal of the message or the IP, not the address.
BOUNCE_TYPES = {"bounce": FeedbackKind.HARD_BOUNCE, "blocked": FeedbackKind.SOFT_BOUNCE}
# dropped "reason" (SendGrid's suppression lists) -> kind; others (spam content...): none.
DROP_REASONS: tuple[tuple[str, FeedbackKind], ...] = (
    ("bounced address", FeedbackKind.HARD_BOUNCE),
    ("invalid", FeedbackKind.HARD_BOUNCE),
    ("spam reporting address", FeedbackKind.COMPLAINT),
    ("unsubscribed address", FeedbackKind.UNSUBSCRIBE),
)


def load_public_key(text: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import (
        load_der_public_key,
        load_pem_public_key,
    )

    try:
        if "BEGIN PUBLIC KEY" in text:
            key = load_pem_public_key(text.encode("ascii"))
        else:
            key = load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
    except (ValueError, binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("not a base64 DER or PEM public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an elliptic-curve (ECDSA) public key")
    return key


def verify_signature(body: bytes, headers: Mapping[str, str], public_key: Any) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    signature = headers.get(SIGNATURE_HEADER.lower()) or headers.get(SIGNATURE_HEADER)
    timestamp = headers.get(TIMESTAMP_HEADER.lower()) or headers.get(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise ForgedRequest(f"SendGrid webhook without {SIGNATURE_HEADER} and {TIMESTAMP_HEADER}")
    try:
        der = base64.b64decode(signature.strip(), validate=True)
        public_key.verify(der, timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature) as exc:
        raise ForgedRequest("the SendGrid signature does not verify") from exc


def _kind(item: Mapping[str, Any]) -> FeedbackKind | None:
    rule = EVENTS.get(str(item.get("event")))
    if rule == "bounce":
        bounce_type = str(item.get("type") or "bounce")
        status = str(item.get("status") or "")
        if bounce_type == "bounce" and status[:1] == "4":
            return kind_of(status)  # a 4.x.x "bounce" is transient whatever its type says
        return BOUNCE_TYPES.get(bounce_type, FeedbackKind.SOFT_BOUNCE)
    if rule == "dropped":
        reason = str(item.get("reason") or "").lower()
        return next((kind for words, kind in DROP_REASONS if words in reason), None)
    return rule if isinstance(rule, FeedbackKind) else None


def _event(item: Mapping[str, Any], kind: FeedbackKind) -> FeedbackEvent:
    recipient = lower_address(item.get("email"))
    status = str(item.get("status") or item.get("type") or item.get("event"))
    token = item.get(CUSTOM_ARG_TOKEN)
    ours = message_id(str(item.get("smtp-id") or ""))
    provider_id = item.get("sg_message_id")
    return FeedbackEvent(
        kind=kind,
        source=SOURCE,
        key=provider_key(SOURCE, item.get("sg_event_id"), item.get("event"), recipient, status),
        ref=DeliveryRef(
            token=token if isinstance(token, str) and token else None,
            message_id=ours or (str(provider_id).split(".")[0] if provider_id else None),
            recipient=recipient,
        ),
        occurred_at=unix_time(item.get("timestamp")),
        status=status,
        diagnostic=" ".join(str(item.get("reason") or item.get("response") or "").split())[:500],
    )


def read_events(items: Any) -> WebhookResult:
    if not isinstance(items, list):
        raise UnreadableReport("the SendGrid body is not a JSON array of events")
    events: list[FeedbackEvent] = []
    ignored = 0
    for item in items:
        if not isinstance(item, dict) or "event" not in item:
            raise UnreadableReport("a SendGrid event is not an object with an 'event'")
        kind = _kind(item)
        if kind is None:
            ignored += 1
            continue
        events.append(_event(item, kind))
    return WebhookResult(events, f"SendGrid: {len(events)} feedback event(s), {ignored} other(s)")


def parse_sendgrid(body: bytes, headers: Mapping[str, str], *, public_key: Any) -> WebhookResult:
    verify_signature(body, headers, public_key)
    return read_events(json_body(body))


__all__ = [
    "DROP_REASONS",
    "EVENTS",
    "load_public_key",
    "parse_sendgrid",
    "read_events",
    "verify_signature",
]
