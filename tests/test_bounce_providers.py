"""Providers' webhooks with real signatures made by keys these tests generate: SES through
SNS (SignatureVersion 1 and 2, the certificate fetched from an SNS host only), Postmark
(Basic credentials or token header), SendGrid (ECDSA over timestamp + body). Good
signatures are read into the expected events; forged or altered ones are refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from network_anim.bounces.events import FeedbackKind
from network_anim.bounces.providers import postmark, sendgrid, ses
from network_anim.bounces.providers.common import ForgedRequest
from network_anim.bounces.unreadable import UnreadableReport

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-feedback"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000.pem"


# -- SES / SNS -------------------------------------------------------------------------


def aws_string_to_sign(message: dict[str, Any]) -> bytes:
    """Written from AWS's "Verifying the signatures of Amazon SNS messages", on its own,
    so the test does not check the code against itself."""
    if message["Type"] == "Notification":
        names = ["Message", "MessageId"]
        names += ["Subject"] if "Subject" in message else []
        names += ["Timestamp", "TopicArn", "Type"]
    else:
        names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{name}\n{message[name]}\n" for name in names).encode()


class SnsSigner:
    """Plays AWS SNS: an RSA key and its self-signed certificate, served by ``fetch``."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .sign(self.key, hashes.SHA256())
        )
        self.fetched: list[str] = []

    def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def sign(self, message: dict[str, Any], version: str = "2") -> dict[str, Any]:
        message = {**message, "SignatureVersion": version, "SigningCertURL": CERT_URL}
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(aws_string_to_sign(message), padding.PKCS1v15(), algorithm)
        message["Signature"] = base64.b64encode(signature).decode()
        return message


MAIL = {
    "timestamp": "2026-12-01T10:00:00.000Z",
    "source": "bounces+abcdefghij234567@bounces.example.com",
    "sourceArn": "arn:aws:ses:eu-west-1:123456789012:identity/example.com",
    "sendingAccountId": "123456789012",
    "messageId": "0102018c1a2b3c4d-5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9-000000",
    "destination": ["jean.dupont@example.net"],
    "headersTruncated": False,
    "headers": [
        {"name": "From", "value": "Animation Reseau <animation@example.com>"},
        {"name": "To", "value": "jean.dupont@example.net"},
        {"name": "Message-ID", "value": "<0123456789abcdef0123456789abcdef@example.com>"},
        {"name": "X-Netanim-Delivery", "value": "tokenfromheader234567"},
    ],
    "commonHeaders": {
        "from": ["Animation Reseau <animation@example.com>"],
        "to": ["jean.dupont@example.net"],
        "messageId": "<0123456789abcdef0123456789abcdef@example.com>",
        "subject": "Challenge d'hiver",
    },
}


def notification(payload: dict[str, Any], subject: str | None = None) -> dict[str, Any]:
    message = {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Message": json.dumps(payload),
        "Timestamp": "2026-12-01T10:00:05.123Z",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    }
    if subject is not None:
        message["Subject"] = subject
    return message


BOUNCE = {
    "notificationType": "Bounce",
    "bounce": {
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [
            {
                "emailAddress": "Jean.Dupont@example.net",
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            }
        ],
        "timestamp": "2026-12-01T10:00:03.000Z",
        "feedbackId": "0102018c1a2b3c4d-feedback-000000",
        "reportingMTA": "dsn; a1-2.smtp-out.eu-west-1.amazonses.com",
    },
    "mail": MAIL,
}


@pytest.fixture
def sns() -> SnsSigner:
    return SnsSigner()


def post_sns(sns: SnsSigner, message: dict[str, Any], **kw: Any) -> ses.WebhookResult:
    return ses.parse_sns(json.dumps(message).encode(), topic_arns=(TOPIC,), fetch=sns.fetch, **kw)


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_permanent_bounce_signed(sns: SnsSigner, version: str) -> None:
    result = post_sns(
        sns, sns.sign(notification(BOUNCE, subject="Amazon SES Email Event"), version)
    )
    [event] = result.events
    assert event.kind is FeedbackKind.HARD_BOUNCE
    assert (event.source, event.status) == ("ses", "5.1.1")
    assert event.ref.recipient == "jean.dupont@example.net"
    assert event.ref.token == "tokenfromheader234567"  # the delivery header wins over VERP
    assert event.ref.message_id == "<0123456789abcdef0123456789abcdef@example.com>"
    assert event.occurred_at == datetime(2026, 12, 1, 10, 0, 3, tzinfo=UTC)
    assert sns.fetched == [CERT_URL]


@pytest.mark.parametrize(
    ("bounce_type", "kind"),
    [("Transient", FeedbackKind.SOFT_BOUNCE), ("Undetermined", FeedbackKind.SOFT_BOUNCE)],
)
def test_ses_other_bounce_types_are_soft(
    sns: SnsSigner, bounce_type: str, kind: FeedbackKind
) -> None:
    payload = json.loads(json.dumps(BOUNCE))
    payload["bounce"]["bounceType"] = bounce_type
    assert post_sns(sns, sns.sign(notification(payload))).events[0].kind is kind


def test_ses_complaint_and_delivery(sns: SnsSigner) -> None:
    mail = {**MAIL, "headers": []}
    complaint = {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": "jean.dupont@example.net"}],
            "timestamp": "2026-12-02T08:00:00.000Z",
            "feedbackId": "0102018c-complaint-1",
            "complaintFeedbackType": "abuse",
            "userAgent": "Yahoo!-Mail-Feedback/2.0",
        },
        "mail": mail,
    }
    [event] = post_sns(sns, sns.sign(notification(complaint))).events
    assert (event.kind, event.status) == (FeedbackKind.COMPLAINT, "abuse")
    assert event.ref.token == "abcdefghij234567"  # no delivery header: the VERP source
    delivery = {"notificationType": "Delivery", "delivery": {}, "mail": mail}
    assert post_sns(sns, sns.sign(notification(delivery))).events == []


def test_ses_canonical_string() -> None:
    message = notification({"notificationType": "Delivery"}, subject="Hi")
    assert (
        ses.canonical_string({**message, "Signature": "x", "SignatureVersion": "1"})
        == (
            'Message\n{"notificationType": "Delivery"}\n'
            "MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n"
            "Subject\nHi\n"
            "Timestamp\n2026-12-01T10:00:05.123Z\n"
            f"TopicArn\n{TOPIC}\n"
            "Type\nNotification\n"
        ).encode()
    )


def test_ses_keys_are_stable_across_retries(sns: SnsSigner) -> None:
    first = post_sns(sns, sns.sign(notification(BOUNCE)))
    retry = notification(BOUNCE)
    retry["Timestamp"] = "2026-12-01T10:05:00.000Z"  # SNS retries with the same notification
    assert post_sns(sns, sns.sign(retry)).events[0].key == first.events[0].key


def test_ses_forgeries_are_refused(sns: SnsSigner) -> None:
    signed = sns.sign(notification(BOUNCE))
    altered = {**signed, "Message": signed["Message"].replace("Permanent", "Transient")}
    with pytest.raises(ForgedRequest, match="does not verify"):
        post_sns(sns, altered)
    impostor = SnsSigner()  # a valid signature by someone else's key, served from our URL
    with pytest.raises(ForgedRequest, match="does not verify"):
        post_sns(sns, impostor.sign(notification(BOUNCE)))
    elsewhere = {
        **signed,
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com.evil.example/c.pem",
    }
    with pytest.raises(ForgedRequest, match=r"sns\.<region>\.amazonaws\.com"):
        post_sns(sns, elsewhere)
    plain_http = {**signed, "SigningCertURL": CERT_URL.replace("https", "http")}
    with pytest.raises(ForgedRequest):
        post_sns(sns, plain_http)
    with pytest.raises(ForgedRequest, match="SignatureVersion"):
        post_sns(sns, {**signed, "SignatureVersion": "3"})
    with pytest.raises(ForgedRequest, match="ses_topic_arns"):
        ses.parse_sns(json.dumps(signed).encode(), topic_arns=(), fetch=sns.fetch)
    assert sns.fetched.count(CERT_URL) >= 2  # the bad host was never fetched
    assert all("evil" not in url for url in sns.fetched)


def test_ses_subscription_confirmation(sns: SnsSigner) -> None:
    subscribe = "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f37"
    message = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37",
        "TopicArn": TOPIC,
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
        "SubscribeURL": subscribe,
        "Timestamp": "2026-12-01T09:00:00.000Z",
    }
    visited: list[str] = []
    result = post_sns(sns, sns.sign(message), confirm=visited.append)
    assert (result.events, visited) == ([], [subscribe])
    hostile = sns.sign({**message, "SubscribeURL": "https://attacker.example/confirm"})
    with pytest.raises(ForgedRequest):
        post_sns(sns, hostile, confirm=visited.append)
    assert visited == [subscribe]


def test_ses_malformed_bodies_are_unreadable(sns: SnsSigner) -> None:
    with pytest.raises(UnreadableReport):
        ses.parse_sns(b"not json", topic_arns=(TOPIC,), fetch=sns.fetch)
    bad = notification(BOUNCE)
    bad["Message"] = "{not json"
    with pytest.raises(UnreadableReport):
        post_sns(sns, sns.sign(bad))


# -- Postmark --------------------------------------------------------------------------

SECRET = "pm-hook-4f7c2a"
PM_BOUNCE = {
    "RecordType": "Bounce",
    "ID": 4323372036854775807,
    "Type": "HardBounce",
    "TypeCode": 1,
    "Name": "Hard bounce",
    "Tag": "challenge",
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "ServerID": 23,
    "MessageStream": "outbound",
    "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
    "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
    "Email": "Marie.Leroy@example.org",
    "From": "animation@example.com",
    "BouncedAt": "2026-12-01T16:33:54.9070259Z",
    "DumpAvailable": True,
    "Inactive": True,
    "CanActivate": True,
    "Subject": "Nouveau catalogue",
    "Metadata": {"netanim_delivery": "pmtoken234567"},
}


def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_postmark_bounce_with_basic_credentials() -> None:
    result = postmark.parse_postmark(
        json.dumps(PM_BOUNCE).encode(), basic("netanim", SECRET), secret=SECRET
    )
    [event] = result.events
    assert (event.kind, event.status, event.source) == (
        FeedbackKind.HARD_BOUNCE,
        "HardBounce",
        "postmark",
    )
    assert event.ref.recipient == "marie.leroy@example.org"
    assert event.ref.token == "pmtoken234567"
    assert event.ref.message_id == "883953f4-6105-42a2-a16a-77a8eac79483"
    assert event.occurred_at == datetime(2026, 12, 1, 16, 33, 54, 907025, tzinfo=UTC)
    # the whole user:password as the secret, and the token header, work too
    body = json.dumps(PM_BOUNCE).encode()
    assert postmark.parse_postmark(
        body, basic("netanim", SECRET), secret=f"netanim:{SECRET}"
    ).events
    assert postmark.parse_postmark(body, {"x-netanim-webhook-token": SECRET}, secret=SECRET).events


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("netanim", "guess"),
        {"x-netanim-webhook-token": "guess"},
        {"authorization": "Basic %%%"},
    ],
)
def test_postmark_wrong_credentials_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ForgedRequest) as caught:
        postmark.parse_postmark(json.dumps(PM_BOUNCE).encode(), headers, secret=SECRET)
    assert caught.value.status == 401


@pytest.mark.parametrize(
    ("record", "kind"),
    [
        ({**PM_BOUNCE, "Type": "SoftBounce", "TypeCode": 4096}, FeedbackKind.SOFT_BOUNCE),
        ({**PM_BOUNCE, "Type": "Transient", "TypeCode": 2}, FeedbackKind.SOFT_BOUNCE),
        ({**PM_BOUNCE, "Type": "SpamNotification", "TypeCode": 512}, FeedbackKind.COMPLAINT),
        ({**PM_BOUNCE, "Type": "AutoResponder", "TypeCode": 32}, FeedbackKind.AUTO_REPLY),
        (
            {**PM_BOUNCE, "RecordType": "SpamComplaint", "Type": "SpamComplaint", "TypeCode": 512},
            FeedbackKind.COMPLAINT,
        ),
        (
            {
                "RecordType": "SubscriptionChange",
                "MessageID": "a4909a96-73d7-4c49-b148-a54522d3f7ac",
                "ServerID": 23,
                "MessageStream": "outbound",
                "ChangedAt": "2026-12-02T10:00:00Z",
                "Recipient": "marie.leroy@example.org",
                "Origin": "Recipient",
                "SuppressSending": True,
                "SuppressionReason": "ManualSuppression",
                "Tag": "",
                "Metadata": {},
            },
            FeedbackKind.UNSUBSCRIBE,
        ),
    ],
)
def test_postmark_mapping(record: dict[str, Any], kind: FeedbackKind) -> None:
    [event] = postmark.parse_postmark(
        json.dumps(record).encode(), basic("u", SECRET), secret=SECRET
    ).events
    assert event.kind is kind
    assert event.ref.recipient == "marie.leroy@example.org"


def test_postmark_records_without_feedback() -> None:
    reactivated = {
        "RecordType": "SubscriptionChange",
        "SuppressSending": False,
        "Recipient": "a@example.org",
    }
    delivery = {"RecordType": "Delivery", "MessageID": "x", "Recipient": "a@example.org"}
    for record in (reactivated, delivery):
        assert (
            postmark.parse_postmark(
                json.dumps(record).encode(), basic("u", SECRET), secret=SECRET
            ).events
            == []
        )
    with pytest.raises(UnreadableReport):
        postmark.parse_postmark(b'{"RecordType": "Mystery"}', basic("u", SECRET), secret=SECRET)


# -- SendGrid --------------------------------------------------------------------------


class SendGridSigner:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key_text = base64.b64encode(der).decode()  # as SendGrid's settings show it

    def headers(self, body: bytes, timestamp: str = "1764583200") -> dict[str, str]:
        signature = self.key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "x-twilio-email-event-webhook-signature": base64.b64encode(signature).decode(),
            "x-twilio-email-event-webhook-timestamp": timestamp,
        }


SG_EVENTS = [
    {
        "email": "Thomas.Roux@example.com",
        "timestamp": 1764583100,
        "smtp-id": "<0123456789abcdef0123456789abcdef@example.com>",
        "event": "bounce",
        "type": "bounce",
        "bounce_classification": "Invalid Address",
        "category": ["challenge"],
        "sg_event_id": "bm90IGEgcmVhbCBldmVudCBpZA",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
        "status": "5.1.1",
        "netanim_delivery": "sgtoken234567",
    },
    {
        "email": "claire.moreau@example.net",
        "timestamp": 1764583101,
        "event": "bounce",
        "type": "blocked",
        "sg_event_id": "YmxvY2tlZCBldmVudA",
        "reason": "554 5.7.1 Service unavailable; Client host blocked",
        "status": "5.7.1",
    },
    {
        "email": "a@example.net",
        "timestamp": 1764583102,
        "event": "spamreport",
        "sg_event_id": "c3BhbQ",
    },
    {
        "email": "b@example.net",
        "timestamp": 1764583103,
        "event": "unsubscribe",
        "sg_event_id": "dW5zdWI",
    },
    {
        "email": "c@example.net",
        "timestamp": 1764583104,
        "event": "group_unsubscribe",
        "asm_group_id": 1,
        "sg_event_id": "Z3JvdXA",
    },
    {
        "email": "d@example.net",
        "timestamp": 1764583105,
        "event": "deferred",
        "attempt": "1",
        "response": "400 try again later",
        "sg_event_id": "ZGVm",
    },
    {
        "email": "e@example.net",
        "timestamp": 1764583106,
        "event": "dropped",
        "reason": "Bounced Address",
        "status": "5.0.0",
        "sg_event_id": "ZHJvcA",
    },
    {
        "email": "f@example.net",
        "timestamp": 1764583107,
        "event": "delivered",
        "response": "250 OK",
        "sg_event_id": "ZGVs",
    },
]


def test_sendgrid_events_signed() -> None:
    signer = SendGridSigner()
    body = json.dumps(SG_EVENTS).encode()
    key = sendgrid.load_public_key(signer.public_key_text)
    result = sendgrid.parse_sendgrid(body, signer.headers(body), public_key=key)
    got = [(e.kind, e.ref.recipient) for e in result.events]
    assert got == [
        (FeedbackKind.HARD_BOUNCE, "thomas.roux@example.com"),
        (FeedbackKind.SOFT_BOUNCE, "claire.moreau@example.net"),
        (FeedbackKind.COMPLAINT, "a@example.net"),
        (FeedbackKind.UNSUBSCRIBE, "b@example.net"),
        (FeedbackKind.UNSUBSCRIBE, "c@example.net"),
        (FeedbackKind.HARD_BOUNCE, "e@example.net"),
    ]
    first = result.events[0]
    assert first.ref.token == "sgtoken234567"
    assert first.ref.message_id == "<0123456789abcdef0123456789abcdef@example.com>"
    assert first.occurred_at == datetime.fromtimestamp(1764583100, UTC)
    assert len({e.key for e in result.events}) == len(result.events)


def test_sendgrid_pem_key_is_accepted() -> None:
    signer = SendGridSigner()
    pem = (
        signer.key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    body = b"[]"
    assert (
        sendgrid.parse_sendgrid(
            body, signer.headers(body), public_key=sendgrid.load_public_key(pem)
        ).events
        == []
    )


def test_sendgrid_forgeries_are_refused() -> None:
    signer = SendGridSigner()
    key = sendgrid.load_public_key(signer.public_key_text)
    body = json.dumps(SG_EVENTS).encode()
    headers = signer.headers(body)
    tampered = body.replace(b"blocked", b"bounce\\u0000")
    with pytest.raises(ForgedRequest):
        sendgrid.parse_sendgrid(tampered, headers, public_key=key)
    moved = {**headers, "x-twilio-email-event-webhook-timestamp": "1764583999"}
    with pytest.raises(ForgedRequest):
        sendgrid.parse_sendgrid(body, moved, public_key=key)
    other = SendGridSigner()
    with pytest.raises(ForgedRequest):
        sendgrid.parse_sendgrid(body, other.headers(body), public_key=key)
    with pytest.raises(ForgedRequest):
        sendgrid.parse_sendgrid(body, {}, public_key=key)
    with pytest.raises(ValueError):
        sendgrid.load_public_key("not a key")
