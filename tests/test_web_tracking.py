"""Tracking endpoints over both databases: open pixel, clicks, post links, one-click
unsubscribe, forged tokens, machine flags, and the batch event writer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlmodel import Session

from network_anim.app import App
from network_anim.compose.links import LinkSigner, _b64, _unb64
from network_anim.db.models import (
    Campaign,
    Consent,
    Contact,
    Delivery,
    Event,
    Link,
    Message,
    Post,
    PostRead,
)
from network_anim.web import WebContext
from network_anim.web.app import create_app
from network_anim.web.events import EventWriter, event_row
from network_anim.web.scanners import is_machine, machine_reason
from network_anim.web.tracking import PIXEL_GIF

THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.3.1"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0"
PROOFPOINT = "Mozilla/5.0 (compatible; Proofpoint URL Defense)"


@dataclass
class Web:
    client: httpx.AsyncClient
    ctx: WebContext

    @property
    def app(self) -> App:
        return self.ctx.app


@pytest.fixture
async def web(network: App) -> AsyncIterator[Web]:
    """The web app with its lifespan running (the batch writer started, then drained)."""
    fastapi_app = create_app(network)
    async with fastapi_app.router.lifespan_context(fastapi_app):
        transport = httpx.ASGITransport(app=fastapi_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Web(client, fastapi_app.state.netanim)


@dataclass
class Sent:
    key: str
    delivery_id: int
    contact_id: int
    message_id: int
    post_id: int


def contact_id(app: App, external_id: str) -> int:
    with Session(app.engine) as session:
        found = session.scalar(select(Contact.id).where(Contact.external_id == external_id))
    assert found is not None
    return found


def make_delivery(
    app: App,
    *,
    contact: str = "C0001",
    channel: str = "email",
    seconds_ago: float = 3600,
    provider_id: str | None = None,
) -> Sent:
    """A sent delivery of a campaign message that has a post."""
    now = app.clock.now()
    cid = contact_id(app, contact)
    with Session(app.engine) as session, session.begin():
        campaign = session.scalar(select(Campaign).where(Campaign.key == "web-test"))
        if campaign is None:
            campaign = Campaign(key="web-test", name="Web test", kind="broadcast", created_at=now)
            session.add(campaign)
            session.flush()
        count = session.scalar(select(func.count()).select_from(Message)) or 0
        message = Message(
            campaign_id=campaign.id,  # type: ignore[arg-type]
            step="news",
            occurrence=f"o{count}",
            urgency="info",
            kind="marketing",
            template="welcome",
            created_at=now,
        )
        session.add(message)
        session.flush()
        post = Post(message_id=message.id, title="Nouveautés", body="Texte", created_at=now)
        session.add(post)
        key = f"web-test:news:o{count}:{cid}:{channel}"
        delivery = Delivery(
            idempotency_key=key,
            message_id=message.id,  # type: ignore[arg-type]
            contact_id=cid,
            channel=channel,
            status="sent",
            due_at=now,
            created_at=now,
            updated_at=now,
            sent_at=now - timedelta(seconds=seconds_ago),
            provider_id=provider_id,
        )
        session.add(delivery)
        session.flush()
        return Sent(key, delivery.id, cid, message.id, post.id)  # type: ignore[arg-type]


def events(app: App, type_: str | None = None) -> list[Event]:
    with Session(app.engine) as session:
        query = select(Event).order_by(Event.id)
        if type_ is not None:
            query = query.where(Event.type == type_)
        return list(session.scalars(query))


def consent(app: App, cid: int, channel: str) -> Consent | None:
    with Session(app.engine) as session:
        return session.scalar(
            select(Consent).where(Consent.contact_id == cid, Consent.channel == channel)
        )


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def tamper(token: str, payload: Any) -> str:
    """The same MAC over another payload: what an attacker can build without the key."""
    _, mac = token.split(".", 1)
    return f"{_b64(json.dumps(payload, separators=(',', ':')).encode())}.{mac}"


# -- open pixel ----------------------------------------------------------------------------


AGENTS = [
    (THUNDERBIRD, False),
    ("Mozilla/5.0", True),  # Apple Mail Privacy Protection
    (
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
        False,
    ),
    (PROOFPOINT, True),
]


async def test_open_pixel_is_a_gif_and_records_the_open(web: Web) -> None:
    for agent, machine in AGENTS:
        sent = make_delivery(web.app)
        url = web.app.signer.open_pixel_url(sent.key)
        response = await web.client.get(path_of(url), headers={"User-Agent": agent})
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/gif"
        assert "no-store" in response.headers["cache-control"]
        assert response.content == PIXEL_GIF and response.content.startswith(b"GIF89a")
        await web.ctx.events.flush()
        [opened] = [e for e in events(web.app, "opened") if e.delivery_id == sent.delivery_id]
        assert (opened.contact_id, opened.message_id) == (sent.contact_id, sent.message_id)
        assert opened.channel == "email"
        assert opened.machine is machine, agent
        assert opened.data["user_agent"] == agent


# -- clicks --------------------------------------------------------------------------------


def store_link(app: App, message_id: int, url: str) -> int:
    """A link of the message, as rendering stores it (the links table)."""
    with Session(app.engine) as session, session.begin():
        link = Link(url=url, message_id=message_id, created_at=app.clock.now())
        session.add(link)
        session.flush()
        assert link.id is not None
        return link.id


async def test_click_redirects_to_the_stored_link_and_flags_fast_clicks(web: Web) -> None:
    target = "https://www.example.com/offre?ref=news&x=1"
    slow = make_delivery(web.app, seconds_ago=120)
    fast = make_delivery(web.app, contact="C0002", seconds_ago=3)
    links = {}
    for sent in (slow, fast):
        links[sent.delivery_id] = store_link(web.app, sent.message_id, target)
        url = web.app.signer.click_url(sent.key, links[sent.delivery_id])
        payload = json.loads(_unb64(url.rsplit("/", 1)[1].split(".")[0]))
        assert payload == [sent.key, links[sent.delivery_id]]  # the link's id, not its URL
        response = await web.client.get(path_of(url), headers={"User-Agent": FIREFOX})
        assert response.status_code == 302
        assert response.headers["location"] == target
    await web.ctx.events.flush()
    clicks = {e.delivery_id: e for e in events(web.app, "clicked")}
    assert clicks[slow.delivery_id].machine is False
    assert clicks[fast.delivery_id].machine is True
    assert clicks[fast.delivery_id].data["machine_reason"] == "too-fast"
    assert clicks[slow.delivery_id].data["url"] == target
    assert clicks[slow.delivery_id].data["link_id"] == links[slow.delivery_id]


async def test_click_token_never_redirects_elsewhere(web: Web) -> None:
    sent = make_delivery(web.app)
    link = store_link(web.app, sent.message_id, "https://www.example.com/")
    signer = web.app.signer
    good = signer.sign("click", [sent.key, link])
    other_key = LinkSigner(b"x" * 40, signer.base_url)
    refused = [
        tamper(good, [sent.key, link + 1]),  # the link swapped
        tamper(good, [sent.key, "https://evil.example/"]),  # a URL put in
        other_key.sign("click", [sent.key, link]),  # signed by someone else
        signer.sign("post", [sent.key, link]),  # minted for another purpose
        signer.sign("click", [sent.key, True]),  # not a link id
        good[:-3],  # truncated
    ]
    for token in refused:
        response = await web.client.get(f"/c/{token}")
        assert response.status_code == 404, token
        assert "location" not in response.headers
    # The target cannot come from the query either.
    response = await web.client.get(f"/c/{good}?url=https://evil.example/")
    assert response.headers["location"] == "https://www.example.com/"
    await web.ctx.events.flush()
    assert events(web.app, "forged_token") == []  # refused tokens record nothing
    assert len(events(web.app, "clicked")) == 1


async def test_a_signed_token_for_a_link_never_stored_is_refused(web: Web) -> None:
    """Whoever holds the signing secret still cannot mint a redirect: the link id must be
    one the engine stored."""
    sent = make_delivery(web.app)
    store_link(web.app, sent.message_id, "https://www.example.com/")
    never_stored = 10_000
    response = await web.client.get(path_of(web.app.signer.click_url(sent.key, never_stored)))
    assert response.status_code == 404
    assert "location" not in response.headers
    # A minted URL token is no better: it is in no delivery's message.
    minted = web.app.signer.sign("click", [sent.key, "https://evil.example/"])
    assert (await web.client.get(f"/c/{minted}")).status_code == 404
    await web.ctx.events.flush()
    assert all_events(web.app) == []


async def test_a_token_for_another_messages_link_is_refused(web: Web) -> None:
    newsletter = make_delivery(web.app)
    other = make_delivery(web.app, contact="C0002")
    elsewhere = store_link(web.app, other.message_id, "https://partner.example/promo")
    # A valid signature over the newsletter's delivery and the other message's link.
    url = web.app.signer.click_url(newsletter.key, elsewhere)
    response = await web.client.get(path_of(url), headers={"User-Agent": FIREFOX})
    assert response.status_code == 404
    assert "location" not in response.headers
    # The same link with its own message's delivery works.
    own = web.app.signer.click_url(other.key, elsewhere)
    assert (await web.client.get(path_of(own))).headers["location"] == (
        "https://partner.example/promo"
    )
    await web.ctx.events.flush()
    assert [e.delivery_id for e in events(web.app, "clicked")] == [other.delivery_id]


async def test_tokens_minted_before_stored_links_still_redirect(web: Web) -> None:
    """Emails sent before links were stored carry the URL in their tokens: a click on one
    still works while the delivery's stored HTML holds that very token."""
    sent = make_delivery(web.app)
    target = "https://www.example.com/ancienne-offre"
    old = web.app.signer.sign("click", [sent.key, target])  # the former payload
    with Session(web.app.engine) as session, session.begin():
        row = session.get(Delivery, sent.delivery_id)
        assert row is not None
        row.body_html = f'<a href="{web.app.signer.base_url}/c/{old}">Offre</a>'
    response = await web.client.get(f"/c/{old}", headers={"User-Agent": FIREFOX})
    assert response.status_code == 302
    assert response.headers["location"] == target
    # The same payload for another URL is in no email: refused.
    other = web.app.signer.sign("click", [sent.key, "https://www.example.com/autre"])
    assert (await web.client.get(f"/c/{other}")).status_code == 404
    await web.ctx.events.flush()
    (clicked,) = events(web.app, "clicked")
    assert clicked.delivery_id == sent.delivery_id and clicked.data["url"] == target
    assert "link_id" not in clicked.data


def all_events(app) -> list:  # type: ignore[no-untyped-def]
    from sqlmodel import Session, select

    from network_anim.db.models import Event

    with Session(app.engine) as session:
        return list(session.scalars(select(Event)))


async def test_forged_tokens_are_refused_and_record_nothing(web: Web) -> None:
    cid = contact_id(web.app, "C0001")
    forged = LinkSigner(b"f" * 40, web.app.signer.base_url).sign("unsubscribe", [cid, "email"])
    routes = [("/o/{}.gif", "GET"), ("/c/{}", "GET"), ("/p/{}", "GET"), ("/u/{}", "GET")]
    for path, method in [*routes, ("/u/{}", "POST")]:
        response = await web.client.request(
            method,
            path.format(forged),
            data={"List-Unsubscribe": "One-Click"} if method == "POST" else None,
        )
        assert response.status_code == 404, (path, method)
        assert "location" not in response.headers
    await web.ctx.events.flush()
    assert all_events(web.app) == []  # nothing recorded, whatever the route
    assert consent(web.app, cid, "email").basis == "consent"  # type: ignore[union-attr]


# -- post links ----------------------------------------------------------------------------


async def test_post_link_records_click_and_read_then_goes_to_the_portal(web: Web) -> None:
    sent = make_delivery(web.app)
    url = web.app.signer.post_url(sent.post_id, sent.contact_id)
    response = await web.client.get(path_of(url), headers={"User-Agent": FIREFOX})
    assert response.status_code == 302
    assert response.headers["location"] == f"http://localhost:8000/portal/posts/{sent.post_id}"
    # Twice: one read receipt, two clicks.
    await web.client.get(path_of(url), headers={"User-Agent": FIREFOX})
    await web.ctx.events.flush()
    clicks = events(web.app, "clicked")
    assert len(clicks) == 2
    assert all(c.delivery_id == sent.delivery_id and not c.machine for c in clicks)
    [read] = events(web.app, "read")
    assert (read.contact_id, read.data["post_id"]) == (sent.contact_id, sent.post_id)
    with Session(web.app.engine) as session:
        reads = list(session.scalars(select(PostRead)))
    assert [(r.post_id, r.contact_id) for r in reads] == [(sent.post_id, sent.contact_id)]


async def test_post_link_followed_by_a_scanner_is_not_a_read(web: Web) -> None:
    sent = make_delivery(web.app)
    url = web.app.signer.post_url(sent.post_id, sent.contact_id)
    response = await web.client.get(path_of(url), headers={"User-Agent": PROOFPOINT})
    assert response.status_code == 302
    await web.ctx.events.flush()
    [click] = events(web.app, "clicked")
    assert click.machine is True
    assert events(web.app, "read") == []
    with Session(web.app.engine) as session:
        assert session.scalar(select(func.count()).select_from(PostRead)) == 0


# -- one-click unsubscribe -----------------------------------------------------------------


async def test_get_shows_a_page_and_never_unsubscribes(web: Web) -> None:
    cid = contact_id(web.app, "C0001")
    url = web.app.signer.unsubscribe_url(cid, "email")
    for _ in range(3):  # scanners follow links, sometimes several times
        response = await web.client.get(path_of(url), headers={"User-Agent": PROOFPOINT})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert 'method="post"' in page and f'action="{url}"' in page
    assert 'name="List-Unsubscribe" value="One-Click"' in page
    assert "par e-mail" in page and "Animation Réseau" in page
    assert consent(web.app, cid, "email").basis == "consent"  # type: ignore[union-attr]
    await web.ctx.events.flush()
    assert events(web.app, "unsubscribed") == []


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
async def test_one_click_post_unsubscribes_at_once(web: Web, encoding: str) -> None:
    cid = contact_id(web.app, "C0001")
    url = web.app.signer.unsubscribe_url(cid, "email")
    body: dict[str, Any] = {"data": {"List-Unsubscribe": "One-Click"}}
    if encoding == "multipart":
        body["files"] = {"unused": ("x.txt", b"")}  # forces multipart/form-data
    response = await web.client.post(path_of(url), **body)
    assert response.status_code == 200
    assert "location" not in response.headers
    assert "Désinscription enregistrée" in response.text
    # Already in the database when the answer arrives: no flush of the batch writer.
    row = consent(web.app, cid, "email")
    assert row is not None and (row.basis, row.source) == ("opted_out", "one-click")
    assert row.updated_at == web.app.clock.now()
    [event] = events(web.app, "unsubscribed")
    assert (event.contact_id, event.channel) == (cid, "email")
    # A mail client retrying: same answer, one event.
    again = await web.client.post(path_of(url), data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    assert len(events(web.app, "unsubscribed")) == 1
    # SMS consent untouched; the page now says it is done, without a form.
    assert consent(web.app, cid, "sms").basis == "consent"  # type: ignore[union-attr]
    page = await web.client.get(path_of(url))
    assert "Vous ne recevez plus" in page.text and "<form" not in page.text


async def test_post_without_the_one_click_body_changes_nothing(web: Web) -> None:
    cid = contact_id(web.app, "C0001")
    url = web.app.signer.unsubscribe_url(cid, "email")
    response = await web.client.post(path_of(url), data={"List-Unsubscribe": "Maybe"})
    assert response.status_code == 400
    response = await web.client.post(path_of(url))
    assert response.status_code == 400
    assert consent(web.app, cid, "email").basis == "consent"  # type: ignore[union-attr]


async def test_unsubscribe_of_a_contact_without_consent_row(web: Web) -> None:
    # C0008 has no mobile and no SMS basis recorded: the row is created.
    cid = contact_id(web.app, "C0008")
    assert consent(web.app, cid, "sms") is None
    url = web.app.signer.unsubscribe_url(cid, "sms")
    response = await web.client.post(path_of(url), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and "par SMS" in response.text
    assert consent(web.app, cid, "sms").basis == "opted_out"  # type: ignore[union-attr]


# -- the batch writer ----------------------------------------------------------------------


def _rows(app: App, n: int, *, dedupe: str | None = None) -> list[dict[str, Any]]:
    return [
        event_row(
            type="opened",
            occurred_at=app.clock.now(),
            data={"i": i},
            dedupe_key=f"{dedupe}:{i % 3}" if dedupe else None,
        )
        for i in range(n)
    ]


async def test_events_are_written_in_batches_of_at_most_200(web: Web) -> None:
    writer = web.ctx.events
    assert (writer.flush_seconds, writer.max_batch) == (0.5, 200)
    before = writer.stats.flushes
    for row in _rows(web.app, 450):
        writer.record(row)
    await writer.flush()
    assert writer.stats.flushes - before == 3  # 200 + 200 + 50: three transactions
    assert len(events(web.app, "opened")) == 450


async def test_duplicates_are_written_once_on_both_backends(web: Web) -> None:
    writer = web.ctx.events
    for row in _rows(web.app, 7, dedupe="cb"):  # keys cb:0, cb:1, cb:2, repeated in one batch
        writer.record(row)
    await writer.flush()
    for row in _rows(web.app, 3, dedupe="cb"):  # and again in a later batch
        writer.record(row)
    await writer.flush()
    assert sorted(e.dedupe_key for e in events(web.app)) == ["cb:0", "cb:1", "cb:2"]


async def test_writer_flushes_on_its_timer_and_on_shutdown(network: App) -> None:
    writer = EventWriter(network.engine, flush_seconds=0.05)
    await writer.start()
    writer.record(_rows(network, 1)[0])
    for _ in range(100):  # no explicit flush: the timer writes it
        await asyncio.sleep(0.02)
        if events(network):
            break
    assert len(events(network)) == 1
    # Rows still queued at shutdown are written before stop() returns.
    writer.flush_seconds = 60.0
    await asyncio.sleep(0.06)  # the loop now waits on the long timer
    for row in _rows(network, 5):
        writer.record(row)
    await writer.stop()
    assert len(events(network)) == 6
    # After stop a row is written at once rather than lost.
    writer.record(_rows(network, 1)[0])
    assert len(events(network)) == 7


async def test_a_full_batch_is_written_without_waiting_for_the_timer(network: App) -> None:
    async with EventWriter(network.engine, flush_seconds=60.0, max_batch=50) as writer:
        for row in _rows(network, 49):
            writer.record(row)
        await asyncio.sleep(0.1)
        assert events(network) == []  # below the batch size: waits for its window
        writer.record(_rows(network, 1)[0])
        for _ in range(100):
            await asyncio.sleep(0.02)
            if events(network):
                break
        assert len(events(network)) == 50
        assert writer.stats.flushes == 1


async def test_lifespan_drains_the_queue_on_shutdown(network: App) -> None:
    fastapi_app = create_app(network)
    sent = make_delivery(network)
    async with fastapi_app.router.lifespan_context(fastapi_app):
        transport = httpx.ASGITransport(app=fastapi_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for _ in range(3):
                pixel = path_of(network.signer.open_pixel_url(sent.key))
                assert (await client.get(pixel, headers={"User-Agent": FIREFOX})).status_code == 200
        assert events(network, "opened") == []  # still in the writer's 0.5 s window
    assert len(events(network, "opened")) == 3


# -- OpenAPI, CLI, pure parts ----------------------------------------------------------------


async def test_openapi_lists_tracking_and_webhook_paths(web: Web) -> None:
    response = await web.client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path, method in [
        ("/o/{token}.gif", "get"),
        ("/c/{token}", "get"),
        ("/p/{token}", "get"),
        ("/u/{token}", "get"),
        ("/u/{token}", "post"),
        ("/hooks/twilio/status", "post"),
        ("/hooks/twilio/inbound", "post"),
    ]:
        assert method in paths[path], (path, method)
    inbound = paths["/hooks/twilio/inbound"]["post"]
    form = inbound["requestBody"]["content"]["application/x-www-form-urlencoded"]
    assert {"From", "Body", "MessageSid"} <= set(form["schema"]["properties"])
    assert any(p["name"] == "X-Twilio-Signature" for p in inbound["parameters"])


def test_serve_help_has_an_example() -> None:
    from network_anim.cli.serve_cmd import serve

    result = CliRunner().invoke(serve, ["--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "--port" in result.output
    assert "127.0.0.1" in result.output and "8000" in result.output


@pytest.mark.parametrize(
    ("agent", "seconds", "kind", "reason"),
    [
        ("Mozilla/5.0", 3600, "open", "apple-mail-privacy"),
        (" mozilla/5.0 ", None, "click", "apple-mail-privacy"),
        (FIREFOX, 3600, "open", None),
        (FIREFOX, 2, "open", None),  # opening at once is human; clicking at once is not
        (FIREFOX, 2, "click", "too-fast"),
        (FIREFOX, -5, "click", "too-fast"),
        (FIREFOX, 10, "click", None),
        (FIREFOX, None, "click", None),
        ("Mozilla/5.0 (compatible; GoogleImageProxy)", 5, "open", None),
        ("Mozilla/5.0 (Windows NT 10.0) BingPreview/1.0b", 3600, "click", "microsoft-safelinks"),
        (PROOFPOINT, 3600, "click", "proofpoint"),
        ("Mimecast-URL-Protect", 3600, "click", "mimecast"),
        ("Barracuda Sentinel (EE)", 3600, "open", "barracuda"),
        ("curl/8.5.0", 3600, "click", "tool"),
        ("python-requests/2.32", 3600, "open", "tool"),
        ("facebookexternalhit/1.1 Facebot Twitterbot/1.0", 3600, "click", "link-preview"),
        ("Mozilla/5.0 (compatible; AhrefsBot/7.0)", 3600, "click", "bot"),
        ("Mozilla/5.0 (Linux; Android 12; CUBOT X19) AppleWebKit/537.36", 3600, "click", None),
        ("", 3600, "open", "no-user-agent"),
    ],
)
def test_machine_rules(agent: str, seconds: float | None, kind: Any, reason: str | None) -> None:
    assert machine_reason(agent, seconds, kind) == reason
    assert is_machine(agent, seconds, kind) is (reason is not None)


def test_click_threshold_is_configurable() -> None:
    assert is_machine(FIREFOX, 20, "click", min_click_seconds=30) is True
    assert is_machine(FIREFOX, 20, "click", min_click_seconds=5) is False


def test_track_html_wraps_outside_links_and_adds_the_pixel() -> None:
    signer = LinkSigner(b"s" * 32, "https://anim.example")
    post = signer.post_url(3, 4)
    html = (
        "<html><body>"
        '<a href="https://shop.example/p?a=1&amp;b=2">shop</a> '
        f"<a href='{post}'>post</a> "
        '<a href="mailto:x@example.com">mail</a>'
        "</body></html>"
    )
    asked: list[str] = []
    tracked = signer.track_html(html, "k:1", lambda url: asked.append(url) or 41)
    assert "https://shop.example" not in tracked.split("/c/")[0]
    # The stored link's id travels in the token, never its URL.
    assert asked == ["https://shop.example/p?a=1&b=2"]
    wrapped = tracked.split('href="')[1].split('"')[0]
    assert wrapped.startswith("https://anim.example/c/")
    assert signer.verify("click", wrapped.rsplit("/", 1)[1]) == ["k:1", 41]
    assert f"href='{post}'" in tracked and 'href="mailto:x@example.com"' in tracked
    pixel = signer.open_pixel_url("k:1")
    assert tracked.endswith(
        f'<img src="{pixel}" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px"></body></html>'
    )
    token = pixel.rsplit("/", 1)[1].removesuffix(".gif")
    assert signer.verify("open", token) == ["k:1"]
    assert json.loads(_unb64(token.split(".")[0])) == ["k:1"]
