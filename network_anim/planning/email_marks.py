"""Addresses marked invalid by a bounce, as the router reads them.

A hard bounce (bounces/apply.py) sets ``contact.email_invalid_at`` and its reason; until
an import brings a new address, every message is routed as if the contact had no email,
and ``plan --explain`` / ``broadcast --explain`` say why: "email invalid since
2026-11-25: 5.1.1 user unknown".
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from network_anim.db.models import Contact

_CHUNK = 1000  # ids per IN query


def invalid_note(at: datetime, reason: str, timezone: str) -> str:
    """The router's refusal of email for a contact whose address bounced."""
    try:
        day = at.astimezone(ZoneInfo(timezone)).date()
    except (KeyError, ValueError):
        day = at.date()  # an unknown zone name: the UTC day still says when
    return f"email invalid since {day.isoformat()}: {reason or 'bounced'}"


def email_invalid_notes(session: Session, contact_ids: Iterable[int]) -> dict[int, str]:
    """The note of each of these contacts whose address is marked invalid."""
    ids = list(contact_ids)
    notes: dict[int, str] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(
                Contact.id,
                Contact.email_invalid_at,
                Contact.email_invalid_reason,
                Contact.timezone,
            ).where(
                Contact.id.in_(ids[start : start + _CHUNK]),  # type: ignore[union-attr]
                Contact.email_invalid_at.is_not(None),  # type: ignore[union-attr]
            )
        )
        for contact_id, at, reason, timezone in rows:
            notes[contact_id] = invalid_note(at, reason, timezone)
    return notes


__all__ = ["email_invalid_notes", "invalid_note"]
