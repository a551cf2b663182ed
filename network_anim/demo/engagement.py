"""Simulated reactions of the demo network: opens, clicks, reads, SMS statuses, challenge
registrations and declared sales, so ``netanim demo`` ends with a report worth reading.

Everything here is **simulated** (seeded, so the same seed gives the same history) and
labelled so: the demo's output says it, and every event row carries ``"simulated": true``
in its data. What is simulated is only the people and the providers; what they cause is
recorded by the code that records real ones:

* opens and clicks: :func:`network_anim.web.events.event_row` rows, flagged machine or
  human by :func:`network_anim.web.scanners.machine_reason` from the user agent, as the
  tracking pixel and the click redirect do (Apple Mail Privacy Protection prefetches,
  security gateways that follow every link, iMessage link previews are machines). A click
  in an email follows one of the links the email really holds: a tracked ``/c/`` link is
  resolved by :func:`network_anim.web.tracking.click_target`, the check the redirect
  makes, so the event names the stored link (clicks per link in the report);
* post reads: a ``PostRead`` row and a ``read`` event, as the portal's post page writes;
* Twilio statuses: :func:`network_anim.web.twilio_hooks.apply_status` (an undelivered SMS
  fails over to the next channel, which the simulation then sends);
* registrations: an inbound SMS keyword through
  :func:`network_anim.web.twilio_hooks.handle_inbound`, or the portal's
  :func:`network_anim.challenges.registration.register`;
* sales: :func:`network_anim.challenges.sales_import.import_sales` (pending when a challenge asks for
  approval), then :func:`network_anim.challenges.awarding.review`, which awards the points.

The simulator runs inside :func:`network_anim.engine.simulation.simulate` through its
``on_step`` callback, so what people do feeds what the engine does next (a sequence's
"not opened" branch, a challenge's registered audience), as it would in production.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlmodel import Session

from network_anim.app import App
from network_anim.challenges.awarding import review
from network_anim.challenges.registration import register
from network_anim.challenges.sales_csv import SaleRecord
from network_anim.challenges.sales_import import import_sales
from network_anim.config.settings import ChallengeConfig
from network_anim.db.models import (
    Campaign,
    Company,
    Contact,
    Delivery,
    Event,
    Message,
    Participant,
    PostRead,
)
from network_anim.domain import FINAL_STATUSES, DeliveryStatus
from network_anim.errors import UserError
from network_anim.web.events import event_row
from network_anim.web.scanners import Kind, machine_reason
from network_anim.web.tracking import click_target
from network_anim.web.twilio_hooks import apply_status, handle_inbound

SIMULATED = {"simulated": True}
DECLARED_BY = "demo (simulated)"
REVIEWER = "demo manager (simulated)"
REJECTION = "Justificatif illisible : merci de déposer à nouveau la facture."

# Real user agents: the classifier tells these people from the machines below.
PEOPLE_AGENTS: tuple[str, ...] = (
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
)
APPLE_PRIVACY_AGENT = "Mozilla/5.0"
GATEWAY_AGENT = "Mozilla/5.0 (compatible; Proofpoint URL Defense; +ppops-scan)"
LINK_PREVIEW_AGENT = "facebookexternalhit/1.1 Facebot Twitterbot/1.0"


@dataclass(frozen=True)
class Rates:
    """How the simulated network behaves (shares are probabilities per message)."""

    # Human opens of an e-mail, by campaign kind (the GDS newsletter of the seeds: 55-60 %).
    email_open: tuple[tuple[str, float], ...] = (
        ("newsletter", 0.585),
        ("challenge", 0.52),
        ("nurture", 0.44),
        ("broadcast", 0.5),
    )
    shared_mailbox: float = 0.75  # a generic mailbox is opened less for one person
    apple_privacy: float = 0.2  # recipients whose Apple Mail prefetches every image
    gateway_companies: float = 0.12  # companies whose mail gateway follows every link
    click_after_open: float = 0.24
    outside_link: float = 0.6  # of clicks in an email with outside links: on one of them
    sms_delivered: float = 0.975  # the rest: undelivered (handset unreachable)
    sms_click: float = 0.12  # of SMS that carry a link
    sms_preview: float = 0.08  # iMessage fetches the link to preview it
    post_read: float = 0.48  # of posts published to contacts with web access
    flash_read: float = 0.7
    register_by_sms: float = 0.3  # of challenge invitations received by SMS
    register_after_open: float = 0.4  # of challenge e-mails opened or posts read: portal
    register_by_letter: float = 0.15  # of challenge letters, through the portal
    buyers: float = 0.7  # contacts who ever declare sales
    daily_sale: float = 0.022  # a buyer's chance of a sale on a working day...
    engaged_factor: float = 1.8  # ...times this within 30 days of opening/clicking/reading
    participant_factor: float = 1.5  # ...and this while taking part in a live challenge
    sale_rejected: float = 0.05

    def open_rate(self, kind: str) -> float:
        return dict(self.email_open).get(kind, 0.45)


@dataclass
class EngagementStats:
    human_opens: int = 0
    machine_opens: int = 0
    human_clicks: int = 0
    machine_clicks: int = 0
    post_reads: int = 0
    sms_delivered: int = 0
    sms_undelivered: int = 0
    registrations: int = 0
    sales_declared: int = 0
    sales_approved: int = 0
    sales_rejected: int = 0
    points_awarded: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"simulated": True, **asdict(self)}


@dataclass(frozen=True, slots=True)
class _Sent:
    delivery_id: int
    contact_id: int
    company_id: int
    message_id: int
    channel: str
    sent_at: datetime
    provider_id: str | None
    post_id: int | None
    has_link: bool
    campaign: str
    kind: str
    email_kind: str
    mobile: str | None
    # The tracked links (``/c/`` tokens) of an email, in the order the email shows them.
    click_tokens: tuple[str, ...] = ()


@dataclass(order=True)
class _Action:
    at: datetime
    seq: int
    run: Callable[..., None] = field(compare=False)
    args: tuple[Any, ...] = field(compare=False)
    # Runs in its own transaction(s), after the step's buffered events are written.
    alone: bool = field(compare=False, default=False)


ENGAGED_FOR = timedelta(days=30)


class EngagementSimulator:
    """Call :meth:`step` after every simulation step, and :meth:`finish` at the end."""

    def __init__(self, app: App, *, start: datetime, seed: int, rates: Rates = Rates()) -> None:
        self.app = app
        self.rates = rates
        self.seed = seed
        self.stats = EngagementStats()
        self._rng = random.Random(seed)
        self._zone = ZoneInfo(app.config.engine.timezone)
        self._base_url = app.config.engine.base_url.rstrip("/")
        # A tracked link in an email's HTML: href="{base_url}/c/{token}".
        self._click_link = re.compile(rf'href=["\']{re.escape(self._base_url)}/c/([\w.=-]+)["\']')
        self._max_id = 0
        self._waiting: set[int] = set()  # ids of deliveries that may still be sent
        self._details = (
            select(
                Delivery.id,
                Delivery.contact_id,
                Contact.company_id,
                Delivery.message_id,
                Delivery.channel,
                Delivery.sent_at,
                Delivery.provider_id,
                Delivery.extra,
                Delivery.body_text.contains("http"),  # type: ignore[attr-defined]
                Campaign.key,
                Campaign.kind,
                Contact.email_kind,
                Contact.mobile,
                Delivery.body_html,
            )
            .join(Message, Message.id == Delivery.message_id)  # type: ignore[arg-type]
            .join(Campaign, Campaign.id == Message.campaign_id)  # type: ignore[arg-type]
            .join(Contact, Contact.id == Delivery.contact_id)  # type: ignore[arg-type]
        )
        self._next_day = start.astimezone(self._zone).date()
        self._queue: list[_Action] = []
        self._seq = itertools.count()
        self._events: list[dict[str, Any]] = []
        self._reads: set[tuple[int, int]] = set()
        self._new_reads: list[tuple[int, int, datetime]] = []
        self._engaged_until: dict[int, datetime] = {}
        self._registered: dict[str, set[int]] = {}
        self._registering: set[tuple[str, int]] = set()
        self._declarations: list[SaleRecord] = []
        self._line = itertools.count(1)
        self._reviews: list[tuple[int, bool]] = []
        self._inbound = itertools.count(1)
        self._propensities: dict[int, float] = {}
        self._gateways: dict[int, bool] = {}
        self._buyers = self._load_buyers()
        self._products = [(p.sku, p.unit_price) for p in app.config.products]

    # -- the callbacks -------------------------------------------------------------------

    def step(self, now: datetime) -> None:
        """React to what was sent up to ``now`` and do what was due by then."""
        for sent in self._sent_since():
            self._react(sent)
        self._run_due(now)
        self._simulate_sales(now)
        self._run_due(now)

    def finish(self, until: datetime) -> EngagementStats:
        """Do what was due by ``until``; later reactions never happen."""
        self.step(until)
        return self.stats

    # -- what was sent ---------------------------------------------------------------------

    def _sent_since(self) -> list[_Sent]:
        """Deliveries sent since the last call: among the rows created since (ids above
        the last seen) and those that were still waiting then. Scanning for a recent
        sent_at instead would read every row, bodies included, at every step."""
        table = Delivery.__table__  # type: ignore[attr-defined]
        watched = select(table.c.id, table.c.status).where(table.c.id > self._max_id)
        rows: list[Any] = []
        # Core, not the ORM: thousands of rows go by over a run
        with self.app.engine.connect() as connection:
            states = list(connection.execute(watched))
            waiting = sorted(self._waiting)
            for chunk in (waiting[i : i + 500] for i in range(0, len(waiting), 500)):
                states += connection.execute(
                    select(table.c.id, table.c.status).where(table.c.id.in_(chunk))
                ).all()
            new: list[int] = []
            for delivery_id, status in states:
                self._max_id = max(self._max_id, delivery_id)
                if status == DeliveryStatus.SENT.value:
                    new.append(delivery_id)
                    self._waiting.discard(delivery_id)
                elif status in FINAL_STATUSES:
                    self._waiting.discard(delivery_id)
                else:
                    self._waiting.add(delivery_id)
            for chunk in (new[i : i + 500] for i in range(0, len(new), 500)):
                rows += connection.execute(self._details.where(table.c.id.in_(chunk))).all()
        found = [
            _Sent(
                delivery_id=r[0],
                contact_id=r[1],
                company_id=r[2],
                message_id=r[3],
                channel=r[4],
                sent_at=r[5],
                provider_id=r[6],
                post_id=(r[7] or {}).get("post_id"),
                has_link=bool(r[8]),
                campaign=r[9],
                kind=r[10],
                email_kind=r[11],
                mobile=r[12],
                click_tokens=self._click_tokens(r[13]),
            )
            for r in rows
        ]
        return sorted(found, key=lambda s: (s.sent_at, s.delivery_id))

    def _react(self, sent: _Sent) -> None:
        if sent.channel == "email":
            self._react_email(sent)
        elif sent.channel == "sms":
            self._react_sms(sent)
        elif sent.channel in ("intranet", "flash"):
            self._react_post(sent)
        elif sent.channel == "print":
            self._maybe_register(sent, sent.sent_at + timedelta(days=self._rng.uniform(3, 10)))

    def _react_email(self, sent: _Sent) -> None:
        rng, rates = self._rng, self.rates
        if rng.random() < rates.apple_privacy:
            at = sent.sent_at + timedelta(seconds=rng.uniform(20, 600))
            self._later(at, self._seen, sent, "open", APPLE_PRIVACY_AGENT, at)
        if self._has_gateway(sent.company_id):
            # The gateway follows every link of the message, the post link first.
            at = sent.sent_at + timedelta(seconds=rng.uniform(1, 8))
            self._later(at, self._seen, sent, "click", GATEWAY_AGENT, at)
            for token in sent.click_tokens:
                at += timedelta(seconds=rng.uniform(0.2, 1.5))
                self._later(at, self._seen, sent, "click", GATEWAY_AGENT, at, token)
        chance = rates.open_rate(sent.kind) * self._propensity(sent.contact_id)
        if sent.email_kind == "shared":
            chance *= rates.shared_mailbox
        if rng.random() >= min(chance, 0.97):
            return
        agent = rng.choice(PEOPLE_AGENTS)
        opened = sent.sent_at + _delay_hours(rng, median=2.5)
        self._later(opened, self._seen, sent, "open", agent, opened)
        if rng.random() < rates.click_after_open * self._propensity(sent.contact_id):
            clicked = opened + timedelta(seconds=rng.uniform(20, 900))
            # One of the email's links: its outside links (the first, the product, most
            # often) or the button to the post.
            token = None
            if sent.click_tokens and rng.random() < rates.outside_link:
                weights = [1 / (rank + 1) for rank in range(len(sent.click_tokens))]
                token = rng.choices(sent.click_tokens, weights=weights)[0]
            self._later(clicked, self._seen, sent, "click", agent, clicked, token)
        if rng.random() < rates.register_after_open:
            self._maybe_register(sent, opened + timedelta(minutes=rng.uniform(2, 30)))

    def _react_sms(self, sent: _Sent) -> None:
        rng, rates = self._rng, self.rates
        status_at = sent.sent_at + timedelta(seconds=rng.uniform(3, 40))
        delivered = rng.random() < rates.sms_delivered
        self._later_alone(status_at, self._sms_status, sent, delivered, status_at)
        if not delivered:
            return
        if sent.has_link and rng.random() < rates.sms_preview:
            at = status_at + timedelta(seconds=rng.uniform(1, 5))
            self._later(at, self._seen, sent, "click", LINK_PREVIEW_AGENT, at)
        if sent.has_link and rng.random() < rates.sms_click * self._propensity(sent.contact_id):
            at = status_at + _delay_hours(rng, median=0.5)
            agent = rng.choice(PEOPLE_AGENTS[2:4])  # a phone
            self._later(at, self._seen, sent, "click", agent, at)
        if rng.random() < rates.register_by_sms:
            self._maybe_register(sent, status_at + _delay_hours(rng, median=1.0))

    def _react_post(self, sent: _Sent) -> None:
        if sent.post_id is None:
            return
        rng = self._rng
        share = self.rates.flash_read if sent.channel == "flash" else self.rates.post_read
        if rng.random() >= min(share * self._propensity(sent.contact_id), 0.97):
            return
        at = sent.sent_at + _delay_hours(rng, median=0.5 if sent.channel == "flash" else 20)
        self._later(at, self._read, sent, at)
        if rng.random() < self.rates.register_after_open:
            self._maybe_register(sent, at + timedelta(minutes=rng.uniform(1, 10)))

    # -- people and companies ------------------------------------------------------------------

    def _propensity(self, contact_id: int) -> float:
        """Some people read everything, others nothing: one stable factor per contact
        (mean 1), so opens, clicks and reads come from the same people."""
        factor = self._propensities.get(contact_id)
        if factor is None:
            factor = random.Random(f"{self.seed}:person:{contact_id}").uniform(0.55, 1.45)
            self._propensities[contact_id] = factor
        return factor

    def _has_gateway(self, company_id: int) -> bool:
        """Whether the company's mail gateway follows every link (a company-wide habit)."""
        found = self._gateways.get(company_id)
        if found is None:
            draw = random.Random(f"{self.seed}:gateway:{company_id}").random()
            found = self._gateways[company_id] = draw < self.rates.gateway_companies
        return found

    def _load_buyers(self) -> list[tuple[int, str, str]]:
        with Session(self.app.engine) as session:
            rows = session.execute(
                select(Contact.id, Contact.external_id, Company.external_id)
                .join(Company, Company.id == Contact.company_id)  # type: ignore[arg-type]
                .where(Contact.active)
                .order_by(Contact.id)
            ).all()
        return [
            (cid, ext, company)
            for cid, ext, company in rows
            if random.Random(f"{self.seed}:buyer:{cid}").random() < self.rates.buyers
        ]

    # -- the queue -------------------------------------------------------------------------

    def _later(self, at: datetime, run: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._queue, _Action(at, next(self._seq), run, args))

    def _later_alone(self, at: datetime, run: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._queue, _Action(at, next(self._seq), run, args, alone=True))

    def _run_due(self, now: datetime) -> None:
        """Due actions in time order; those that write in their own transactions (an SMS
        status, a registration) after one transaction for every buffered event."""
        alone: list[_Action] = []
        while self._queue and self._queue[0].at <= now:
            action = heapq.heappop(self._queue)
            if action.alone:
                alone.append(action)
            else:
                action.run(*action.args)
        self._flush_events()
        for action in alone:
            action.run(*action.args)
        self._flush_declarations(now)
        self._flush_reviews()

    # -- recording, through the paths real reactions take -----------------------------------------

    def _seen(
        self, sent: _Sent, kind: Kind, agent: str, at: datetime, token: str | None = None
    ) -> None:
        since = (at - sent.sent_at).total_seconds()
        reason = machine_reason(agent, since, kind)
        data: dict[str, Any] = {**SIMULATED, "user_agent": agent}
        if kind == "click" and token is not None:
            # Where the redirect would send the reader: the stored link the token names.
            found = click_target(self.app, token)
            if found is None:
                raise AssertionError(f"the demo's email holds a dead click link: {token}")
            data.update(found.data)
        elif kind == "click":
            data["url"] = self._target(sent)
            if sent.post_id is not None:
                data["post_id"] = sent.post_id  # as the post link (/p/) records it
        if reason:
            data["machine_reason"] = reason
        self._events.append(
            event_row(
                type="opened" if kind == "open" else "clicked",
                occurred_at=at,
                channel=sent.channel,
                contact_id=sent.contact_id,
                delivery_id=sent.delivery_id,
                message_id=sent.message_id,
                machine=reason is not None,
                data=data,
            )
        )
        if reason is None:
            self._engaged(sent.contact_id, at)
        field_name = ("machine_" if reason else "human_") + (
            "opens" if kind == "open" else "clicks"
        )
        setattr(self.stats, field_name, getattr(self.stats, field_name) + 1)

    def _click_tokens(self, html: str | None) -> tuple[str, ...]:
        if not html or "/c/" not in html:
            return ()
        return tuple(dict.fromkeys(self._click_link.findall(html)))

    def _target(self, sent: _Sent) -> str:
        if sent.post_id is not None:
            return f"{self._base_url}/portal/posts/{sent.post_id}"
        return f"{self._base_url}/portal/"

    def _read(self, sent: _Sent, at: datetime) -> None:
        assert sent.post_id is not None
        key = (sent.post_id, sent.contact_id)
        if key in self._reads:
            return  # the first read of a post is the one kept
        self._reads.add(key)
        self._new_reads.append((sent.post_id, sent.contact_id, at))
        self._events.append(
            event_row(
                type="read",
                occurred_at=at,
                channel=sent.channel,
                contact_id=sent.contact_id,
                message_id=sent.message_id,
                data={**SIMULATED, "post_id": sent.post_id, "via": "portal"},
                dedupe_key=f"read:{sent.post_id}:{sent.contact_id}",
            )
        )
        self._engaged(sent.contact_id, at)
        self.stats.post_reads += 1

    def _flush_events(self) -> None:
        """The buffered events and read receipts in one transaction (rows built by
        ``event_row``, as the tracking endpoints' batch writer inserts them)."""
        if not self._events and not self._new_reads:
            return
        with Session(self.app.engine) as session, session.begin():
            if self._events:
                session.execute(insert(Event), self._events)
            if self._new_reads:
                session.execute(
                    insert(PostRead),
                    [
                        {"post_id": post, "contact_id": contact, "read_at": at}
                        for post, contact, at in self._new_reads
                    ],
                )
        self._events, self._new_reads = [], []

    def _sms_status(self, sent: _Sent, delivered: bool, at: datetime) -> None:
        if not sent.provider_id:
            return
        apply_status(
            self.app,
            sid=sent.provider_id,
            status="delivered" if delivered else "undelivered",
            error_code="" if delivered else "30003",  # Twilio: unreachable destination handset
            now=at,
        )
        if delivered:
            self.stats.sms_delivered += 1
        else:
            self.stats.sms_undelivered += 1

    def _engaged(self, contact_id: int, at: datetime) -> None:
        until = at + ENGAGED_FOR
        if until > self._engaged_until.get(contact_id, at):
            self._engaged_until[contact_id] = until

    # -- challenge registrations ---------------------------------------------------------------

    def _challenge_of(self, campaign: str) -> ChallengeConfig | None:
        for challenge in self.app.config.challenges:
            if challenge.registration == "required" and campaign.startswith(f"{challenge.id}-"):
                return challenge
        return None

    def _maybe_register(self, sent: _Sent, at: datetime) -> None:
        challenge = self._challenge_of(sent.campaign)
        if challenge is None or (challenge.id, sent.contact_id) in self._registering:
            return
        if sent.channel == "print" and self._rng.random() >= self.rates.register_by_letter:
            return
        self._registering.add((challenge.id, sent.contact_id))
        if sent.channel == "sms" and challenge.sms_keyword and sent.mobile:
            self._later_alone(at, self._register_by_sms, challenge, sent, at)
        else:
            self._later_alone(at, self._register_on_portal, challenge, sent.contact_id)

    def _register_by_sms(self, challenge: ChallengeConfig, sent: _Sent, at: datetime) -> None:
        assert sent.mobile and challenge.sms_keyword
        sid = f"SMdemo{next(self._inbound):08d}"
        handle_inbound(self.app, sender=sent.mobile, body=challenge.sms_keyword, sid=sid, now=at)
        with Session(self.app.engine) as session:
            taking_part = session.scalar(
                select(Participant.id).where(
                    Participant.challenge_key == challenge.id,
                    Participant.contact_id == sent.contact_id,
                )
            )
        if taking_part is not None:  # else refused (outside the audience): the answer says so
            self._note_registered(challenge, sent.contact_id)

    def _register_on_portal(self, challenge: ChallengeConfig, contact_id: int) -> None:
        try:
            with Session(self.app.engine) as session, session.begin():
                contact = session.get(Contact, contact_id)
                if contact is not None:
                    register(self.app, session, challenge, [contact], via="portal")
        except UserError:
            return  # outside the challenge's audience: the portal refuses them too
        self._note_registered(challenge, contact_id)

    def _note_registered(self, challenge: ChallengeConfig, contact_id: int) -> None:
        members = self._registered.setdefault(challenge.id, set())
        if contact_id not in members:
            members.add(contact_id)
            self.stats.registrations += 1

    # -- sales ---------------------------------------------------------------------------------

    def _simulate_sales(self, now: datetime) -> None:
        """Each whole local day before ``now``: who sold what."""
        if not self._products:
            return
        while True:
            day = self._next_day
            day_end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self._zone)
            if day_end > now:
                return
            self._next_day = day + timedelta(days=1)
            if day.weekday() >= 5:
                continue  # partners declare working days' sales
            for contact_id, external_id, company in self._buyers:
                if self._rng.random() < self._sale_chance(contact_id, day, day_end):
                    self._sale(contact_id, external_id, company, day)

    def _sale_chance(self, contact_id: int, day: date, day_end: datetime) -> float:
        rates = self.rates
        chance = rates.daily_sale
        if self._engaged_until.get(contact_id, day_end) > day_end:
            chance *= rates.engaged_factor
        for challenge in self.app.config.challenges:
            live = challenge.start <= day <= challenge.end
            if live and contact_id in self._registered.get(challenge.id, ()):
                chance *= rates.participant_factor
                break
        return chance

    def _sale(self, contact_id: int, external_id: str, company: str, day: date) -> None:
        rng = self._rng
        sku, price = rng.choice(self._products)
        quantity = rng.choices((1, 2, 3, 5, 10), weights=(55, 25, 12, 6, 2))[0]
        sold_at = datetime.combine(day, time(rng.randint(8, 18), rng.randint(0, 59)), self._zone)
        line = next(self._line)
        record = SaleRecord(
            line=line,
            invoice_ref=f"SIM-{line:05d}",
            contact_external_id=external_id,
            company_external_id=company,
            sku=sku,
            quantity=quantity,
            amount=round(price * quantity, 2),
            sold_at=sold_at.astimezone(ZoneInfo("UTC")),
        )
        declared = sold_at + timedelta(days=rng.uniform(0.5, 4))
        self._later(declared, self._to_declare, record)

    # The lists are swapped for new ones when written: append through self, never through
    # a list method bound when the action was queued.
    def _to_declare(self, record: SaleRecord) -> None:
        self._declarations.append(record)

    def _to_review(self, sale_id: int, approve: bool) -> None:
        self._reviews.append((sale_id, approve))

    def _flush_declarations(self, now: datetime) -> None:
        if not self._declarations:
            return
        records, self._declarations = self._declarations, []
        summary = import_sales(
            self.app, records, source="simulated declarations", declared_by=DECLARED_BY
        )
        self.stats.sales_declared += summary.inserted
        approved = set(summary.approved_sale_ids)
        for sale_id in summary.sale_ids:
            if sale_id in approved:
                continue
            at = now + timedelta(days=self._rng.uniform(1, 3))
            verdict = self._rng.random() >= self.rates.sale_rejected
            self._later(at, self._to_review, sale_id, verdict)
        self.stats.sales_approved += len(approved)

    def _flush_reviews(self) -> None:
        if not self._reviews:
            return
        approve = [s for s, ok in self._reviews if ok]
        reject = [s for s, ok in self._reviews if not ok]
        self._reviews = []
        if approve:
            result = review(self.app, approve, approve=True, actor=REVIEWER)
            self.stats.points_awarded += result.points
            self.stats.sales_approved += len(approve)
        if reject:
            review(self.app, reject, approve=False, reason=REJECTION, actor=REVIEWER)
            self.stats.sales_rejected += len(reject)


def _delay_hours(rng: random.Random, *, median: float) -> timedelta:
    """A reaction delay: log-normal around ``median`` hours, at most ten days."""
    hours = min(rng.lognormvariate(math.log(median), 1.0), 240.0)
    return timedelta(hours=hours)


__all__ = ["EngagementSimulator", "EngagementStats", "Rates"]
