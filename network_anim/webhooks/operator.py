"""What an operator does with webhook rows: list them beside the message outbox
(``netanim outbox``), requeue them (``outbox retry wh-N``), ping a subscriber."""

from __future__ import annotations

import aiohttp
from sqlalchemy import select, update

from network_anim.app import App
from network_anim.config.settings import WebhookSubscriber
from network_anim.db.models import WebhookDelivery
from network_anim.errors import UserError
from network_anim.webhooks.feed import event_body
from network_anim.webhooks.sender import Answer, post
from network_anim.webhooks.signing import signed_headers, subscriber_key
from network_anim.webhooks.sources import FeedEvent

W = WebhookDelivery
ID_PREFIX = "wh-"  # their ids in `netanim outbox`, beside the deliveries' numbers
# Dead rows wait for an operator; a pending one waiting out its backoff may go now.
_REQUEUEABLE = ("dead", "pending")


def outbox_records(app: App, status: str | None, limit: int) -> list[dict[str, object]]:
    """The webhook rows, newest first, in the shape of `netanim outbox`'s own rows."""
    query = select(W).order_by(W.id.desc()).limit(limit)  # type: ignore[union-attr]
    if status:
        query = query.where(W.status == status)  # type: ignore[arg-type]
    with app.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "id": f"{ID_PREFIX}{row.id}",
            "key": row.event_key,
            "contact": f"(webhook {row.subscriber})",
            "channel": "webhook",
            "status": row.status,
            "due_at": row.due_at.isoformat(),
            "attempts": row.attempts,
            "reason": row.event_type,
            "last_error": row.last_error,
            "fallback_due": False,
            "provider_id": None,
        }
        for row in rows
    ]


def requeue(app: App, ids: list[int]) -> int:
    """Dead or waiting rows due now with their attempts reset; the number requeued."""
    if not ids:
        return 0
    now = app.clock.now()
    with app.engine.begin() as conn:
        return conn.execute(
            update(W)
            .where(W.id.in_(ids), W.status.in_(_REQUEUEABLE))  # type: ignore[union-attr,attr-defined]
            .values(status="pending", due_at=now, attempts=0, last_error="", updated_at=now)
        ).rowcount


def subscriber(app: App, name: str) -> WebhookSubscriber:
    for configured in app.config.webhooks:
        if configured.name == name:
            return configured
    known = ", ".join(w.name for w in app.config.webhooks) or "none defined"
    raise UserError(f"unknown webhook subscriber {name!r}", [f"[[webhooks]] names: {known}"])


async def ping(app: App, target: WebhookSubscriber) -> tuple[str, Answer]:
    """A signed ``webhook.ping`` POSTed at once (never through the outbox)."""
    key = subscriber_key(target)
    now = app.clock.now()
    event = FeedEvent(
        f"ping-{int(now.timestamp())}", "webhook.ping", now, {"subscriber": target.name}
    )
    body = event_body(event)
    async with aiohttp.ClientSession() as session:
        answer = await post(session, target, signed_headers(key, event.key, now, body), body)
    return event.key, answer
