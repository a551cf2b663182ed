"""Clicks per link: which outside link of a message its readers followed.

Reads the 'clicked' events of the scope's deliveries; the link of each click is the one
its token named (``data.link_id``, a row of the links table). Clicks on the post link
(``/p/``) are the funnel's, not a link's: they carry no link and no outside URL.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from network_anim.db.models import Campaign, Delivery, Event, Link, Message
from network_anim.reports.conversion import restrict
from network_anim.reports.model import LinkClicks
from network_anim.reports.scope import Scope


def compute_link_clicks(session: Session, scope: Scope, base_url: str) -> tuple[LinkClicks, ...]:
    """Clicks per link of the scope's deliveries; ``base_url`` is the engine's own (its
    portal pages are no outside link)."""
    own = base_url.rstrip("/") + "/"
    query = restrict(
        select(
            Campaign.key,
            Message.step,
            Message.occurrence,
            Message.id,
            Event.contact_id,
            Event.machine,
            Event.data,
        )
        .join(Delivery, Delivery.id == Event.delivery_id)  # type: ignore[arg-type]
        .join(Message, Message.id == Delivery.message_id)  # type: ignore[arg-type]
        .join(Campaign, Campaign.id == Message.campaign_id)  # type: ignore[arg-type]
        .where(Event.type == "clicked"),
        scope,
    )
    # (campaign, step, occurrence, message id, link id or None, url) -> tallies
    tallies: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, set(), 0])
    for campaign, step, occurrence, message_id, contact_id, machine, data in session.execute(query):
        data = data or {}
        link_id = data.get("link_id")
        url = str(data.get("url", ""))
        if link_id is None and ("post_id" in data or not url or url.startswith(own)):
            continue  # the post link, or a click with no outside target
        key = (campaign, step, occurrence, message_id, link_id, url)
        tally = tallies[key]
        if machine:
            tally[2] += 1
        else:
            tally[0] += 1
            tally[1].add(contact_id)
    urls = _stored_urls(session, {key[4] for key in tallies if key[4] is not None})
    rows = [
        LinkClicks(
            campaign=campaign,
            step=step,
            occurrence=occurrence,
            link_id=link_id,
            url=urls.get(link_id, url) if link_id is not None else url,
            clicks=clicks,
            people=len(people),
            machine_clicks=machine,
        )
        for (campaign, step, occurrence, _, link_id, url), (clicks, people, machine) in (
            tallies.items()
        )
    ]
    rows.sort(key=lambda r: (r.campaign, r.occurrence, r.step, -r.clicks, r.url))
    return tuple(rows)


def _stored_urls(session: Session, ids: set[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    chunk = sorted(ids)
    for start in range(0, len(chunk), 500):
        part = chunk[start : start + 500]
        found.update(session.execute(select(Link.id, Link.url).where(Link.id.in_(part))).all())  # type: ignore[union-attr]
    return found


__all__ = ["compute_link_clicks"]
