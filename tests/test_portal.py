"""Partner portal over both databases: magic-link login (single use, 15-minute expiry,
hash-only storage, concurrent use), sessions and CSRF, posts by level (403 above the
contact's level), read receipts, flash posts, points and the rewards shop, challenge
registration, preferences, Markdown sanitising, English."""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from network_anim.app import App
from network_anim.challenges.ledger import balance, credit
from network_anim.clock import SimulatedClock
from network_anim.db.models import (
    Consent,
    Contact,
    Event,
    Participant,
    PortalLogin,
    PortalSession,
    Post,
    PostAttachment,
    PostRead,
    Reward,
)
from network_anim.web.app import create_app
from network_anim.web.portal import auth
from network_anim.web.portal.markdown import render_markdown
from tests.conftest import REPO

LINK = re.compile(r"http://localhost:8000(/portal/login/[A-Za-z0-9_-]+)")


@dataclass
class Portal:
    client: httpx.AsyncClient
    app: App

    def contact(self, external_id: str) -> Contact:
        with Session(self.app.engine) as session:
            row = session.scalars(select(Contact).where(Contact.external_id == external_id)).one()
            session.expunge(row)
            return row

    async def sign_in(self, external_id: str) -> str:
        """Sign in as a contact with a fresh link; returns the page's CSRF token."""
        contact = self.contact(external_id)
        issued = auth.issue_login(self.app, contact.id or 0, "email")
        assert issued is not None
        answer = await self.client.post(f"/portal/login/{issued[1]}")
        assert answer.status_code == 303, answer.text
        return await self.csrf()

    async def csrf(self, page: str = "/portal/points") -> str:
        html = (await self.client.get(page)).text
        match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
        assert match, html[:500]
        return match.group(1)


@pytest.fixture
async def portal(network: App, config_path: Path) -> AsyncIterator[Portal]:
    (config_path.parent / "examples").mkdir(exist_ok=True)
    shutil.copy(REPO / "examples" / "objectives.csv", config_path.parent / "examples")
    fastapi_app = create_app(network)
    async with fastapi_app.router.lifespan_context(fastapi_app):
        transport = httpx.ASGITransport(app=fastapi_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Portal(client, network)


def add_post(
    app: App, title: str, *, level: str = "seller", flash: bool = False, body: str = ""
) -> int:
    now = app.clock.now()
    with Session(app.engine) as session, session.begin():
        post = Post(
            title=title,
            body=body or f"Texte de **{title}**",
            level=level,
            is_flash=flash,
            published_at=now - timedelta(hours=1),
            expires_at=now + timedelta(hours=4) if flash else None,
            created_at=now,
        )
        session.add(post)
        session.flush()
        return post.id or 0


# -- login --------------------------------------------------------------------------------------


async def test_login_link_by_email_then_confirm_then_sign_in(portal: Portal) -> None:
    answer = await portal.client.post(
        "/portal/login", data={"identifier": "Julien.Garnier@tsl.example"}
    )
    assert answer.status_code == 200 and 'id="sent"' in answer.text
    outbox = portal.app.loaded.resolve(Path("var/outbox/email"))
    (mail,) = list(outbox.glob("*.eml"))
    message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
    assert message["To"].addresses[0].addr_spec == "julien.garnier@tsl.example"
    path = LINK.search(message.get_body().get_content()).group(1)  # type: ignore[union-attr]
    token = path.rsplit("/", 1)[1]
    assert len(token) >= 43  # 256 bits in URL-safe base64
    with Session(portal.app.engine) as session:
        row = session.scalars(select(PortalLogin)).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() != token
    assert row.expires_at - row.created_at == timedelta(minutes=15)

    # A GET (a mail scanner) only shows the confirmation page.
    page = await portal.client.get(path)
    assert page.status_code == 200 and 'id="sign-in"' in page.text
    assert auth.SESSION_COOKIE not in page.headers.get("set-cookie", "")
    assert (await portal.client.get("/portal/")).status_code == 303

    signed = await portal.client.post(path)
    assert signed.status_code == 303 and signed.headers["location"] == "/portal/"
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/portal" in cookie
    assert "secure" not in cookie  # base_url is http here
    home = await portal.client.get("/portal/")
    assert home.status_code == 200 and "Actualités" in home.text

    # Sign out: the session is revoked server-side.
    csrf = await portal.csrf()
    out = await portal.client.post("/portal/logout", data={"csrf": csrf})
    assert out.status_code == 303
    with Session(portal.app.engine) as session:
        assert session.scalars(select(PortalSession)).one().revoked_at is not None
    assert (await portal.client.get("/portal/")).status_code == 303


async def test_unknown_identifier_gets_the_same_answer_and_no_mail(portal: Portal) -> None:
    answer = await portal.client.post("/portal/login", data={"identifier": "nobody@x.example"})
    assert answer.status_code == 200 and 'id="sent"' in answer.text
    with Session(portal.app.engine) as session:
        assert session.scalar(select(func.count()).select_from(PortalLogin)) == 0


async def test_login_by_mobile_uses_the_sms_transport(portal: Portal) -> None:
    answer = await portal.client.post("/portal/login", data={"identifier": "06 23 45 67 89"})
    assert answer.status_code == 200
    with Session(portal.app.engine) as session:
        row = session.scalars(select(PortalLogin)).one()
    assert row.channel == "sms" and row.contact_id == portal.contact("C0002").id
    outbox = portal.app.loaded.resolve(Path("var/outbox/sms"))
    assert any("/portal/login/" in p.read_text() for p in outbox.rglob("*") if p.is_file())


async def test_reused_link_is_refused(portal: Portal) -> None:
    contact = portal.contact("C0002")
    _, token = auth.issue_login(portal.app, contact.id or 0, "email") or (0, "")
    assert (await portal.client.post(f"/portal/login/{token}")).status_code == 303
    portal.client.cookies.clear()
    again = await portal.client.post(f"/portal/login/{token}")
    assert again.status_code == 400 and auth.SESSION_COOKIE not in again.headers.get(
        "set-cookie", ""
    )
    assert (await portal.client.get(f"/portal/login/{token}")).status_code == 400


async def test_expired_link_is_refused(portal: Portal, clock: SimulatedClock) -> None:
    contact = portal.contact("C0002")
    _, token = auth.issue_login(portal.app, contact.id or 0, "email") or (0, "")
    clock.advance(timedelta(minutes=15, seconds=1))
    assert (await portal.client.get(f"/portal/login/{token}")).status_code == 400
    assert (await portal.client.post(f"/portal/login/{token}")).status_code == 400
    assert (await portal.client.post("/portal/login/forged-token")).status_code == 400


async def test_two_simultaneous_posts_give_one_session(portal: Portal) -> None:
    contact = portal.contact("C0002")
    _, token = auth.issue_login(portal.app, contact.id or 0, "email") or (0, "")
    answers = await asyncio.gather(
        *(portal.client.post(f"/portal/login/{token}") for _ in range(4))
    )
    assert sorted(a.status_code for a in answers) == [303, 400, 400, 400]
    with Session(portal.app.engine) as session:
        assert session.scalar(select(func.count()).select_from(PortalSession)) == 1


async def test_links_per_contact_are_capped(portal: Portal) -> None:
    contact = portal.contact("C0002")
    issued = [auth.issue_login(portal.app, contact.id or 0, "email") for _ in range(6)]
    assert issued[-1] is None and all(issued[:5])


async def test_every_page_needs_a_session(portal: Portal) -> None:
    for path in ("/portal/", "/portal/posts/1", "/portal/points", "/portal/rewards",
                 "/portal/challenges", "/portal/challenges/pbx-2027", "/portal/preferences"):  # fmt: skip
        answer = await portal.client.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/portal/login"
    portal.client.cookies.set(auth.SESSION_COOKIE, "made-up", path="/portal")
    assert (await portal.client.get("/portal/")).status_code == 303


async def test_session_expires(portal: Portal, clock: SimulatedClock) -> None:
    await portal.sign_in("C0002")
    clock.advance(auth.SESSION_TTL + timedelta(seconds=1))
    assert (await portal.client.get("/portal/")).status_code == 303


async def test_posts_without_csrf_are_refused(portal: Portal) -> None:
    await portal.sign_in("C0002")
    for path, data in (
        ("/portal/rewards/coffret-gourmand", {}),
        ("/portal/challenges/pbx-2027/register", {"csrf": "0" * 64}),
        ("/portal/preferences", {"channel": "email", "action": "unsubscribe"}),
        ("/portal/logout", {}),
    ):
        assert (await portal.client.post(path, data=data)).status_code == 403, path


# -- posts ----------------------------------------------------------------------------------------


async def test_seller_cannot_open_a_director_post(portal: Portal) -> None:
    director_post = add_post(portal.app, "Résultats confidentiels", level="director")
    correspondent_post = add_post(portal.app, "Note aux correspondants", level="correspondent")
    seller_post = add_post(portal.app, "Nouveau catalogue")
    await portal.sign_in("C0002")  # seller
    assert (await portal.client.get(f"/portal/posts/{director_post}")).status_code == 403
    assert (await portal.client.get(f"/portal/posts/{correspondent_post}")).status_code == 403
    assert (await portal.client.get(f"/portal/posts/{seller_post}")).status_code == 200
    listing = (await portal.client.get("/portal/")).text
    assert "Nouveau catalogue" in listing and "confidentiels" not in listing
    assert (await portal.client.get("/portal/posts/999999")).status_code == 404
    with Session(portal.app.engine) as session:
        assert session.scalar(select(func.count()).select_from(PostRead)) == 1

    portal.client.cookies.clear()
    await portal.sign_in("C0001")  # director sees everything
    assert (await portal.client.get(f"/portal/posts/{director_post}")).status_code == 200
    assert (await portal.client.get(f"/portal/posts/{correspondent_post}")).status_code == 200


async def test_read_receipt_and_flash_post_gone_once_read(portal: Portal) -> None:
    post = add_post(portal.app, "Catalogue 2027")
    flash = add_post(portal.app, "Rupture de stock X200", flash=True)
    await portal.sign_in("C0002")
    listing = (await portal.client.get("/portal/")).text
    assert f'data-flash="{flash}"' in listing
    assert listing.index("Rupture de stock") < listing.index("Catalogue 2027")  # on top
    assert (await portal.client.get(f"/portal/posts/{flash}")).status_code == 200
    assert (await portal.client.get(f"/portal/posts/{post}")).status_code == 200
    assert (await portal.client.get(f"/portal/posts/{post}")).status_code == 200
    listing = (await portal.client.get("/portal/")).text
    assert f'data-flash="{flash}"' not in listing and "Catalogue 2027" in listing
    contact_id = portal.contact("C0002").id
    with Session(portal.app.engine) as session:
        reads = session.scalars(select(PostRead).where(PostRead.contact_id == contact_id)).all()
        events = session.scalars(select(Event).where(Event.type == "read")).all()
    assert {r.post_id for r in reads} == {post, flash}
    assert len(events) == 2 and {e.data["via"] for e in events} == {"portal"}


async def test_expired_flash_post_is_gone(portal: Portal, clock: SimulatedClock) -> None:
    flash = add_post(portal.app, "Offre du jour", flash=True)
    await portal.sign_in("C0002")
    clock.advance(timedelta(hours=5))
    assert "Offre du jour" not in (await portal.client.get("/portal/")).text
    assert (await portal.client.get(f"/portal/posts/{flash}")).status_code == 410


def test_markdown_is_rendered_and_sanitised() -> None:
    html = render_markdown(
        "# Titre\n\n**gras** <script>alert(1)</script> <img src=x onerror=alert(1)>\n\n"
        "[ok](https://example.com) [bad](javascript:alert(1))"
    )
    assert "<h1>Titre</h1>" in html and "<strong>gras</strong>" in html
    assert "<script" not in html and "<img" not in html
    assert 'href="https://example.com"' in html and 'href="javascript' not in html


async def test_post_page_renders_markdown_safely(portal: Portal) -> None:
    post = add_post(portal.app, "Tarifs", body="Voir **la grille** <script>x()</script>")
    await portal.sign_in("C0002")
    page = (await portal.client.get(f"/portal/posts/{post}")).text
    assert "<strong>la grille</strong>" in page and "<script>x()" not in page


# -- points, rewards ------------------------------------------------------------------------------


def give_points(app: App, contact_id: int, points: int) -> None:
    with Session(app.engine) as session, session.begin():
        credit(
            session,
            contact_id=contact_id,
            points=points,
            kind="bonus",
            source_key=f"test:{contact_id}:{points}",
            now=app.clock.now(),
            reason="Bienvenue",
        )


async def test_points_and_redemption(portal: Portal) -> None:
    from network_anim.challenges.rewards import sync_rewards

    sync_rewards(portal.app)
    seller = portal.contact("C0002")
    give_points(portal.app, seller.id or 0, 1000)
    csrf = await portal.sign_in("C0002")
    page = (await portal.client.get("/portal/points")).text
    assert 'id="balance">1000<' in page and "Bienvenue" in page

    done = await portal.client.post("/portal/rewards/coffret-gourmand", data={"csrf": csrf})
    assert done.status_code == 303
    shop = (await portal.client.get(done.headers["location"])).text
    assert 'id="done"' in shop and 'id="balance">200<' in shop
    with Session(portal.app.engine) as session:
        assert balance(session, seller.id or 0) == 200
        stock = session.scalar(select(Reward.stock).where(Reward.key == "coffret-gourmand"))
    assert stock == 99

    refused = await portal.client.post("/portal/rewards/coffret-gourmand", data={"csrf": csrf})
    assert refused.status_code == 409 and 'id="error"' in refused.text
    with Session(portal.app.engine) as session:
        assert session.scalar(select(Reward.stock).where(Reward.key == "coffret-gourmand")) == 99
    history = (await portal.client.get("/portal/points")).text
    assert "Coffret gourmand" in history


# -- challenges -----------------------------------------------------------------------------------


async def test_challenge_registration_objectives_and_leaderboard(portal: Portal) -> None:
    from network_anim.challenges.upkeep import sync_challenges

    sync_challenges(portal.app)
    csrf = await portal.sign_in("C0002")
    page = await portal.client.get("/portal/challenges/pbx-2027")
    assert page.status_code == 200 and 'id="register"' in page.text
    assert "1500" in page.text  # the contact's own objective milestones
    done = await portal.client.post("/portal/challenges/pbx-2027/register", data={"csrf": csrf})
    assert done.status_code == 303
    page = await portal.client.get("/portal/challenges/pbx-2027")
    assert 'id="registered"' in page.text and 'id="leaderboard"' in page.text
    with Session(portal.app.engine) as session:
        row = session.scalars(select(Participant)).one()
    assert row.via == "portal" and row.contact_id == portal.contact("C0002").id
    assert (await portal.client.get("/portal/challenges/nope")).status_code == 404
    assert "Challenge PBX 2027" in (await portal.client.get("/portal/challenges")).text


# -- preferences, language ------------------------------------------------------------------------


async def test_preferences_unsubscribe_from_email(portal: Portal) -> None:
    csrf = await portal.sign_in("C0002")
    done = await portal.client.post(
        "/portal/preferences", data={"csrf": csrf, "channel": "email", "action": "unsubscribe"}
    )
    assert done.status_code == 303
    page = (await portal.client.get(done.headers["location"])).text
    assert 'id="saved"' in page and "Désinscrit" in page
    contact_id = portal.contact("C0002").id
    with Session(portal.app.engine) as session:
        basis = session.scalar(
            select(Consent.basis).where(
                Consent.contact_id == contact_id, Consent.channel == "email"
            )
        )
        events = session.scalars(select(Event).where(Event.type == "unsubscribed")).all()
    assert basis == "opted_out" and len(events) == 1 and events[0].data["source"] == "portal"
    bad = await portal.client.post(
        "/portal/preferences", data={"csrf": csrf, "channel": "fax", "action": "unsubscribe"}
    )
    assert bad.status_code == 400


async def test_english_for_english_contacts_and_on_request(portal: Portal) -> None:
    await portal.sign_in("C0012")  # language "en" in the sample network
    assert "News" in (await portal.client.get("/portal/")).text
    switch = await portal.client.get("/portal/lang/fr", params={"next": "/portal/points"})
    assert switch.status_code == 303 and switch.headers["location"] == "/portal/points"
    assert "Mes points" in (await portal.client.get("/portal/points")).text
    evil = await portal.client.get("/portal/lang/en", params={"next": "https://evil.example"})
    assert evil.headers["location"] == "/portal/"
    assert "Sign in" in (await portal.client.get("/portal/login")).text


async def test_post_documents_download_by_level(portal: Portal, tmp_path: Path) -> None:
    from network_anim.compose.attachments import attach

    document = tmp_path / "tarifs-2027.pdf"
    document.write_bytes(b"%PDF-1.4 tarifs")
    public = add_post(portal.app, "Tarifs 2027")
    private = add_post(portal.app, "Marges directeurs", level="director")
    with Session(portal.app.engine) as session, session.begin():
        for post_id in (public, private):
            attach(session, portal.app.data_dir, post_id, (document,), portal.app.clock.now())
    with Session(portal.app.engine) as session:
        files = dict(session.execute(select(PostAttachment.post_id, PostAttachment.id)).all())
    await portal.sign_in("C0002")  # a seller
    page = (await portal.client.get(f"/portal/posts/{public}")).text
    assert "tarifs-2027.pdf" in page
    download = await portal.client.get(f"/portal/posts/{public}/files/{files[public]}")
    assert download.status_code == 200 and download.content == b"%PDF-1.4 tarifs"
    assert "attachment" in download.headers["content-disposition"]
    assert (
        await portal.client.get(f"/portal/posts/{private}/files/{files[private]}")
    ).status_code == 403
    # A file id of another post is not reachable through this one.
    assert (
        await portal.client.get(f"/portal/posts/{public}/files/{files[private]}")
    ).status_code == 404
