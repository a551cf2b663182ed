"""What every provider's webhook parser shares: its result, its refusal, its helpers."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from network_anim.bounces.events import FeedbackEvent
from network_anim.bounces.unreadable import UnreadableReport


class ForgedRequest(Exception):
    """The request's signature or credentials do not check out: refused (401/403), never
    read. ``status``: 401 when credentials are missing or wrong, 403 for a bad signature."""

    def __init__(self, reason: str, *, status: int = 403) -> None:
        self.reason = reason
        self.status = status
        super().__init__(reason)


@dataclass
class WebhookResult:
    events: list[FeedbackEvent] = field(default_factory=list)
    note: str = ""


def json_body(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnreadableReport(f"the body is not JSON ({exc})") from exc


_FRACTION = re.compile(r"(\.\d{6})\d+")


def iso_time(value: object) -> datetime | None:
    """An ISO 8601 time as UTC (Postmark writes 7 fraction digits); None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(_FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def unix_time(value: object) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    return None


def provider_key(source: str, *parts: object) -> str:
    text = "\n".join([source, *(str(p) if p is not None else "" for p in parts)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def lower_address(value: object) -> str | None:
    return value.strip().lower() or None if isinstance(value, str) else None


__all__ = [
    "ForgedRequest",
    "WebhookResult",
    "iso_time",
    "json_body",
    "lower_address",
    "provider_key",
    "unix_time",
]
