"""Rendering stores each outside target of a message once (the links table), and the
click tokens of its emails name those rows, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import base64
import json
import re

from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.compose.stored_links import LinkBook
from network_anim.config.settings import Audience
from network_anim.db.models import Delivery, Link
from network_anim.domain import Level, Urgency
from network_anim.planning.planner import MessageRequest, plan_in_session, plan_message

PRODUCT = "https://www.example.com/produits/standard-ip-s40"
CATALOGUE = "https://www.example.com/catalogue"
VARIABLES = {
    "headline": "Les nouveautés de mars",
    "product": "Standard IP S40",
    "product_url": PRODUCT,
    "catalogue_url": CATALOGUE,
}


def news(occurrence: str, **variables: object) -> MessageRequest:
    return MessageRequest(
        campaign_key="monthly-news",
        campaign_name="Monthly partner news",
        campaign_kind="newsletter",
        step="news",
        occurrence=occurrence,
        audience=Audience(name="all"),
        urgency=Urgency.INFO,
        template="monthly-news",
        level=Level.SELLER,
        variables={**VARIABLES, **variables},
    )


def links(app: App) -> list[tuple[int, int, str]]:
    with Session(app.engine) as session:
        rows = session.execute(select(Link.message_id, Link.id, Link.url).order_by(Link.id))
        return [tuple(row) for row in rows]  # type: ignore[misc]


def click_payloads(app: App, message_id: int) -> list[list[object]]:
    with Session(app.engine) as session:
        bodies = session.scalars(
            select(Delivery.body_html).where(
                Delivery.message_id == message_id, Delivery.channel == "email"
            )
        ).all()
    payloads = []
    for body in bodies:
        for token in re.findall(r"/c/([\w-]+)\.", body or ""):
            payloads.append(json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))))
    return payloads


def test_each_target_of_a_message_is_stored_once_and_named_by_its_tokens(network: App) -> None:
    march = plan_message(network, news("2027-03"))
    assert march.new_rows["email"] > 1
    stored = links(network)
    assert [(m, url) for m, _, url in stored] == [
        (march.message_id, PRODUCT),
        (march.message_id, CATALOGUE),
    ]
    ids = {url: link_id for _, link_id, url in stored}
    payloads = click_payloads(network, march.message_id)  # type: ignore[arg-type]
    # Every email of the message names both links by id; no token carries a URL.
    assert len(payloads) == 2 * march.new_rows["email"]
    assert {link for _, link in payloads} == {ids[PRODUCT], ids[CATALOGUE]}
    assert not any(isinstance(link, str) for _, link in payloads)

    # Re-planning stores nothing more; the next month's message has its own links.
    plan_message(network, news("2027-03"))
    april = plan_message(network, news("2027-04"))
    assert len(links(network)) == 4
    assert [url for m, _, url in links(network) if m == april.message_id] == [PRODUCT, CATALOGUE]


def test_links_belong_to_the_planning_transaction(network: App) -> None:
    """A plan rolled back keeps no link, and ids read before a rollback are not reused."""
    with Session(network.engine) as session:
        session.begin()
        result = plan_in_session(network, session, news("2027-05"))
        assert result.new_rows["email"] > 1
        session.rollback()
    assert links(network) == []

    book = LinkBook(network.clock)
    with Session(network.engine) as session:
        session.begin()
        message_id = plan_in_session(network, session, news("2027-05")).message_id
        session.commit()
        session.begin()
        temporary = book.link_id(session, message_id, "https://www.example.com/essai")
        session.rollback()
        session.begin()
        again = book.link_id(session, message_id, "https://www.example.com/essai")
        session.commit()
    stored = {link_id: url for _, link_id, url in links(network)}
    assert stored[again] == "https://www.example.com/essai"
    assert temporary == again or temporary not in stored
    assert (
        book.link_id(Session(network.engine), message_id, "https://x.example/" + "a" * 2000) is None
    )


def test_a_dry_run_stores_no_link(network: App) -> None:
    plan_message(network, news("2027-06"), dry_run=True)
    assert links(network) == []
