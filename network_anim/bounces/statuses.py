"""From what a mail server says to a kind of bounce: plain tables, one place.

An enhanced status code (RFC 3463, ``5.1.1``) decides: class 5 is permanent (hard), class
4 transient (soft). A few permanent codes are about this message or a full mailbox, not
about the address, and stay soft so a good address is not marked invalid. When a server
gives no enhanced code (old MTAs, text-only bounces), its basic SMTP reply code or its
words are mapped to one.
"""

from __future__ import annotations

import re

from network_anim.bounces.events import FeedbackKind

# Permanent codes that do not mean "this address is dead": the mailbox is full, or the
# message was too big; the address may take the next message (soft, and soft_to_hard of
# them in a window make it hard, see apply).
SOFT_DESPITE_CLASS_5: dict[str, str] = {
    "5.2.2": "mailbox full",
    "5.2.3": "message too large for the recipient",
    "5.3.4": "message too big for the system",
}

# Basic SMTP reply codes (RFC 5321) when no enhanced code is given.
BASIC_CODES: dict[str, str] = {
    "421": "4.3.0",
    "450": "4.2.0",
    "451": "4.3.0",
    "452": "4.2.2",
    "550": "5.1.1",  # "mailbox unavailable": in a bounce, nearly always a dead address
    "551": "5.1.6",
    "552": "5.2.2",
    "553": "5.1.3",
    "554": "5.0.0",
}

# Words of servers that give no code at all (Lotus Domino, old Exchange, Yahoo, qmail
# bodies), lower-case, first match wins: the specific ones before the general ones.
PHRASES: tuple[tuple[str, str], ...] = (
    ("mailbox full", "4.2.2"),
    ("mailbox is full", "4.2.2"),
    ("over quota", "4.2.2"),
    ("quota exceeded", "4.2.2"),
    ("exceeded storage allocation", "4.2.2"),
    ("insufficient system storage", "4.3.1"),
    ("greylist", "4.7.1"),
    ("try again later", "4.0.0"),
    ("temporarily", "4.0.0"),
    ("not listed in domino directory", "5.1.1"),
    ("not listed in public name & address book", "5.1.1"),
    ("user unknown", "5.1.1"),
    ("unknown user", "5.1.1"),
    ("no such user", "5.1.1"),
    ("no mailbox here", "5.1.1"),
    ("mailbox unavailable", "5.1.1"),
    ("does not exist", "5.1.1"),
    ("doesn't have a", "5.1.1"),  # Yahoo: "This user doesn't have a yahoo.com account"
    ("address rejected", "5.1.1"),
    ("invalid recipient", "5.1.1"),
    ("recipient not found", "5.1.1"),
    ("account has been disabled", "5.2.1"),
    ("account is disabled", "5.2.1"),
    ("host not found", "5.1.2"),
    ("domain not found", "5.1.2"),
    ("no mx", "5.1.2"),
    ("unrouteable address", "5.1.2"),
    ("permanent error", "5.0.0"),
    ("permanent fatal error", "5.0.0"),
    ("could not be delivered", "5.0.0"),
)

ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
BASIC = re.compile(r"(?<![\d.#])([45]\d\d)(?:[ -]|$)", re.M)


def kind_of(status: str) -> FeedbackKind:
    """The bounce kind of a failed delivery with this enhanced status."""
    if status.startswith("5.") and status not in SOFT_DESPITE_CLASS_5:
        return FeedbackKind.HARD_BOUNCE
    return FeedbackKind.SOFT_BOUNCE


def enhanced_in(text: str) -> str | None:
    """The first enhanced status code in a text (``5.1.1``), else None."""
    match = ENHANCED.search(text)
    return ".".join(match.groups()) if match else None


def phrase_status(text: str) -> str | None:
    lowered = " ".join(text.lower().split())
    for phrase, status in PHRASES:
        if phrase in lowered:
            return status
    return None


def status_in(text: str) -> str | None:
    """The status a server's words give: its enhanced code, else its words (which say
    more than a bare 550), else its basic reply code."""
    found = enhanced_in(text) or phrase_status(text)
    if found:
        return found
    match = BASIC.search(text)
    return BASIC_CODES.get(match.group(1)) if match else None


def refine(status: str, diagnostic: str) -> str:
    """A DSN's Status, made specific by its Diagnostic-Code when the Status field only
    says the class (``5.0.0`` beside ``552 5.2.2 mailbox full``)."""
    if status.endswith(".0.0"):
        detail = enhanced_in(diagnostic)
        if detail and detail[0] == status[0] and not detail.endswith(".0.0"):
            return detail
    return status


__all__ = ["BASIC_CODES", "PHRASES", "SOFT_DESPITE_CLASS_5", "kind_of", "refine", "status_in"]
