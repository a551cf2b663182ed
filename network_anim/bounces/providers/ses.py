"""Amazon SES feedback through SNS: an HTTP(S) subscription of the SES topic.

Every SNS message is signed (AWS "Verifying the signatures of Amazon SNS messages"):
the canonical string is ``name\\nvalue\\n`` for the documented fields, in this order,
those present only (``Subject`` may be absent); ``SignatureVersion`` 1 signs it with
SHA1withRSA, 2 with SHA256withRSA; the certificate comes from ``SigningCertURL``, fetched
only over https from ``sns.<region>.amazonaws.com``. The topic must be one of
``[bounces] ses_topic_arns``. A SubscriptionConfirmation, once verified, is confirmed by
fetching its SubscribeURL (same host rule).

The SES notification in ``Message`` maps through ``BOUNCE_TYPES`` / ``NOTIFICATION_TYPES``;
``mail.headers`` gives the delivery header, ``mail.source`` the VERP envelope sender,
``mail.commonHeaders.messageId`` our Message-ID.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from network_anim.bounces.clues import DELIVERY_HEADER, message_id, verp_token
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

SOURCE = "ses"

# The fields signed, per message type, in the documented order.
SIGNED_FIELDS: dict[str, tuple[str, ...]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?$")

# SES notificationType (or eventType, for configuration-set event publishing) -> reader.
NOTIFICATION_TYPES = {"Bounce": "bounce", "Complaint": "complaint", "Delivery": None}
# bounce.bounceType -> kind.
BOUNCE_TYPES: dict[str, FeedbackKind] = {
    "Permanent": FeedbackKind.HARD_BOUNCE,
    "Transient": FeedbackKind.SOFT_BOUNCE,
    "Undetermined": FeedbackKind.SOFT_BOUNCE,  # SES could not tell: never invalidate on it
}
# A permanent bounce SES itself suppressed (the address is on its suppression list):
# still hard, the address bounced before.

Fetch = Callable[[str], bytes]


def fetch_https(url: str, timeout: float = 10.0) -> bytes:
    """GET an SNS URL (certificate, SubscribeURL): only what ``check_sns_url`` allows."""
    check_sns_url(url)
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return answer.read()


def check_sns_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme != "https" or not SNS_HOST.match(parts.hostname or ""):
        raise ForgedRequest(f"{url!r} is not an https URL of sns.<region>.amazonaws.com")


def canonical_string(message: Mapping[str, Any]) -> bytes:
    kind = message.get("Type")
    fields = SIGNED_FIELDS.get(str(kind))
    if fields is None:
        raise UnreadableReport(f"SNS message of unknown Type {kind!r}")
    lines = []
    for name in fields:
        if name in message and message[name] is not None:
            lines.append(f"{name}\n{message[name]}\n")
    return "".join(lines).encode("utf-8")


def verify_signature(message: Mapping[str, Any], fetch: Fetch) -> None:
    """ForgedRequest unless ``message`` carries a valid SNS signature."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    version = str(message.get("SignatureVersion", ""))
    algorithm = {"1": hashes.SHA1, "2": hashes.SHA256}.get(version)
    if algorithm is None:
        raise ForgedRequest(f"SNS SignatureVersion {version!r} is not 1 or 2")
    cert_url = str(message.get("SigningCertURL", ""))
    check_sns_url(cert_url)
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ForgedRequest("SNS Signature is not base64") from exc
    try:
        certificate = x509.load_pem_x509_certificate(fetch(cert_url))
    except OSError as exc:  # urllib's URLError included: SNS retries what we refuse
        raise ForgedRequest(f"cannot fetch the SNS certificate {cert_url}: {exc}") from exc
    except ValueError as exc:
        raise ForgedRequest(f"SigningCertURL {cert_url} did not give a certificate") from exc
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ForgedRequest("the SNS signing certificate is not an RSA certificate")
    try:
        key.verify(signature, canonical_string(message), padding.PKCS1v15(), algorithm())
    except InvalidSignature as exc:
        raise ForgedRequest("the SNS signature does not verify") from exc


def _headers(mail: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in mail.get("headers") or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            out.setdefault(item["name"].lower(), str(item.get("value", "")))
    return out


def _ref(mail: Mapping[str, Any], recipient: str | None, verp_local_part: str) -> DeliveryRef:
    headers = _headers(mail)
    source = str(mail.get("source", ""))
    token = headers.get(DELIVERY_HEADER.lower()) or verp_token(source, verp_local_part)
    common = mail.get("commonHeaders") or {}
    ours = message_id(str(common.get("messageId", ""))) or message_id(headers.get("message-id", ""))
    return DeliveryRef(
        token=token or None,
        message_id=ours or (str(mail["messageId"]) if mail.get("messageId") else None),
        recipient=recipient,
    )


def read_notification(notification: Mapping[str, Any], *, verp_local_part: str) -> WebhookResult:
    kind = notification.get("notificationType") or notification.get("eventType")
    if kind not in NOTIFICATION_TYPES:
        raise UnreadableReport(f"SES notification of unknown type {kind!r}")
    reader = NOTIFICATION_TYPES[kind]
    if reader is None:
        return WebhookResult([], f"SES {kind}: nothing to do")
    mail = notification.get("mail") or {}
    events: list[FeedbackEvent] = []
    if reader == "bounce":
        bounce = notification.get("bounce") or {}
        bounce_type = str(bounce.get("bounceType", ""))
        bounce_kind = BOUNCE_TYPES.get(bounce_type, FeedbackKind.SOFT_BOUNCE)
        for item in bounce.get("bouncedRecipients") or []:
            recipient = lower_address(item.get("emailAddress"))
            status = str(item.get("status") or f"{bounce_type}/{bounce.get('bounceSubType', '')}")
            events.append(
                FeedbackEvent(
                    kind=bounce_kind,
                    source=SOURCE,
                    key=provider_key(SOURCE, bounce.get("feedbackId"), recipient, status),
                    ref=_ref(mail, recipient, verp_local_part),
                    occurred_at=iso_time(bounce.get("timestamp")),
                    status=status,
                    diagnostic=str(item.get("diagnosticCode") or bounce.get("bounceSubType", ""))[
                        :500
                    ],
                )
            )
    else:
        complaint = notification.get("complaint") or {}
        feedback_type = str(complaint.get("complaintFeedbackType") or "abuse")
        for item in complaint.get("complainedRecipients") or []:
            recipient = lower_address(item.get("emailAddress"))
            events.append(
                FeedbackEvent(
                    kind=FeedbackKind.COMPLAINT,
                    source=SOURCE,
                    key=provider_key(SOURCE, complaint.get("feedbackId"), recipient, feedback_type),
                    ref=_ref(mail, recipient, verp_local_part),
                    occurred_at=iso_time(complaint.get("timestamp")),
                    status=feedback_type,
                    diagnostic=str(complaint.get("userAgent", ""))[:200],
                )
            )
    if not events:
        raise UnreadableReport(f"SES {kind} names no recipient")
    return WebhookResult(events, f"SES {kind}: {len(events)} recipient(s)")


def parse_sns(
    body: bytes,
    *,
    topic_arns: tuple[str, ...],
    verp_local_part: str = "bounces",
    fetch: Fetch = fetch_https,
    confirm: Fetch | None = None,
) -> WebhookResult:
    """One SNS POST: verified, then read. ``fetch`` gets the signing certificate;
    ``confirm`` visits a SubscribeURL (default: ``fetch``)."""
    message = json_body(body)
    if not isinstance(message, dict):
        raise UnreadableReport("the SNS body is not a JSON object")
    # The topic first: a message for another topic never makes us fetch anything.
    topic = str(message.get("TopicArn", ""))
    if topic not in topic_arns:
        raise ForgedRequest(f"SNS topic {topic!r} is not in [bounces] ses_topic_arns")
    verify_signature(message, fetch)
    kind = message["Type"]
    if kind == "SubscriptionConfirmation":
        url = str(message.get("SubscribeURL", ""))
        check_sns_url(url)
        (confirm or fetch)(url)
        return WebhookResult([], f"subscription to {topic} confirmed")
    if kind == "UnsubscribeConfirmation":
        return WebhookResult([], f"unsubscribed from {topic}")
    try:
        notification = json.loads(str(message.get("Message", "")))
    except ValueError as exc:
        raise UnreadableReport("the SNS Message is not an SES notification (not JSON)") from exc
    if not isinstance(notification, dict):
        raise UnreadableReport("the SNS Message is not an SES notification")
    return read_notification(notification, verp_local_part=verp_local_part)


__all__ = [
    "BOUNCE_TYPES",
    "NOTIFICATION_TYPES",
    "canonical_string",
    "check_sns_url",
    "fetch_https",
    "parse_sns",
    "read_notification",
    "verify_signature",
]
