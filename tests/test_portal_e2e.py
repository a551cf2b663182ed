"""The portal in a real browser (Debian's headless Chromium at /usr/bin/chromium, driven
by Playwright; never a downloaded browser) against uvicorn on a free local port: login
link by email through the SMTP test server, a post read, a flash post gone after reading,
a challenge registration, a redemption, an email unsubscribe. Screenshots of the post
and challenge pages go to test-artifacts/."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App, open_app
from network_anim.challenges.ledger import balance
from network_anim.challenges.rewards import sync_rewards
from network_anim.challenges.upkeep import sync_challenges
from network_anim.clock import SimulatedClock
from network_anim.db.engine import make_engine
from network_anim.db.migrate import upgrade
from network_anim.db.models import Consent, Contact, Participant, PostRead, Reward
from network_anim.network.importer import import_network
from network_anim.network.network_csv import ImportDefaults, read_network_csv
from network_anim.web.app import create_app
from tests.conftest import REPO, SAMPLE_NETWORK, WEDNESDAY_MORNING, use_smtp, write_config
from tests.test_portal import add_post, give_points

CHROMIUM = Path("/usr/bin/chromium")
playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(
    tmp_path: Path, smtp_server, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[App, str]]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    url = f"sqlite:///{tmp_path / 'portal.db'}"
    upgrade(make_engine(url))
    config = write_config(tmp_path, url)
    use_smtp(config, smtp_server)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    config.write_text(
        config.read_text(encoding="utf-8").replace('"http://localhost:8000"', f'"{base}"'),
        encoding="utf-8",
    )
    (tmp_path / "examples").mkdir()
    shutil.copy(REPO / "examples" / "objectives.csv", tmp_path / "examples")
    app = open_app(config, clock=SimulatedClock(WEDNESDAY_MORNING))
    import_network(
        app.engine,
        read_network_csv(SAMPLE_NETWORK, ImportDefaults()),
        now=app.clock.now(),
        source="test",
    )
    sync_rewards(app)
    sync_challenges(app)
    server = uvicorn.Server(
        uvicorn.Config(create_app(app), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield app, base
    server.should_exit = True
    thread.join(10)
    app.close()


def test_portal_in_a_browser(served: tuple[App, str], smtp_server, artifacts_dir: Path) -> None:  # type: ignore[no-untyped-def]
    app, base = served
    with Session(app.engine) as session:
        seller = session.scalars(select(Contact).where(Contact.external_id == "C0002")).one()
    seller_id = seller.id or 0
    post = add_post(
        app, "Nouveau catalogue 2027", body="## Les nouveautés\n\n- **PBX S80**\n- DECT D12"
    )
    flash = add_post(app, "Rupture de stock X200", flash=True)
    give_points(app, seller_id, 1000)

    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        page = browser.new_page()
        # 1. Ask for a link; read it from the SMTP test server.
        page.goto(f"{base}/portal/login")
        page.fill("#identifier", "julien.garnier@tsl.example")
        page.click("button[type=submit]")
        page.wait_for_selector("#sent")
        deadline = time.monotonic() + 10
        while not smtp_server.messages:
            assert time.monotonic() < deadline, "no login mail"
            time.sleep(0.05)
        text = smtp_server.messages[-1].message().get_body().get_content()
        link = re.search(rf"{re.escape(base)}/portal/login/[A-Za-z0-9_-]+", text).group(0)  # type: ignore[union-attr]

        # 2. Follow it: a confirmation page, then the sign-in button.
        page.goto(link)
        page.click("#sign-in")
        page.wait_for_url(f"{base}/portal/")
        assert page.locator(f'[data-flash="{flash}"]').count() == 1

        # 3. Read the flash post: it is gone from the list afterwards.
        page.click(f'[data-flash="{flash}"] a')
        page.wait_for_selector("article h1")
        page.goto(f"{base}/portal/")
        assert page.locator(f'[data-flash="{flash}"]').count() == 0

        # 4. Read a post: a read receipt, and a screenshot.
        page.click(f'[data-post="{post}"] a')
        page.wait_for_selector("article h1")
        assert page.locator("article h2").inner_text() == "Les nouveautés"
        page.screenshot(path=str(artifacts_dir / "portal-post.png"), full_page=True)
        with Session(app.engine) as session:
            reads = set(
                session.scalars(select(PostRead.post_id).where(PostRead.contact_id == seller_id))
            )
        assert reads == {post, flash}

        # 5. Register to the challenge.
        page.goto(f"{base}/portal/challenges/pbx-2027")
        page.click("#register")
        page.wait_for_selector("#registered")
        page.screenshot(path=str(artifacts_dir / "portal-challenge.png"), full_page=True)
        with Session(app.engine) as session:
            assert session.scalars(select(Participant.via)).one() == "portal"

        # 6. Redeem a reward: balance and stock change.
        page.goto(f"{base}/portal/rewards")
        assert page.locator("#balance").inner_text() == "1000"
        page.click('[data-reward="coffret-gourmand"] button')
        page.wait_for_selector("#done")
        assert page.locator("#balance").inner_text() == "200"
        assert page.locator('[data-reward="coffret-gourmand"] .stock').inner_text() == "99"
        with Session(app.engine) as session:
            assert balance(session, seller_id) == 200
            assert (
                session.scalar(select(Reward.stock).where(Reward.key == "coffret-gourmand")) == 99
            )

        # 7. Unsubscribe from email.
        page.goto(f"{base}/portal/preferences")
        page.click('[data-channel="email"] button')
        page.wait_for_selector("#saved")
        assert "Désinscrit" in page.locator('[data-channel="email"] .status').inner_text()
        with Session(app.engine) as session:
            basis = session.scalar(
                select(Consent.basis).where(
                    Consent.contact_id == seller_id, Consent.channel == "email"
                )
            )
        assert basis == "opted_out"

        # 8. The cookie the browser holds is HttpOnly and SameSite=Lax.
        (cookie,) = [c for c in page.context.cookies() if c["name"] == "netanim_session"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        browser.close()
    assert (artifacts_dir / "portal-post.png").stat().st_size > 0
    assert (artifacts_dir / "portal-challenge.png").stat().st_size > 0
