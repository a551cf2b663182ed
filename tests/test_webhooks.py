"""Outbound webhooks: what a receiver gets. A real HTTP receiver (http.server in a
thread) checks every signature with the verification snippet of docs/webhooks.md, as
printed there; events are produced by the real commands and web app, read by the feed
and POSTed by the sender, on the simulated clock."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from network_anim.app import App, open_app
from network_anim.challenges.awarding import review
from network_anim.clock import SimulatedClock
from network_anim.db.models import Company, Contact, Delivery, Event, Sale, WebhookDelivery
from network_anim.web.app import create_app
from network_anim.webhooks.feed import run_feed
from network_anim.webhooks.sender import WebhookSender
from network_anim.webhooks.signing import signed_headers
from tests.conftest import REPO, SAMPLE_NETWORK, copy_tree, write_config

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
SALES_SECRET = "whsec_" + base64.b64encode(b"t" * 32).decode()
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120 Safari/537"
SCANNER = "Mozilla/5.0 (compatible; Proofpoint URL Defense)"


def doc_verify() -> Callable[..., bool]:
    """The snippet of docs/webhooks.md, run as a reader would paste it."""
    text = (REPO / "docs" / "webhooks.md").read_text(encoding="utf-8")
    [code] = re.findall(r"<!-- verify-snippet -->\n```python\n(.*?)```", text, re.S)
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/webhooks.md", "exec"), namespace)
    return namespace["verify"]  # type: ignore[no-any-return]


class Receiver:
    """A subscriber's endpoint: answers 204 to a genuine delivery, 401 to any other, or
    ``answer`` when set; keeps what it got (headers lower-cased, raw body)."""

    def __init__(self, secret: str, clock: SimulatedClock) -> None:
        self.secret, self.clock = secret, clock
        self.verify = doc_verify()
        self.got: list[tuple[dict[str, str], bytes, bool]] = []
        self.answer: int | None = None
        self.port = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                now = receiver.clock.now().timestamp()
                valid = receiver.verify(receiver.secret, headers, body, now=now)
                receiver.got.append((headers, body, valid))
                self.send_response(receiver.answer or (204 if valid else 401))
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Killed: the port refuses connections until :meth:`start` again."""
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def ids(self) -> Counter[str]:
        return Counter(headers["webhook-id"] for headers, _, _ in self.got)

    def types(self) -> Counter[str]:
        return Counter(json.loads(body)["type"] for _, body, _ in self.got)


@pytest.fixture
def receivers(clock: SimulatedClock) -> Iterator[tuple[Receiver, Receiver]]:
    everything, sales = Receiver(SECRET, clock), Receiver(SALES_SECRET, clock)
    everything.start()
    sales.start()
    yield everything, sales
    for receiver in (everything, sales):
        with contextlib.suppress(OSError):
            receiver.stop()


def subscribers(everything: Receiver, sales: Receiver, *, max_attempts: int = 8) -> str:
    return f"""
[[webhooks]]
name = "crm"
url = "{everything.url}"
events = ["*"]
secret_env = "TEST_WEBHOOK_CRM"
max_attempts = {max_attempts}
timeout = 5

[[webhooks]]
name = "sales-desk"
url = "{sales.url}"
events = ["sale.*"]
secret_env = "TEST_WEBHOOK_SALES"
"""


EVENT = """
[[events]]
id = "salon"
name = "Salon des partenaires"
audience = "sellers"
start = 2026-12-10T18:30:00
place = "Lyon"
capacity = 2
invite_at = 2026-11-26T10:00:00
"""


@pytest.fixture
def hooked(
    tmp_path: Path,
    database_url: str,
    clock: SimulatedClock,
    receivers: tuple[Receiver, Receiver],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[App]:
    """The sample network on a config with two subscribers; the feed's first pass done
    (it starts at the end of every table)."""
    from network_anim.challenges.standings import variable_sources
    from network_anim.network.importer import import_network
    from network_anim.network.network_csv import ImportDefaults, read_network_csv

    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("TEST_WEBHOOK_CRM", SECRET)
    monkeypatch.setenv("TEST_WEBHOOK_SALES", SALES_SECRET)
    copy_tree(REPO / "examples", tmp_path / "examples")  # the challenge's objectives
    extra = subscribers(*receivers, max_attempts=3) + EVENT
    config = write_config(tmp_path, database_url, extra)
    app = open_app(config, clock=clock, variables=variable_sources())
    import_network(
        app.engine, read_network_csv(SAMPLE_NETWORK, ImportDefaults()), now=clock.now(), source="t"
    )
    assert run_feed(app) == Counter()  # the network's import is history: not sent
    yield app
    app.close()


@pytest.fixture
def at_clock(clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command the test runs reads the test's clock."""
    import network_anim.app as app_module

    original = app_module.open_app
    monkeypatch.setattr(
        app_module, "open_app", lambda *a, **kw: original(*a, **{**kw, "clock": clock})
    )


def config_of(app: App) -> Path:
    assert app.loaded.path is not None
    return app.loaded.path


def send(app: App) -> Counter[str]:
    run_feed(app)
    return asyncio.run(WebhookSender(app, worker_id="test").send_due()).outcomes


def webhook_rows(app: App) -> list[WebhookDelivery]:
    with Session(app.engine) as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def contact_id(app: App, external_id: str) -> int:
    with Session(app.engine) as session:
        return session.scalars(select(Contact.id).where(Contact.external_id == external_id)).one()


def open_email(app: App, agents: list[str]) -> None:
    """The first email of the broadcast opened through the tracking app, once per agent."""
    with Session(app.engine) as session:
        key = session.scalars(
            select(Delivery.idempotency_key).where(Delivery.channel == "email").limit(1)
        ).one()

    async def opens() -> None:
        web = create_app(app)
        async with web.router.lifespan_context(web):
            transport = httpx.ASGITransport(app=web)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                path = "/" + app.signer.open_pixel_url(key).split("/", 3)[3]
                for agent in agents:
                    assert (await client.get(path, headers={"User-Agent": agent})).is_success

    asyncio.run(opens())


def declare(app: App, invoice: str) -> int:
    with Session(app.engine) as session, session.begin():
        contact = session.scalars(select(Contact).where(Contact.external_id == "C0001")).one()
        company = session.get(Company, contact.company_id)
        sale = Sale(company_id=company.id, contact_id=contact.id, invoice_ref=invoice,  # type: ignore[union-attr]
                    product="PBX-S", amount=1200.0, status="pending", sold_at=app.clock.now(),
                    created_at=app.clock.now(), source="test")  # fmt: skip
        session.add(sale)
        session.flush()
        return sale.id  # type: ignore[return-value]


def broadcast_and_dispatch(cli, config: Path, id_: str) -> None:  # type: ignore[no-untyped-def]
    sent = cli("broadcast", "-c", str(config), "--audience", "all", "--urgency", "info",
               "--template", "welcome", "--id", id_)  # fmt: skip
    assert sent.code == 0, sent
    assert cli("dispatch", "-c", str(config)).code == 0


def test_every_event_arrives_once_signed_to_those_who_want_it(
    hooked: App, receivers: tuple[Receiver, Receiver], cli, at_clock: None
) -> None:
    everything, sales = receivers
    config = config_of(hooked)
    broadcast_and_dispatch(cli, config, "welcome-hooks")
    open_email(hooked, [BROWSER, SCANNER])
    assert (
        cli("challenge", "register", "pbx-2027", "--contact", "C0001", "-c", str(config)).code == 0
    )
    assert cli("points", "award", "C0008", "900", "--reason", "salon", "-c", str(config)).code == 0
    assert cli("points", "redeem", "C0008", "coffret-gourmand", "-c", str(config)).code == 0
    approved, rejected = declare(hooked, "F-1"), declare(hooked, "F-2")
    review(hooked, [approved], approve=True)
    review(hooked, [rejected], approve=False, reason="no invoice attached")

    result = cli("webhooks", "send", "-c", str(config), "--json")
    assert result.code == 0, result
    summary = json.loads(result.out)
    assert summary["problems"] == [] and summary["outcomes"] == {"sent": len(webhook_rows(hooked))}

    assert all(valid for _, _, valid in everything.got + sales.got)
    assert max(everything.ids().values()) == 1 and max(sales.ids().values()) == 1
    with Session(hooked.engine) as session:
        events = session.scalar(select(func.count()).select_from(Event))
    # Every event row of the broadcast, the opens and the review arrived, once.
    assert sum(1 for i in everything.ids() if i.startswith("event-")) == events
    types = everything.types()
    assert types["delivery.sent"] == sum(1 for r in webhook_rows(hooked)
                                         if r.event_type == "delivery.sent")  # fmt: skip
    assert types["delivery.sent"] > 0
    assert types["engagement.opened"] == 2
    assert types["challenge.registered"] == 1 and types["points.redeemed"] == 1
    assert types["sale.declared"] == 2 and types["sale.approved"] == 1
    assert types["sale.rejected"] == 1
    assert sales.types() == Counter({"sale.declared": 2, "sale.approved": 1, "sale.rejected": 1})

    bodies = [json.loads(body) for _, body, _ in everything.got]
    opens = [b for b in bodies if b["type"] == "engagement.opened"]
    assert sorted(o["data"]["machine"] for o in opens) == [False, True]
    assert {o["data"]["details"]["user_agent"] for o in opens} == {BROWSER, SCANNER}
    [rejection] = [b for b in bodies if b["type"] == "sale.rejected"]
    assert rejection["data"]["reason"] == "no invoice attached"
    assert rejection["data"]["contact"] == "C0001" and rejection["data"]["invoice_ref"] == "F-2"
    [redeemed] = [b for b in bodies if b["type"] == "points.redeemed"]
    assert redeemed["data"] == {"contact": "C0008", "reward": "coffret-gourmand", "points": 800}
    [opened] = [o for o in opens if not o["data"]["machine"]]
    assert opened["timestamp"] == "2026-11-25T10:00:00Z"
    assert opened["data"]["campaign"] and opened["data"]["channel"] == "email"

    # A second pass sends nothing again.
    before = len(everything.got)
    assert json.loads(cli("webhooks", "send", "-c", str(config), "--json").out)["outcomes"] == {}
    assert len(everything.got) == before


def test_a_killed_receiver_gets_everything_once_when_back(
    hooked: App, receivers: tuple[Receiver, Receiver], clock: SimulatedClock, cli, at_clock: None
) -> None:
    everything, _ = receivers
    config = config_of(hooked)
    everything.stop()
    broadcast_and_dispatch(cli, config, "while-down")
    assert send(hooked) == Counter({"retry": len(webhook_rows(hooked))})
    rows = webhook_rows(hooked)
    assert all(r.status == "pending" and r.attempts == 1 for r in rows)
    assert all("Connect" in r.last_error for r in rows), rows[0].last_error
    # Backoff: 30 s x (0.5 to 1.5) after the first attempt; nothing is retried before.
    assert all(clock.now() + timedelta(seconds=15) <= r.due_at for r in rows)
    assert all(r.due_at <= clock.now() + timedelta(seconds=45) for r in rows)
    assert send(hooked) == Counter()
    clock.advance(timedelta(minutes=1))
    assert send(hooked) == Counter({"retry": len(rows)})
    assert all(r.attempts == 2 for r in webhook_rows(hooked))

    everything.start()  # back, on the same port; more happened meanwhile
    review(hooked, [declare(hooked, "F-9")], approve=True)
    clock.advance(timedelta(minutes=2))
    outcomes = send(hooked)
    assert outcomes == Counter({"sent": len(webhook_rows(hooked))})
    expected = Counter(r.event_key for r in webhook_rows(hooked) if r.subscriber == "crm")
    assert everything.ids() == expected and max(expected.values()) == 1
    assert all(valid for _, _, valid in everything.got)
    assert {"sale.declared", "sale.approved"} <= set(everything.types())


def test_dead_after_max_attempts_listed_by_outbox_then_retried(
    hooked: App, receivers: tuple[Receiver, Receiver], clock: SimulatedClock, cli, at_clock: None
) -> None:
    everything, sales = receivers
    config = config_of(hooked)
    everything.answer = 503
    declare(hooked, "F-3")
    for _ in range(3):  # max_attempts = 3
        send(hooked)
        clock.advance(timedelta(hours=1))
    [dead] = [r for r in webhook_rows(hooked) if r.subscriber == "crm"]
    assert (dead.status, dead.attempts) == ("dead", 3)
    assert dead.last_error == "gave up after 3 attempts: HTTP 503"
    assert sales.ids() == Counter({dead.event_key: 1})  # the other subscriber got it

    listed = cli("outbox", "--status", "dead", "--json", "-c", str(config))
    [row] = json.loads(listed.out)
    assert row["id"] == f"wh-{dead.id}" and row["key"] == dead.event_key
    assert row["channel"] == "webhook" and row["contact"] == "(webhook crm)"
    assert row["last_error"] == "gave up after 3 attempts: HTTP 503"
    shown = cli("outbox", "--status", "dead", "-c", str(config))
    assert f"wh-{dead.id}" in shown.out and "HTTP 503" in shown.out

    everything.answer = None
    retried = cli("outbox", "retry", f"wh-{dead.id}", "-c", str(config))
    assert retried.code == 0 and "1 row(s) requeued" in retried.out, retried
    assert send(hooked) == Counter({"sent": 1})
    assert [valid for _, _, valid in everything.got] == [True, True, True, True]
    assert everything.ids() == Counter({dead.event_key: 4})  # 3 refused + 1 accepted


def test_ping_and_a_missing_secret(
    hooked: App, receivers: tuple[Receiver, Receiver], cli, at_clock: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    everything, _ = receivers
    config = str(config_of(hooked))
    pinged = cli("webhooks", "test", "crm", "-c", config)
    assert pinged.code == 0 and "answered HTTP 204" in pinged.out, pinged
    [(_headers, body, valid)] = everything.got
    assert valid and json.loads(body)["type"] == "webhook.ping"
    unknown = cli("webhooks", "test", "nobody", "-c", config)
    assert unknown.code == 1 and "unknown webhook subscriber 'nobody'" in unknown.err

    monkeypatch.delenv("TEST_WEBHOOK_SALES")
    declare(hooked, "F-4")
    result = json.loads(cli("webhooks", "send", "-c", config, "--json").out)
    assert result["outcomes"] == {"sent": 1}  # crm's; the sales desk's row waits
    assert result["problems"] == [
        "webhooks sales-desk: environment variable TEST_WEBHOOK_SALES is not set"
    ]
    assert SECRET not in result["problems"][0]


def test_the_documented_snippet_refuses_forgeries() -> None:
    verify = doc_verify()
    # The Standard Webhooks specification's own example.
    spec = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    spec_body = b'{"test": 2432232314}'
    assert verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", spec, spec_body, now=1614265330)

    from datetime import UTC, datetime

    moment = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    body = '{"type":"sale.approved","timestamp":"2026-11-25T10:00:00Z","data":{"sale_id":1}}'
    headers = signed_headers(base64.b64decode(SECRET[6:]), "sale-1-approved", moment, body)
    now = moment.timestamp()
    assert verify(SECRET, headers, body.encode(), now=now + 60)
    forged = signed_headers(b"f" * 32, "sale-1-approved", moment, body)
    assert not verify(SECRET, forged, body.encode(), now=now)
    assert not verify(SECRET, headers, body.replace("1}", "2}").encode(), now=now)
    assert not verify(SECRET, headers, body.encode(), now=now + 301)
    assert not verify(SECRET, headers, body.encode(), now=now - 301)
    assert not verify(SECRET, {**headers, "webhook-id": "sale-2-approved"}, body.encode(), now=now)
    assert not verify(SECRET, {**headers, "webhook-signature": "v1,"}, body.encode(), now=now)
    assert not verify(SECRET, {}, body.encode(), now=now)


def test_bad_subscribers_are_refused_with_their_key_path(cli, tmp_path: Path) -> None:
    text = """
[[webhooks]]
name = "crm"
url = "https://crm.example.com/hooks"
events = ["delivery.*", "delivery.opened"]
secret_env = "NETANIM_WEBHOOK_CRM_SECRET"
"""
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'v.db'}", text)
    result = cli("validate", str(config))
    assert result.code == 1
    assert "webhooks[0].events" in result.err and "delivery.opened" in result.err


def test_reviews_at_the_same_time_in_any_order_are_all_queued(hooked: App) -> None:
    """A review keeps its time: the later one of a lower sale id, at the same instant,
    sorts before the feed's position and must be read all the same."""
    first, second = declare(hooked, "F-5"), declare(hooked, "F-6")
    review(hooked, [second], approve=True)
    run_feed(hooked)
    review(hooked, [first], approve=False, reason="duplicate")  # the clock has not moved
    run_feed(hooked)
    run_feed(hooked)
    keys = Counter(r.event_key for r in webhook_rows(hooked) if r.subscriber == "sales-desk")
    assert keys == Counter(
        {f"sale-{first}-declared": 1, f"sale-{second}-declared": 1,
         f"sale-{second}-approved": 1, f"sale-{first}-rejected": 1}
    )  # fmt: skip


def test_rsvp_answers_promotions_and_attendance_are_told(
    hooked: App, receivers: tuple[Receiver, Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each change of an answer is one event carrying the answer as it stands; a page of
    rows sharing one time (the attendance import) is read to its end, page after page."""
    import network_anim.webhooks.feed as feed
    from network_anim.campaigns.events import Invitation, record_answer, record_attendance

    monkeypatch.setattr(feed, "_PAGE", 2)
    everything, _ = receivers
    event = hooked.config.event("salon")
    invitation = Invitation(event, None, "sms")
    ids = {c: contact_id(hooked, c) for c in ("C0001", "C0002", "C0003", "C0004")}

    def told() -> set[tuple[Any, ...]]:
        """What the subscriber got since the last call (POSTs of a pass run in parallel)."""
        bodies = [json.loads(body) for _, body, valid in everything.got if valid]
        assert len(bodies) == len(everything.got)  # every signature verified
        del everything.got[:]
        return {(b["type"], b["data"]["contact"], b["data"]["answer"], b["data"]["status"],
                 b["data"]["seats"], b["data"]["attended"], b["data"]["answered_by"],
                 b["data"]["event"], b["timestamp"]) for b in bodies}  # fmt: skip

    at = "2026-11-25T10:00:00Z"
    record_answer(hooked, invitation, ids["C0001"], answer="yes", seats=2, by="sms")
    record_answer(hooked, invitation, ids["C0002"], answer="yes", seats=1, by="portal")
    assert send(hooked) == Counter({"sent": 2})
    assert told() == {
        ("rsvp.answered", "C0001", "yes", "confirmed", 2, None, "sms", "salon", at),
        ("rsvp.answered", "C0002", "yes", "waiting", 1, None, "portal", "salon", at),
    }
    # At the same instant: C0001 gives up their seats, C0002 gets one, C0003 hesitates.
    record_answer(hooked, invitation, ids["C0001"], answer="no", by="sms")
    record_answer(hooked, invitation, ids["C0003"], answer="maybe", by="sms")
    assert send(hooked) == Counter({"sent": 3})
    assert told() == {
        ("rsvp.answered", "C0001", "no", None, 0, None, "sms", "salon", at),
        ("rsvp.promoted", "C0002", "yes", "confirmed", 1, None, "portal", "salon", at),
        ("rsvp.answered", "C0003", "maybe", None, 0, None, "sms", "salon", at),
    }
    hooked.clock.advance(timedelta(days=15))  # type: ignore[attr-defined]
    record_attendance(hooked, event, {ids[c]: c != "C0003" for c in ids})
    assert send(hooked) == Counter({"sent": 4})
    after = "2026-12-10T10:00:00Z"
    assert told() == {
        ("rsvp.attended", "C0001", "no", None, 0, True, "sms", "salon", after),
        ("rsvp.attended", "C0002", "yes", "confirmed", 1, True, "portal", "salon", after),
        ("rsvp.attended", "C0003", "maybe", None, 0, False, "sms", "salon", after),
        ("rsvp.attended", "C0004", None, None, 0, True, "", "salon", after),  # came unasked
    }
    assert send(hooked) == Counter()  # nothing read twice


def test_a_withdrawn_declaration_is_told(hooked: App, receivers: tuple[Receiver, Receiver]) -> None:
    from network_anim.challenges.declarations import PORTAL, withdraw

    sale_id = declare(hooked, "F-7")
    with Session(hooked.engine) as session, session.begin():
        sale = session.get(Sale, sale_id)
        assert sale is not None
        sale.source = PORTAL
    withdraw(hooked, contact_id(hooked, "C0001"), sale_id)
    assert send(hooked) == Counter({"sent": 4})  # declared and withdrawn, to both
    _, sales_desk = receivers
    assert sales_desk.types() == Counter({"sale.declared": 1, "sale.withdrawn": 1})
    bodies = [json.loads(body) for _, body, _ in sales_desk.got]
    [withdrawn] = [b for b in bodies if b["type"] == "sale.withdrawn"]
    assert withdrawn["data"]["status"] == "withdrawn" and withdrawn["data"]["invoice_ref"] == "F-7"


def test_the_daemon_tick_queues_and_posts(
    hooked: App,
    receivers: tuple[Receiver, Receiver],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The daemon's webhook tick runs the feed and the sender; a subscriber whose secret
    is missing is skipped and logged once, the others still served."""
    from network_anim.daemon.service import Daemon

    everything, sales = receivers
    declare(hooked, "F-8")
    monkeypatch.delenv("TEST_WEBHOOK_SALES")
    daemon = Daemon(config_of(hooked))
    daemon.app = hooked
    with caplog.at_level("INFO", logger="network_anim"):
        asyncio.run(daemon.webhook_tick())
        asyncio.run(daemon.webhook_tick())
    assert everything.types() == Counter({"sale.declared": 1})
    assert sales.got == []
    skipped = [r for r in caplog.records if "subscriber skipped" in r.getMessage()]
    assert len(skipped) == 1 and "TEST_WEBHOOK_SALES" in skipped[0].getMessage()
    assert {r.subscriber: r.status for r in webhook_rows(hooked)} == {
        "crm": "sent",
        "sales-desk": "pending",  # kept for when the secret is back
    }


def test_a_review_committed_after_a_later_one_was_read_is_still_told(hooked: App) -> None:
    """A transaction takes its time before it writes: its review can land behind the
    feed's position (here 30 s before a review already read) and must be read all the
    same, once."""
    early, late = declare(hooked, "F-10"), declare(hooked, "F-11")
    hooked.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    review(hooked, [late], approve=True)
    run_feed(hooked)
    with Session(hooked.engine) as session, session.begin():
        sale = session.get(Sale, early)
        assert sale is not None
        sale.status, sale.reviewed_at = "rejected", hooked.clock.now() - timedelta(seconds=30)
    run_feed(hooked)
    run_feed(hooked)
    keys = Counter(r.event_key for r in webhook_rows(hooked) if r.subscriber == "sales-desk")
    assert keys[f"sale-{early}-rejected"] == 1 and keys[f"sale-{late}-approved"] == 1
