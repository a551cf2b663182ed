"""Replies by machines and by people that are not bounces: out-of-office auto-replies
(recorded, never counted as bounces) and replies asking to unsubscribe (sent to the
``mailto:`` of List-Unsubscribe, subject "unsubscribe").

Auto-replies are known first by their headers (RFC 3834 ``Auto-Submitted``, the
``X-Autoreply``/``X-Autorespond`` of vacation programs, ``Precedence: auto_reply``), then
by their subject in the languages of the network (``AUTO_REPLY_SUBJECTS``).
"""

from __future__ import annotations

import re
from email.message import Message

from network_anim.bounces import clues
from network_anim.bounces.dsn import Outcome
from network_anim.bounces.events import DeliveryRef, FeedbackEvent, FeedbackKind

SOURCE_AUTO_REPLY = "auto_reply"
SOURCE_UNSUBSCRIBE = "unsubscribe_reply"

# Header -> values that mean "not an auto-reply" (anything else present means one).
AUTO_REPLY_HEADERS: dict[str, tuple[str, ...]] = {
    "Auto-Submitted": ("no",),
    "X-Autoreply": ("no", "false"),
    "X-Autorespond": ("no", "false"),
    "X-Autoresponder": ("no", "false"),
}
AUTO_REPLY_PRECEDENCE = ("auto_reply",)
# Subjects, lower-case substrings (English, French, German, Spanish, Italian, Dutch).
AUTO_REPLY_SUBJECTS = (
    "out of office",
    "out of the office",
    "automatic reply",
    "auto reply",
    "autoreply",
    "auto-reply",
    "auto:",
    "absence",
    "absent du bureau",
    "réponse automatique",
    "reponse automatique",
    "abwesenheit",
    "automatische antwort",
    "außer haus",
    "ausser haus",
    "respuesta automática",
    "fuera de la oficina",
    "risposta automatica",
    "fuori sede",
    "afwezig",
    "vacation",
)
# Reply prefixes stripped before reading an unsubscribe subject.
_REPLY_PREFIX = re.compile(r"^(?:\s*(?:re|aw|tr|fw|fwd|wg|sv)\s*:\s*)+", re.I)
UNSUBSCRIBE_SUBJECTS = ("unsubscribe", "désabonnement", "desabonnement", "désinscription")


def is_auto_reply(report: Message) -> bool:
    for name, harmless in AUTO_REPLY_HEADERS.items():
        value = clues.header_text(report, name).lower()
        if value and value.split(";")[0].strip() not in harmless:
            return True
    if clues.header_text(report, "Precedence").lower() in AUTO_REPLY_PRECEDENCE:
        return True
    subject = clues.header_text(report, "Subject").lower()
    return any(marker in subject for marker in AUTO_REPLY_SUBJECTS)


def is_unsubscribe(report: Message) -> bool:
    subject = _REPLY_PREFIX.sub("", clues.header_text(report, "Subject")).strip().lower()
    return any(subject.startswith(word) for word in UNSUBSCRIBE_SUBJECTS)


def _event(report: Message, raw: bytes, kind: FeedbackKind, source: str, local: str) -> Outcome:
    # The contact's own address: the mailbox that replied (never its Reply-To, which an
    # out-of-office may point at a colleague).
    sender = next(iter(clues.addresses(report, "From")), None)
    replied_to = clues.message_id(clues.header_text(report, "In-Reply-To"))
    if replied_to is None:
        references = re.findall(r"<[^<>\s]+@[^<>\s]+>", clues.header_text(report, "References"))
        replied_to = references[-1] if references else None
    event = FeedbackEvent(
        kind=kind,
        source=source,
        key=clues.event_key(source, clues.report_identity(report, raw), sender, ""),
        ref=DeliveryRef(
            token=clues.envelope_token(report, local), message_id=replied_to, recipient=sender
        ),
        occurred_at=clues.parse_date(str(report.get("Date", ""))),
        diagnostic=clues.header_text(report, "Subject")[:200],
    )
    return Outcome([event], f"{kind.value.replace('_', ' ')} from {sender or 'an unknown sender'}")


def read_auto_reply(report: Message, raw: bytes, *, verp_local_part: str) -> Outcome:
    return _event(report, raw, FeedbackKind.AUTO_REPLY, SOURCE_AUTO_REPLY, verp_local_part)


def read_unsubscribe(report: Message, raw: bytes, *, verp_local_part: str) -> Outcome:
    return _event(report, raw, FeedbackKind.UNSUBSCRIBE, SOURCE_UNSUBSCRIBE, verp_local_part)


__all__ = ["is_auto_reply", "is_unsubscribe", "read_auto_reply", "read_unsubscribe"]
