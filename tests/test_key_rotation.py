"""Key rotation of signed links: a link signed before a rotation still works through the web
app (unsubscribe, click, open, post), new links carry the new key, a key that is not in the
list is refused, and no key ever reaches a log or an error message."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from email import policy
from email.parser import BytesParser
from pathlib import Path

import httpx
import pytest

from network_anim.app import App, open_app
from network_anim.compose.links import BadToken, LinkSigner, load_previous_secrets
from network_anim.errors import UserError
from network_anim.web import WebContext
from network_anim.web.app import create_app
from tests.conftest import WELCOME, broadcast
from tests.test_web_tracking import (
    FIREFOX,
    consent,
    contact_id,
    events,
    make_delivery,
    path_of,
    store_link,
)

OLD_KEY = "old-key-" + "o" * 40
NEW_KEY = "new-key-" + "n" * 40
OLDER_KEY = "older-key-" + "d" * 40
STRANGER_KEY = "stranger-" + "s" * 40
KEYS = (OLD_KEY, NEW_KEY, OLDER_KEY, STRANGER_KEY)
# A signed link in a message: its route, then its token.
SIGNED_LINK = re.compile(r"/([ucpo])/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)")
PURPOSES = {"u": "unsubscribe", "c": "click", "p": "post", "o": "open"}


@pytest.fixture
def before(network: App, monkeypatch: pytest.MonkeyPatch) -> App:
    """The app as it ran before the rotation: signing with the old key."""
    monkeypatch.setenv("NETANIM_SECRET_KEY", OLD_KEY)
    monkeypatch.delenv("NETANIM_SECRET_KEY_PREVIOUS", raising=False)
    assert network.signer  # the signer is built from the environment on first use
    return network


Restart = Callable[[str, str | None], App]


@pytest.fixture
def restart(before: App, monkeypatch: pytest.MonkeyPatch) -> Iterator[Restart]:
    """Restart the same deployment with a key and a list of previous keys (None: unset)."""
    started: list[App] = []

    def start(current: str, previous: str | None) -> App:
        monkeypatch.setenv("NETANIM_SECRET_KEY", current)
        if previous is None:
            monkeypatch.delenv("NETANIM_SECRET_KEY_PREVIOUS", raising=False)
        else:
            monkeypatch.setenv("NETANIM_SECRET_KEY_PREVIOUS", previous)
        app = open_app(before.loaded.path, clock=before.clock)
        started.append(app)
        assert app.signer
        return app

    yield start
    for app in started:
        app.close()


@asynccontextmanager
async def serving(app: App) -> AsyncIterator[tuple[httpx.AsyncClient, WebContext]]:
    """The real web app with its lifespan (the event writer) running."""
    web = create_app(app)
    async with web.router.lifespan_context(web):
        transport = httpx.ASGITransport(app=web)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, web.state.netanim


async def test_links_signed_before_a_rotation_still_work(
    before: App, restart: Restart, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cid = contact_id(before, "C0001")
    sent = make_delivery(before, seconds_ago=600)
    link = store_link(before, sent.message_id, "https://www.example.com/offre")
    old_links = {
        "unsubscribe": before.signer.unsubscribe_url(cid, "email"),
        "click": before.signer.click_url(sent.key, link),
        "open": before.signer.open_pixel_url(sent.key),
        "post": before.signer.post_url(sent.post_id, sent.contact_id),
    }

    after = restart(NEW_KEY, f"{OLD_KEY}, {OLDER_KEY}")
    async with serving(after) as (client, ctx):
        headers = {"User-Agent": FIREFOX}
        click = await client.get(path_of(old_links["click"]), headers=headers)
        assert click.status_code == 302
        assert click.headers["location"] == "https://www.example.com/offre"
        assert (await client.get(path_of(old_links["open"]), headers=headers)).status_code == 200
        post = await client.get(path_of(old_links["post"]), headers=headers)
        assert post.status_code == 302 and post.headers["location"].endswith(
            f"/portal/posts/{sent.post_id}"
        )
        page = await client.get(path_of(old_links["unsubscribe"]))
        assert page.status_code == 200 and 'method="post"' in page.text
        done = await client.post(
            path_of(old_links["unsubscribe"]), data={"List-Unsubscribe": "One-Click"}
        )
        assert done.status_code == 200 and "Désinscription enregistrée" in done.text
        await ctx.events.flush()

    row = consent(after, cid, "email")
    assert row is not None and row.basis == "opted_out"
    assert [e.delivery_id for e in events(after, "clicked")] == [sent.delivery_id] * 2
    assert [e.delivery_id for e in events(after, "opened")] == [sent.delivery_id]
    assert [e.contact_id for e in events(after, "unsubscribed")] == [cid]
    assert not any(key in caplog.text for key in KEYS)


async def test_a_key_not_in_the_list_is_refused(
    before: App, restart: Restart, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cid = contact_id(before, "C0001")
    sent = make_delivery(before)
    link = store_link(before, sent.message_id, "https://www.example.com/")
    old_unsubscribe = before.signer.unsubscribe_url(cid, "email")
    old_click = before.signer.click_url(sent.key, link)
    stranger = LinkSigner(STRANGER_KEY.encode(), before.signer.base_url)
    forged_unsubscribe = stranger.unsubscribe_url(cid, "email")

    # The old key retired: only the new one and an older one are listed.
    after = restart(NEW_KEY, OLDER_KEY)
    async with serving(after) as (client, ctx):
        for url in (old_unsubscribe, forged_unsubscribe):
            response = await client.post(path_of(url), data={"List-Unsubscribe": "One-Click"})
            assert response.status_code == 404, url
            assert (await client.get(path_of(url))).status_code == 404
        response = await client.get(path_of(old_click))
        assert response.status_code == 404 and "location" not in response.headers
        await ctx.events.flush()

    assert consent(after, cid, "email").basis == "consent"  # type: ignore[union-attr]
    assert events(after) == []
    assert "refused unsubscribe token" in caplog.text  # the refusal is logged...
    assert not any(key in caplog.text for key in KEYS)  # ...never a key


def test_new_links_are_signed_with_the_new_key(
    cli,  # type: ignore[no-untyped-def]
    network: App,
    config_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A broadcast after the rotation: every link of every email written verifies with the
    new key alone, and with no previous key."""
    monkeypatch.setenv("NETANIM_SECRET_KEY", NEW_KEY)
    monkeypatch.setenv("NETANIM_SECRET_KEY_PREVIOUS", OLD_KEY)
    result = broadcast(cli, config_path, *WELCOME, "--id", "after-rotation")
    assert result.code == 0, result
    emails = sorted((config_path.parent / "var" / "outbox" / "email").glob("*.eml"))
    assert emails
    base = network.signer.base_url
    new_only = LinkSigner(NEW_KEY.encode(), base)
    old_only = LinkSigner(OLD_KEY.encode(), base)
    checked = 0
    for email in emails:
        text = _readable(email)
        for route, token in SIGNED_LINK.findall(text):
            new_only.verify(PURPOSES[route], token)
            with pytest.raises(BadToken):
                old_only.verify(PURPOSES[route], token)
            checked += 1
    assert checked >= 2 * len(emails)  # at least the unsubscribe and the post link of each


def _readable(eml: Path) -> str:
    """An email's headers and decoded parts (links are folded and quoted-printable on disk)."""
    message = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    parts = [part.get_content() for part in message.walk() if not part.is_multipart()]
    return "\n".join([*(str(value) for value in message.values()), *parts])


def test_previous_keys_are_read_from_the_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETANIM_SECRET_KEY_PREVIOUS", f" {OLD_KEY} ,, {OLDER_KEY},")
    assert load_previous_secrets("NETANIM_SECRET_KEY") == (OLD_KEY.encode(), OLDER_KEY.encode())
    # The variable follows the key's own variable when a deployment renames it.
    monkeypatch.setenv("ACME_LINK_KEY_PREVIOUS", OLD_KEY)
    assert load_previous_secrets("ACME_LINK_KEY") == (OLD_KEY.encode(),)
    monkeypatch.delenv("NETANIM_SECRET_KEY_PREVIOUS")
    assert load_previous_secrets("NETANIM_SECRET_KEY") == ()


def test_a_short_previous_key_is_named_by_position_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NETANIM_SECRET_KEY_PREVIOUS", f"{OLD_KEY},tiny-secret-42")
    with pytest.raises(UserError) as raised:
        load_previous_secrets("NETANIM_SECRET_KEY")
    message = raised.value.render()
    assert "NETANIM_SECRET_KEY_PREVIOUS" in message and "key 2 is too short" in message
    assert "tiny-secret-42" not in message and OLD_KEY not in message


def test_the_cli_refuses_a_bad_previous_key_without_a_traceback(
    cli,  # type: ignore[no-untyped-def]
    network: App,
    config_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NETANIM_SECRET_KEY_PREVIOUS", "tiny-secret-42")
    result = broadcast(cli, config_path, *WELCOME, "--id", "bad-previous")
    assert result.code == 1, result
    assert "NETANIM_SECRET_KEY_PREVIOUS" in result.err and "Traceback" not in result.err
    assert "tiny-secret-42" not in result.out + result.err


def test_a_signer_verifies_with_every_listed_key_and_signs_with_the_current() -> None:
    old = LinkSigner(OLD_KEY.encode(), "https://anim.example")
    token = old.sign("unsubscribe", [7, "sms"])
    signer = LinkSigner(
        NEW_KEY.encode(),
        "https://anim.example",
        previous=(OLDER_KEY.encode(), OLD_KEY.encode(), NEW_KEY.encode()),
    )
    assert signer.verify("unsubscribe", token) == [7, "sms"]
    with pytest.raises(BadToken):
        signer.verify("post", token)  # still bound to its purpose, whichever key signed it
    fresh = signer.sign("unsubscribe", [7, "sms"])
    assert fresh != token
    assert LinkSigner(NEW_KEY.encode(), "https://anim.example").verify("unsubscribe", fresh)
    assert not any(key in repr(vars(signer)) for key in KEYS)
