"""`netanim preview`: a message as chosen contacts would get it, written as files a person
opens (the email in Chromium, the letter through pdftoppm), with the router's reasons;
`--send-to-me` reaches the SMTP server and the Twilio stand-in; nothing of it lands in
the database, the reports, the caps or the idempotency keys."""

from __future__ import annotations

import email
import email.policy
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

import network_anim.app as app_module
from network_anim.app import App
from network_anim.clock import SimulatedClock
from network_anim.compose.links import BadToken
from network_anim.db.models import Campaign, Delivery, Event, Link, Message, Post
from tests.conftest import REPO, SAMPLE_NETWORK, WEDNESDAY_MORNING, use_smtp, use_twilio
from tests.peers.smtp_server import SmtpPeer
from tests.peers.twilio_standin import TwilioStandin

CHROMIUM = Path("/usr/bin/chromium")
STOCK = ("--var", "product=Routeur X200", "--var", "quantity=40")
# A Wednesday of the sample challenge (January to April 2027), 10:00 in Paris.
IN_THE_CHALLENGE = datetime(2027, 2, 3, 9, 0, tzinfo=UTC)


@contextmanager
def clock_at(moment: datetime) -> Iterator[None]:
    """Every app a command opens reads this moment (commands read one clock)."""
    original = app_module.open_app

    def at_moment(*args: Any, **kwargs: Any) -> App:
        kwargs["clock"] = SimulatedClock(moment)
        return original(*args, **kwargs)

    app_module.open_app = at_moment
    try:
        yield
    finally:
        app_module.open_app = original


@pytest.fixture
def preview(cli, config_path: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """``netanim preview -c CONFIG --out OUT ARGS`` on Wednesday morning, after the sample
    network's import; returns (result, out folder)."""
    assert cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path)).code == 0
    out = tmp_path / "preview"

    def run(*args: str, moment: datetime = WEDNESDAY_MORNING):  # type: ignore[no-untyped-def]
        with clock_at(moment):
            return cli("preview", "-c", str(config_path), "--out", str(out), *args), out

    return run


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def _eml(folder: Path) -> email.message.EmailMessage:
    parsed = email.message_from_bytes(
        (folder / "email.eml").read_bytes(), policy=email.policy.default
    )
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def _text_part(message: email.message.EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return part.get_content()


def test_each_profile_gets_the_files_of_its_channels(preview) -> None:  # type: ignore[no-untyped-def]
    contacts = ("C0002", "C0004", "C0005", "C0008", "C0003")
    result, out = preview("--template", "welcome", "--urgency", "info", *_each(contacts))
    assert result.code == 0, result

    # Personal email: the portal post, its email alert, a letter if the email fails.
    julien = out / "C0002"
    assert _files(julien) == {"post.html", "email.html", "email.eml", "letter.pdf", "routing.txt"}
    message = _eml(julien)
    assert message["Subject"] == "Bienvenue dans le réseau, Julien"
    assert message["To"] == "Julien Garnier <julien.garnier@tsl.example>"
    assert "Bonjour Julien," in _text_part(message)
    assert "Bonjour Julien," in (julien / "email.html").read_text(encoding="utf-8")
    routing = (julien / "routing.txt").read_text(encoding="utf-8")
    assert "1. intranet (sent): info: portal post" in routing
    assert "2. email (sent): info: email: the follow-up that points to the portal post" in routing
    assert "3. print (fallback): if email fails for good; cost 1.650 EUR" in routing

    # Shared mailbox, no web access: a letter instead of the email, no portal-only message.
    yannick = (out / "C0004" / "routing.txt").read_text(encoding="utf-8")
    assert _files(out / "C0004") == {"letter.pdf", "routing.txt"}
    assert (
        "1. print (sent): email impossible (shared mailbox: email loses relevance): "
        "not urgent, so print instead" in yannick
    )
    assert "intranet: no web access" in yannick

    # No email, no web access: the letter alone.
    loic = (out / "C0005" / "routing.txt").read_text(encoding="utf-8")
    assert _files(out / "C0005") == {"letter.pdf", "routing.txt"}
    assert "email: no email address" in loic and "intranet: no web access" in loic

    # No mobile, opted out of SMS: an info message uses neither, same files as Julien's.
    for contact in ("C0008", "C0003"):
        assert _files(out / contact) == _files(julien)


def test_urgent_messages_show_the_sms_and_who_gets_email_instead(preview) -> None:  # type: ignore[no-untyped-def]
    contacts = ("C0002", "C0004", "C0008", "C0003")
    args = ("--template", "stock-alert", "--urgency", "urgent", *STOCK, *_each(contacts))
    result, out = preview(*args)
    assert result.code == 0, result

    # A mobile: the SMS, with its figures, its encoding, its segments and its cost.
    sms = (out / "C0002" / "sms.txt").read_text(encoding="utf-8")
    assert sms.startswith("To: +33623456789 (Julien Garnier)\nFrom: ANIMRESEAU\n")
    assert "Encoding: GSM-7\n" in sms and "Segments: 1\n" in sms
    assert "Estimated cost: 0.075 EUR\n" in sms
    body = sms.split("\n\n", 1)[1]
    assert "Routeur X200 de nouveau disponible, 40 unités" in body
    assert re.search(r"Characters: (\d+) ", sms).group(1) == str(len(body.strip()))  # type: ignore[union-attr]
    assert _files(out / "C0002") == {"sms.txt", "email.html", "email.eml", "routing.txt"}
    assert "2. email (fallback): if sms fails for good" in _routing(out, "C0002")

    # A shared mailbox, urgent: the SMS only (email loses relevance).
    assert _files(out / "C0004") == {"sms.txt", "routing.txt"}

    # No mobile, opted out of SMS: the email stands in, and routing.txt says why.
    for contact, why in (("C0008", "no mobile number"), ("C0003", "opted out of sms")):
        assert _files(out / contact) == {"email.html", "email.eml", "routing.txt"}, contact
        routing = _routing(out, contact)
        assert f"1. email (sent): fallback to email (sms: {why})" in routing
        assert f"sms: {why}" in routing.split("Refused by the router:")[1]
        message = _eml(out / contact)
        assert message["Subject"] == "Disponible : Routeur X200"
        assert "40 unités" in _text_part(message)


def _each(contacts: tuple[str, ...]) -> list[str]:
    return [arg for contact in contacts for arg in ("--contact", contact)]


def _routing(out: Path, contact: str) -> str:
    return (out / contact / "routing.txt").read_text(encoding="utf-8")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed")
def test_the_email_and_the_post_open_in_chromium(preview) -> None:  # type: ignore[no-untyped-def]
    playwright_api = pytest.importorskip("playwright.sync_api")
    result, out = preview("--template", "welcome", "--urgency", "info", "--contact", "C0002")
    assert result.code == 0, result
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto((out / "C0002" / "email.html").as_uri())
            shown = page.inner_text("body")
            assert "Subject: Bienvenue dans le réseau, Julien" in shown
            assert "Bonjour Julien," in shown
            assert page.get_by_role("link", name="Découvrir mon espace").is_visible()
            page.goto((out / "C0002" / "post.html").as_uri())
            assert page.inner_text("h1") == "Bienvenue sur votre espace partenaire"
            assert page.inner_text("strong") == "tout ce qui fait vivre le réseau"
        finally:
            browser.close()


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="needs poppler-utils (pdftoppm)")
def test_the_letter_is_a_page_with_ink(preview, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result, out = preview("--template", "welcome", "--urgency", "info", "--contact", "C0004")
    assert result.code == 0, result
    letter = out / "C0004" / "letter.pdf"
    text = subprocess.run(
        ["pdftotext", str(letter), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Objet : Bienvenue dans le réseau" in text
    assert "Monsieur," in text and "BRUZ" in text  # the salutation, the address block
    image = tmp_path / "letter"
    subprocess.run(
        ["pdftoppm", "-gray", "-r", "50", "-singlefile", str(letter), str(image)], check=True
    )
    pixels = _pgm_pixels(image.with_suffix(".pgm"))
    # About 2 % of an A4 page of text is ink; a blank page has none.
    inked = sum(1 for value in pixels if value < 200)
    assert inked > len(pixels) // 100, "the page is blank"


def _pgm_pixels(path: Path) -> bytes:
    """The grey values of a binary PGM (P5) image, as pdftoppm -gray writes it."""
    data = path.read_bytes()
    fields = data.split(maxsplit=4)
    assert fields[0] == b"P5" and int(fields[3]) == 255
    width, height = int(fields[1]), int(fields[2])
    return fields[4][-width * height :]


def test_a_preview_writes_nothing_and_its_links_count_for_nothing(preview, app: App) -> None:  # type: ignore[no-untyped-def]
    before = _counts(app)
    result, out = preview("--template", "welcome", "--urgency", "info", "--contact", "C0002")
    assert result.code == 0, result
    assert _counts(app) == before
    html = (out / "C0002" / "email.html").read_text(encoding="utf-8")
    for purpose, path in (("post", "p"), ("unsubscribe", "u")):
        token = re.search(rf'href="http://localhost:8000/{path}/([^"]+)"', html).group(1)  # type: ignore[union-attr]
        with pytest.raises(BadToken):
            app.signer.verify(purpose, token)


def _counts(app: App) -> dict[str, Any]:
    with Session(app.engine) as session:
        counts: dict[str, Any] = {
            model.__name__: session.scalar(select(func.count()).select_from(model))
            for model in (Delivery, Event, Message, Post, Link, Campaign)
        }
        counts["keys"] = set(session.scalars(select(Delivery.idempotency_key)))
    return counts


def test_send_to_me_reaches_smtp_and_twilio_and_leaves_everything_else(
    preview,
    cli,
    app: App,
    config_path: Path,
    smtp_server: SmtpPeer,
    twilio_standin: TwilioStandin,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    use_smtp(config_path, smtp_server)
    use_twilio(config_path, twilio_standin, monkeypatch)
    with clock_at(WEDNESDAY_MORNING):  # something in the reports, the caps and the keys
        sent = cli(
            "broadcast", "-c", str(config_path), "--audience", "all", "--urgency", "urgent",
            "--template", "stock-alert", *STOCK, "--id", "real-alert",
        )  # fmt: skip
        assert sent.code == 0, sent
        report = cli("report", "-c", str(config_path), "--json")
    assert report.code == 0, report
    real_emails, real_sms = len(smtp_server.messages), len(twilio_standin.requests)
    before = _counts(app)

    args = ("--template", "stock-alert", "--urgency", "urgent", *STOCK, "--contact", "C0002")
    result, _out = preview(*args, "--send-to-me", "anne", "--json")
    assert result.code == 0, result

    (received,) = smtp_server.messages[real_emails:]
    assert received.rcpt_tos == ("anne@maker.example",)
    message = received.message()
    assert message["Subject"] == "[TEST] Disponible : Routeur X200"
    assert message["X-Netanim-Test"] == "1"
    assert "Routeur X200" in _text_part(message) and "40 unités" in _text_part(message)
    (posted,) = twilio_standin.requests[real_sms:]
    assert posted.form["To"] == "+33612345678"
    assert posted.form["Body"].startswith("[TEST] Animation Réseau : Routeur X200")
    sent_json = json.loads(result.out)["sent"]
    assert {(s["channel"], s["outcome"]) for s in sent_json} == {("email", "sent"), ("sms", "sent")}

    assert _counts(app) == before  # no outbox row, key, event: caps count outbox rows
    with clock_at(WEDNESDAY_MORNING):
        again = cli("report", "-c", str(config_path), "--json")
    assert json.loads(again.out) == json.loads(report.out)


def test_a_variable_the_step_does_not_give_is_refused(preview) -> None:  # type: ignore[no-untyped-def]
    result, out = preview("--template", "stock-alert", "--urgency", "urgent", "--contact", "C0002")
    assert result.code == 1
    assert "'product' is undefined" in result.err and "--var product=" in result.err
    assert "'quantity' is undefined" in result.err
    assert not out.exists()


def test_a_campaign_step_for_a_sample_shows_its_profiles(preview) -> None:  # type: ignore[no-untyped-def]
    result, out = preview("--campaign", "restock", "--step", "alert", "--sample", "3", "--json")
    assert result.code == 0, result
    summary = json.loads(result.out)
    assert summary["source"].startswith("campaign restock, step alert")
    contacts = summary["contacts"]
    assert len(contacts) == 3 and all(c["in_audience"] for c in contacts)
    routes = {tuple(ch["channel"] for ch in c["channels"]) for c in contacts}
    assert len(routes) > 1, "a sample shows different profiles first"
    for contact in contacts:
        assert set(contact["files"]) == _files(out / contact["contact"])
        if "sms.txt" in contact["files"]:
            assert "Routeur X200" in (out / contact["contact"] / "sms.txt").read_text("utf-8")


def test_a_challenge_message_states_the_participants_standing(
    preview, cli, config_path: Path
) -> None:  # type: ignore[no-untyped-def]
    (config_path.parent / "examples").mkdir()
    shutil.copy(REPO / "examples" / "objectives.csv", config_path.parent / "examples")
    with clock_at(IN_THE_CHALLENGE):
        registered = cli(
            "challenge", "register", "pbx-2027", "-c", str(config_path), "--contact", "C0002"
        )
    assert registered.code == 0, registered
    args = ("--challenge", "pbx-2027", "--message", "reminder", "--contact", "C0002")
    result, out = preview(*args, moment=IN_THE_CHALLENGE)
    assert result.code == 0, result
    text = _text_part(_eml(out / "C0002"))
    assert "Bonjour Julien," in text
    # His standing (the challenges' variable source) and the challenge's end.
    assert "0 points, 1er sur 1 participants" in text and "30/04/2027" in text

    outsider = preview(
        "--challenge", "pbx-2027", "--message", "reminder", "--contact", "C0004",
        moment=IN_THE_CHALLENGE,
    )[0]  # fmt: skip
    assert outsider.code == 1
    assert "not in audience 'pbx-2027-registered'" in outsider.err and "C0004" in outsider.err


def test_team_members_are_checked(cli, config_path: Path, preview) -> None:  # type: ignore[no-untyped-def]
    args = ("--template", "welcome", "--urgency", "info", "--contact", "C0002")
    unknown = preview(*args, "--send-to-me", "bob")[0]
    assert unknown.code == 1 and "unknown team member 'bob'" in unknown.err
    assert "anne" in unknown.err
    text = config_path.read_text(encoding="utf-8")
    config_path.write_text(text.replace('mobile = "+33612345678"', 'mobile = "0612"'), "utf-8")
    invalid = cli("validate", str(config_path))
    assert invalid.code == 1 and "team[0].mobile" in invalid.err


def test_the_config_team_keeps_names_unique() -> None:
    from network_anim.config.settings import Config

    with pytest.raises(ValueError, match="team: duplicate id"):
        Config.model_validate({"team": [{"name": "anne"}, {"name": "anne"}]})
