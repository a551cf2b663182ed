"""An event with RSVP by text, end to end on the simulated clock and both databases:
invitations by SMS to craftsmen (Twilio stand-in), answers through the signed inbound
webhook, capacity and waiting list, reminders to the confirmed yes only, a last call to
those who did not answer, attendance imported, the report's RSVP funnel."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import Session
from twilio.request_validator import RequestValidator

from network_anim.app import App, open_app
from network_anim.clock import SimulatedClock
from network_anim.db.models import Contact, Message, Post, Rsvp
from network_anim.engine.simulation import simulate
from network_anim.network.importer import import_network
from network_anim.network.network_csv import ImportDefaults, read_network_csv
from network_anim.outbox.transports import ConfiguredTransports
from network_anim.web.app import create_app
from network_anim.web.twilio_hooks import parse_rsvp
from tests.conftest import use_twilio, write_config
from tests.peers.twilio_standin import TwilioStandin

HEADER = (
    "company_id;company_name;sector;size;tier;region;delivery_point;building;street;locality;"
    "postcode;city;country;contact_id;civility;first_name;last_name;role;level;email;"
    "email_kind;mobile;phone;web_access;consent_email;consent_sms;consent_print;"
    "consent_intranet;timezone;language"
)
# Six craftsmen (shared mailboxes, SMS consent) and one office seller, not invited.
PEOPLE = [
    ("A001", "Yannick", "Bernard", "artisan", "06 11 00 00 01"),
    ("A002", "Sophie", "Le Gall", "artisan", "06 11 00 00 02"),
    ("A003", "Marc", "Riou", "artisan", "06 11 00 00 03"),
    ("A004", "Lucie", "Tanguy", "artisan", "06 11 00 00 04"),
    ("A005", "Paul", "Morvan", "artisan", "06 11 00 00 05"),
    ("A006", "Anne", "Kerjean", "artisan", "06 11 00 00 06"),
    ("S001", "Julie", "Martin", "commercial", "06 11 00 00 07"),
]
NETWORK = "\n".join(
    [HEADER]
    + [
        f"D{n:03d};Artisan {last};electrical;TPE;silver;Bretagne;;;3 route de Lorient;;35170;"
        f"Bruz;FR;{cid};M.;{first};{last};{role};seller;contact{n}@artisan{n}.example;shared;"
        f"{mobile};;no;legitimate_interest;consent;legitimate_interest;;Europe/Paris;fr"
        for n, (cid, first, last, role, mobile) in enumerate(PEOPLE, start=1)
    ]
)
EVENT = """
[[audiences]]
name = "craftsmen"
roles = ["artisan"]

[[events]]
id = "gala"
name = "Soirée des artisans"
audience = "craftsmen"
start = 2026-12-11T18:30:00
place = "Salle Robert Schuman, Rennes"
capacity = 3
invite_at = 2026-11-26T10:00:00
reply_keyword = "GALA"
remind_days_before = [1]
last_call_days_before = 3
"""
START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
INBOUND = "/hooks/twilio/inbound"


def e164(mobile: str) -> str:
    return "+33" + mobile.replace(" ", "")[1:]


PHONE = {cid: e164(mobile) for cid, _, _, _, mobile in PEOPLE}
WHO = {phone: cid for cid, phone in PHONE.items()}


@dataclass
class Scene:
    app: App
    client: httpx.AsyncClient
    standin: TwilioStandin
    config: Path

    async def text(self, cid: str, body: str, *, sid: str) -> str:
        params = {"MessageSid": sid, "From": PHONE[cid], "To": "+33700000001", "Body": body}
        url = self.app.config.engine.base_url + INBOUND
        signature = RequestValidator(self.standin.auth_token).compute_signature(url, params)
        response = await self.client.post(
            INBOUND, data=params, headers={"X-Twilio-Signature": signature}
        )
        assert response.status_code == 200, response.text
        return response.text

    async def run_until(self, moment: datetime) -> None:
        transports = ConfiguredTransports(self.app)
        await simulate(self.app, moment, transports, grace=timedelta(hours=1))

    def sms_since(self, mark: int) -> dict[str, list[str]]:
        """Contact -> the SMS texts Twilio was asked to send since ``mark``."""
        sent: dict[str, list[str]] = {}
        for request in self.standin.requests[mark:]:
            sent.setdefault(WHO[request.form["To"]], []).append(request.form["Body"])
        return sent

    def rsvps(self) -> dict[str, tuple[str | None, int, str | None]]:
        with Session(self.app.engine) as session:
            rows = session.execute(
                select(Contact.external_id, Rsvp.answer, Rsvp.seats, Rsvp.status).join(
                    Contact, Contact.id == Rsvp.contact_id
                )
            ).all()
        return {cid: (answer, seats, status) for cid, answer, seats, status in rows}


@pytest.fixture
async def scene(
    tmp_path: Path,
    database_url: str,
    twilio_standin: TwilioStandin,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Scene]:
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    config = write_config(tmp_path, database_url, EVENT, example_campaigns=False)
    use_twilio(config, twilio_standin, monkeypatch)
    network = tmp_path / "craftsmen.csv"
    network.write_text(NETWORK, encoding="utf-8")
    app = open_app(config, clock=SimulatedClock(START))
    import_network(
        app.engine,
        read_network_csv(network, ImportDefaults()),
        now=START - timedelta(days=30),
        source="test",
    )
    fastapi_app = create_app(app)
    async with fastapi_app.router.lifespan_context(fastapi_app):
        transport = httpx.ASGITransport(app=fastapi_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Scene(app, client, twilio_standin, config)
    app.close()


def test_rsvp_words() -> None:
    assert parse_rsvp("oui", ()).answer == "yes"
    assert (parse_rsvp("OUI 2", ()).answer, parse_rsvp("OUI 2", ()).seats) == ("yes", 2)
    assert parse_rsvp("Non merci", ()).answer == "no"
    assert parse_rsvp("Peut-être !", ()).answer == "maybe"
    assert parse_rsvp("maybe", ()).answer == "maybe"
    assert parse_rsvp("gala oui", {"GALA"}) == parse_rsvp("GALA OUI", {"GALA"})
    assert parse_rsvp("GALA OUI", {"GALA"}).keyword == "GALA"
    assert parse_rsvp("bientôt", ()).answer is None


async def test_an_event_end_to_end(scene: Scene, cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    # The invitation fires on the 26th at 10:00 (Paris): SMS to the six craftsmen only.
    await scene.run_until(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    invited = scene.sms_since(0)
    assert sorted(invited) == ["A001", "A002", "A003", "A004", "A005", "A006"]
    assert "vous êtes invité à Soirée des artisans le 11/12/2026 à 18h30" in invited["A001"][0]
    assert "Répondez GALA OUI (ou GALA OUI 2 pour 2 places) ou GALA NON" in invited["A001"][0]

    # The answers, through the signed webhook, answered in TwiML.
    assert "merci, votre place est réservée pour Soirée des artisans, le 11/12/2026 à " in (
        await scene.text("A001", "oui", sid="SM1")
    )
    assert "vos 2 places sont réservées" in await scene.text("A002", "OUI 2", sid="SM2")
    full = await scene.text("A003", "GALA OUI", sid="SM3")
    assert "Soirée des artisans est complet. Vous êtes sur liste d'attente, position 1" in full
    assert "réponse enregistrée : non" in await scene.text("A004", "Non merci", sid="SM4")
    unknown = await scene.text("A005", "bientôt", sid="SM5")
    assert "réponse non comprise" in unknown
    assert "répondez GALA OUI (ou GALA OUI 2 pour 2 places, jusqu'à 4), GALA NON" in unknown
    assert "position 2" in await scene.text("A006", "oui", sid="SM6")
    # A retried webhook changes nothing and says nothing.
    assert "<Message>" not in await scene.text("A006", "oui", sid="SM6")
    assert scene.rsvps() == {
        "A001": ("yes", 1, "confirmed"),
        "A002": ("yes", 2, "confirmed"),
        "A003": ("yes", 1, "waiting"),
        "A004": ("no", 0, None),
        "A006": ("yes", 1, "waiting"),
    }

    # A001 can no longer come: the first waiting gets the seat, and is told by SMS.
    mark = len(scene.standin.requests)
    assert "réponse enregistrée : non" in await scene.text("A001", "non", sid="SM7")
    assert scene.rsvps()["A003"] == ("yes", 1, "confirmed")
    assert "position 1" in await scene.text("A006", "oui", sid="SM8")  # still waiting, first
    await scene.run_until(datetime(2026, 11, 26, 16, 0, tzinfo=UTC))
    told = scene.sms_since(mark)
    assert list(told) == ["A003"]
    assert "une place s'est libérée : votre place est réservée" in told["A003"][0]

    # The last call (8 Dec) goes to whoever has not answered: A005 (an unknown word is
    # no answer); the reminder (10 Dec) to the confirmed yes only.
    mark = len(scene.standin.requests)
    await scene.run_until(datetime(2026, 12, 8, 12, 0, tzinfo=UTC))
    last_call = scene.sms_since(mark)
    assert list(last_call) == ["A005"]
    assert "dernier appel pour Soirée des artisans" in last_call["A005"][0]
    mark = len(scene.standin.requests)
    await scene.run_until(datetime(2026, 12, 10, 12, 0, tzinfo=UTC))
    reminded = scene.sms_since(mark)
    assert sorted(reminded) == ["A002", "A003"]
    assert "rappel, Soirée des artisans le 11/12/2026 à 18h30" in reminded["A002"][0]

    # After the event: attendance (a line-level mistake imports nothing), then the funnel.
    after = datetime(2026, 12, 12, 9, 0, tzinfo=UTC)
    await scene.run_until(after)
    folder = scene.config.parent
    bad = folder / "bad.csv"
    bad.write_text("contact_id;attended\nA002;oui\nZ999;oui\nA003;peut-être\n", encoding="utf-8")
    refused = run_cli_at(
        cli,
        monkeypatch,
        after,
        "import",
        "attendance",
        str(bad),
        "--event",
        "gala",
        "-c",
        str(scene.config),
    )
    assert refused.code == 1
    assert "2 bad line(s); nothing was imported" in refused.err
    assert "line 3: unknown contact 'Z999'" in refused.err
    assert "line 4: attended 'peut-être': write oui or non" in refused.err
    assert scene.rsvps()["A002"] == ("yes", 2, "confirmed")
    presence = folder / "presence.csv"
    presence.write_text("contact_id;attended\nA002;oui\nA003;non\nA005;oui\n", encoding="utf-8")
    done = run_cli_at(
        cli,
        monkeypatch,
        after,
        "import",
        "attendance",
        str(presence),
        "--event",
        "gala",
        "-c",
        str(scene.config),
    )
    assert done.code == 0, done
    assert "2 of 3 came (2 answers updated, 1 added)" in done.out
    report = run_cli_at(
        cli, monkeypatch, after, "report", "--campaign", "gala", "--json", "-c", str(scene.config)
    )
    assert report.code == 0, report
    assert json.loads(report.out)["rsvp"] == [
        {
            "event": "gala",
            "name": "Soirée des artisans",
            "capacity": 3,
            "seats_confirmed": 3,
            "waiting": 1,
            "rows": [{"channel": "sms", "invited": 6, "answered": 5, "yes": 3, "attended": 2}],
            "totals": {"channel": "all", "invited": 6, "answered": 5, "yes": 3, "attended": 2},
        }
    ]
    text = run_cli_at(
        cli, monkeypatch, after, "report", "--campaign", "gala", "-c", str(scene.config)
    )
    assert "Event gala: Soirée des artisans — 3 of 3 seats confirmed, 1 waiting" in text.out
    page = folder / "report.html"
    html = run_cli_at(cli, monkeypatch, after, "report", "--campaign", "gala", "--html",
                      str(page), "-c", str(scene.config))  # fmt: skip
    assert html.code == 0, html
    section = page.read_text(encoding="utf-8").split('id="events"')[1].split("</section>")[0]
    cells = [
        [
            re.sub(r"<[^>]+>", "", cell).replace("\u202f", " ")
            for cell in re.findall(r"<td[^>]*>.*?</td>", row)
        ]
        for row in re.findall(r"<tr>.*?</tr>", section)
    ]
    assert cells[1:] == [
        ["SMS", "6", "5", "3", "2", "83 %"],
        ["Tous canaux", "6", "5", "3", "2", "83 %"],
    ]
    assert "<dt>Places confirmées</dt><dd>3 / 3</dd>" in section
    assert "<dt>Liste d&#39;attente</dt><dd>1</dd>" in section
    assert "Présents : 2 · 33\u202f%" in section  # the funnel chart's stage, over the invited


def run_cli_at(cli, monkeypatch: pytest.MonkeyPatch, moment: datetime, *args: str):  # type: ignore[no-untyped-def]
    """``netanim ARGS`` with the engine's clock at ``moment``."""
    import network_anim.app as app_module

    original = app_module.open_app

    def at_moment(*a, **kw):  # type: ignore[no-untyped-def]
        kw["clock"] = SimulatedClock(moment)
        return original(*a, **kw)

    monkeypatch.setattr(app_module, "open_app", at_moment)
    try:
        return cli(*args)
    finally:
        monkeypatch.setattr(app_module, "open_app", original)


async def sign_in(scene: Scene, external_id: str) -> str:
    """Sign in on the portal as a contact; returns the CSRF token of the event's page."""
    from network_anim.web.portal import auth

    with Session(scene.app.engine) as session:
        contact_id = session.scalar(select(Contact.id).where(Contact.external_id == external_id))
    issued = auth.issue_login(scene.app, contact_id or 0, "email")
    assert issued is not None
    assert (await scene.client.post(f"/portal/login/{issued[1]}")).status_code == 303
    html = (await scene.client.get("/portal/events/gala")).text
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    return match.group(1) if match else ""


async def test_the_portal_button(scene: Scene) -> None:
    await scene.run_until(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    with Session(scene.app.engine) as session:
        body = session.scalar(
            select(Post.body)
            .join(Message, Message.id == Post.message_id)
            .where(Message.step == "invitation")
        )
    assert body is not None and "(/portal/events/gala)" in body  # the invitation's post links here

    csrf = await sign_in(scene, "A001")
    page = (await scene.client.get("/portal/events/gala")).text
    assert 'id="answer-yes"' in page and "Salle Robert Schuman, Rennes" in page
    refused = await scene.client.post("/portal/events/gala/rsvp", data={"answer": "yes"})
    assert refused.status_code == 403  # no CSRF token
    answer = {"csrf": csrf, "answer": "yes", "seats": "3"}
    assert (await scene.client.post("/portal/events/gala/rsvp", data=answer)).status_code == 303
    page = (await scene.client.get("/portal/events/gala")).text
    assert "merci, vos 3 places sont réservées pour Soirée des artisans" in page

    csrf = await sign_in(scene, "A002")
    answer = {"csrf": csrf, "answer": "yes", "seats": "1"}
    await scene.client.post("/portal/events/gala/rsvp", data=answer)
    page = (await scene.client.get("/portal/events/gala")).text
    assert "liste d&#39;attente, position 1" in page
    too_many = {"csrf": csrf, "answer": "yes", "seats": "9"}
    page = (await scene.client.post("/portal/events/gala/rsvp", data=too_many)).text
    assert "9 seat(s): give 1 to 4 per answer" in page

    csrf = await sign_in(scene, "A001")
    await scene.client.post("/portal/events/gala/rsvp", data={"csrf": csrf, "answer": "no"})
    assert scene.rsvps() == {"A001": ("no", 0, None), "A002": ("yes", 1, "confirmed")}
    mark = len(scene.standin.requests)
    await scene.run_until(datetime(2026, 11, 26, 14, 0, tzinfo=UTC))
    assert list(scene.sms_since(mark)) == ["A002"]  # told by SMS that a seat is theirs

    await sign_in(scene, "S001")  # not a craftsman: not invited
    assert (await scene.client.get("/portal/events/gala")).status_code == 404


async def test_an_english_speaker_is_answered_in_english(scene: Scene) -> None:
    with Session(scene.app.engine) as session, session.begin():
        contact = session.scalars(select(Contact).where(Contact.external_id == "A004")).one()
        contact.language = "en"
    await scene.run_until(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    assert "answer not understood. For Soirée des artisans, reply GALA YES (or GALA YES 2" in (
        await scene.text("A004", "perhaps", sid="SM1")
    )
    assert "thank you, your 2 seats are booked for Soirée des artisans, on 11/12/2026 at 18:30" in (
        await scene.text("A004", "yes 2", sid="SM2")
    )
    assert "merci, votre place est réservée" in await scene.text("A001", "oui", sid="SM3")

    await sign_in(scene, "A004")
    page = (await scene.client.get("/portal/events/gala")).text
    assert "on 11/12/2026 at 18:30, Salle Robert Schuman, Rennes" in page
    assert ">Yes, I will come</button>" in page and ">No, I will not come</button>" in page
    assert "your 2 seats are booked for Soirée des artisans" in page
