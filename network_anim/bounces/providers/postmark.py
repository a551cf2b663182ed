"""Postmark's webhooks: Bounce, SpamComplaint and SubscriptionChange records.

Postmark does not sign its webhooks; its documentation protects them with HTTP Basic
credentials in the webhook URL (``https://user:password@host/hooks/bounces/postmark``)
or with custom HTTP headers set on the webhook. The secret is read from the variable
``[bounces] postmark_token_env``: ``user:password`` (or only the password) for Basic
authentication, or the value of an ``X-Netanim-Webhook-Token`` header. Either must match,
compared in constant time.

Types map through ``BOUNCE_TYPES`` (Postmark's bounce type names) and
``SUPPRESSION_REASONS``; ``Metadata.netanim_delivery`` (set with
``X-PM-Metadata-netanim_delivery`` when sending) is the token when present, and
``MessageID`` is Postmark's id of the message (the SMTP send records it).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from typing import Any

from network_anim.bounces.events import DeliveryRef, FeedbackEvent, FeedbackKind
from network_anim.bounces.providers.common import (
    ForgedRequest,
    WebhookResult,
    iso_time,
    json_body,
    lower_address,
    provider_key,
)
from network_anim.bounces.unreadable import UnreadableReport

SOURCE = "postmark"
TOKEN_HEADER = "X-Netanim-Webhook-Token"
METADATA_TOKEN = "netanim_delivery"

# Bounce "Type" (Postmark's bounce types) -> kind; None: no event.
BOUNCE_TYPES: dict[str, FeedbackKind | None] = {
    "HardBounce": FeedbackKind.HARD_BOUNCE,
    "BadEmailAddress": FeedbackKind.HARD_BOUNCE,
    "ManuallyDeactivated": FeedbackKind.HARD_BOUNCE,
    "Undeliverable": FeedbackKind.HARD_BOUNCE,
    "SoftBounce": FeedbackKind.SOFT_BOUNCE,
    "Transient": FeedbackKind.SOFT_BOUNCE,
    "DnsError": FeedbackKind.SOFT_BOUNCE,
    "Blocked": FeedbackKind.SOFT_BOUNCE,  # refused for the content or the IP, not the address
    "ContentRelated": FeedbackKind.SOFT_BOUNCE,
    "DMARCPolicy": FeedbackKind.SOFT_BOUNCE,
    "SpamNotification": FeedbackKind.COMPLAINT,
    "SpamComplaint": FeedbackKind.COMPLAINT,
    "AutoResponder": FeedbackKind.AUTO_REPLY,
    "ChallengeVerification": FeedbackKind.AUTO_REPLY,
    "Unsubscribe": FeedbackKind.UNSUBSCRIBE,
    "Subscribe": None,
    "AddressChange": None,
    "VirusNotification": None,
    "OpenRelayTest": None,
    "SMTPApiError": None,
    "InboundError": None,
    "Unknown": None,
}
# SubscriptionChange with SuppressSending true: why Postmark stops sending.
SUPPRESSION_REASONS: dict[str, FeedbackKind] = {
    "HardBounce": FeedbackKind.HARD_BOUNCE,
    "SpamComplaint": FeedbackKind.COMPLAINT,
    "ManualSuppression": FeedbackKind.UNSUBSCRIBE,  # the recipient (or we) unsubscribed
}


def check_credentials(headers: Mapping[str, str], secret: str) -> None:
    """ForgedRequest(401) unless the Basic credentials or the token header match."""
    expected = secret.encode("utf-8")
    token = headers.get(TOKEN_HEADER.lower()) or headers.get(TOKEN_HEADER)
    if token is not None and hmac.compare_digest(token.encode("utf-8"), expected):
        return
    authorization = headers.get("authorization") or headers.get("Authorization") or ""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            pair = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            pair = b""
        password = pair.partition(b":")[2]
        if hmac.compare_digest(pair, expected) or hmac.compare_digest(password, expected):
            return
    raise ForgedRequest("Postmark webhook: wrong or missing credentials", status=401)


def _event(
    record: Mapping[str, Any], kind: FeedbackKind, status: str, when_field: str
) -> FeedbackEvent:
    recipient = lower_address(record.get("Email") or record.get("Recipient"))
    metadata = record.get("Metadata") if isinstance(record.get("Metadata"), dict) else {}
    token = metadata.get(METADATA_TOKEN) if isinstance(metadata.get(METADATA_TOKEN), str) else None
    identity = record.get("ID") or record.get("MessageID")
    return FeedbackEvent(
        kind=kind,
        source=SOURCE,
        key=provider_key(SOURCE, record.get("RecordType"), identity, recipient, status),
        ref=DeliveryRef(
            token=token,
            message_id=str(record["MessageID"]) if record.get("MessageID") else None,
            recipient=recipient,
        ),
        occurred_at=iso_time(record.get(when_field)),
        status=status,
        diagnostic=" ".join(str(record.get("Details") or record.get("Description") or "").split())[
            :500
        ],
    )


def read_record(record: Mapping[str, Any]) -> WebhookResult:
    record_type = record.get("RecordType")
    if record_type in ("Bounce", "SpamComplaint"):
        bounce_type = str(record.get("Type") or record_type)
        if bounce_type not in BOUNCE_TYPES:
            raise UnreadableReport(f"Postmark bounce of unknown Type {bounce_type!r}")
        kind = BOUNCE_TYPES[bounce_type]
        if kind is None:
            return WebhookResult([], f"Postmark {bounce_type}: nothing to do")
        return WebhookResult(
            [_event(record, kind, bounce_type, "BouncedAt")], f"Postmark {bounce_type}"
        )
    if record_type == "SubscriptionChange":
        if not record.get("SuppressSending"):
            return WebhookResult([], "Postmark SubscriptionChange: sending reactivated")
        reason = str(record.get("SuppressionReason", ""))
        kind = SUPPRESSION_REASONS.get(reason, FeedbackKind.UNSUBSCRIBE)
        return WebhookResult(
            [_event(record, kind, reason, "ChangedAt")], f"Postmark suppression ({reason})"
        )
    if record_type in ("Delivery", "Open", "Click"):
        return WebhookResult([], f"Postmark {record_type}: not feedback")
    raise UnreadableReport(f"Postmark record of unknown RecordType {record_type!r}")


def parse_postmark(body: bytes, headers: Mapping[str, str], *, secret: str) -> WebhookResult:
    check_credentials(headers, secret)
    record = json_body(body)
    if not isinstance(record, dict):
        raise UnreadableReport("the Postmark body is not a JSON object")
    result = read_record(record)
    if result.events and not any(e.ref.recipient or e.ref.message_id for e in result.events):
        raise UnreadableReport("Postmark record names neither a recipient nor a MessageID")
    return result


__all__ = [
    "BOUNCE_TYPES",
    "SUPPRESSION_REASONS",
    "check_credentials",
    "parse_postmark",
    "read_record",
]
