"""Intranet and flash posts on the partner portal.

The planner stores each message's post (its canonical page, or a flash post) when it
plans the message; "sending" on this channel publishes the post for the recipient: the
post becomes visible from its publication time, and the delivery row is the recipient's
entry in the portal feed. The database is the provider here, so the call is idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, or_, update

from network_anim.channels.contract import Outbound, SendResult, TransportBase
from network_anim.channels.registry import Adapter, BuildContext
from network_anim.clock import Clock
from network_anim.db.models import Post
from network_anim.domain import Outcome


class IntranetTransport(TransportBase):
    resend_safe = True  # publishing a post twice publishes it once
    throttled = False

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    async def send_batch(self, items: Sequence[Outbound]) -> list[SendResult]:
        post_ids = {int(item.extra["post_id"]) for item in items if item.extra.get("post_id")}
        if post_ids:
            self._publish(post_ids, self._clock.now())
        return [
            SendResult.sent(provider_id=f"post:{item.extra['post_id']}")
            if item.extra.get("post_id")
            else SendResult(Outcome.FAILED, detail="no post attached to this delivery")
            for item in items
        ]

    def _publish(self, post_ids: set[int], now: datetime) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(Post)
                .where(Post.id.in_(post_ids))  # type: ignore[union-attr]
                .where(or_(Post.published_at.is_(None), Post.published_at > now))  # type: ignore[union-attr]
                .values(published_at=now)
            )


def _build(ctx: BuildContext) -> IntranetTransport:
    return IntranetTransport(ctx.engine, ctx.clock)


ADAPTER = Adapter(build=_build, resend_safe=lambda ctx: IntranetTransport.resend_safe)
