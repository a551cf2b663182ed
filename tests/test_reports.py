"""The report against a known history: every figure computed by hand below.

The history (all times UTC, October 2026; the window is 30 days, the margin 30 %):

contacts (every one an active seller): c1 Alice, c2 Bob, c5 Eve at company A1 "Alpha",
role "vendeur"; c3 Carol ("technicien"), c4 Dan (no role), c6 Fay, c7 Gus ("vendeur") at
B1 "Beta".

campaign "spring" (in the config, audience "all": c1..c7), message due and sent 10-01 08:00
  d1  c1 email sent, est. 0.002: human opens 10-01 09:00 and 10-02, machine open 10-01
      08:01, human click
  d2  c2 email sent, est. 0.002, bounced
  d3  c3 sms sent, priced 0.0725 by Twilio, delivered
  d4  c4 sms sent, est. 0.0775, bounced (undelivered)
  d5  c1 intranet sent (post P1), read by c1
  d6  c3 intranet sent, not read
  d7  c2 print sent, est. 1.65
  d8  c4 print pending (never sent), est. 1.65
  d9  c5 email failed (never sent)
campaign "autumn" (a broadcast the config does not hold), sent 10-10 08:00
  d10 c1 email sent, est. 0.002, human open 10-10 12:00
  d11 c2 sms sent, priced 0.07, delivered
campaign "bots" (not in the config), sent 10-05 08:00: every open is a machine's
  d12 c3 email sent, est. 0.002, machine open 10-05 08:01
  d13 c4 email sent, est. 0.002, machine open and machine click 10-05 08:01
campaign "ghost": no message at all.

sales (approved unless said): s1 c1 10-15 1000; s2 c3 11-15 500; s3 c2 10-20 300
pending; s4 c4 10-25 200; s5 c5 10-12 400; s6 c1 09-20 250; s7 c2 09-25 150; s8 c1 10-16
900 rejected.

challenge "fall-cup" (2026-10-01..31, audience "all", individual): c1 and c2 registered;
c1 earned 100 (sales) + 20 (bonus), redeemed 50; c1's objective is 200 points.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from network_anim.app import App, open_app
from network_anim.clock import SimulatedClock
from network_anim.db.models import (
    Campaign,
    Company,
    CompanySegment,
    Contact,
    Delivery,
    Event,
    LedgerEntry,
    Message,
    Objective,
    Participant,
    Post,
    PostRead,
    Sale,
)
from network_anim.errors import UserError
from network_anim.reports.build import build_report
from network_anim.reports.model import UNSCORED, FunnelRow, Report
from tests.conftest import write_config

CONFIG_EXTRA = """
[[campaigns]]
id = "spring"
name = "Spring offer"
kind = "newsletter"
audience = "all"
schedule = { date = 2026-10-01T10:00:00 }

[[campaigns.steps]]
name = "mail"
template = "welcome"
urgency = "info"

[[challenges]]
id = "fall-cup"
name = "Fall cup"
audience = "all"
start = 2026-10-01
end = 2026-10-31
modes = ["individual"]

[challenges.scoring]
points_per_euro = 0.1
"""

T0 = datetime(2026, 9, 1, tzinfo=UTC)


def at(month: int, day: int, hour: int = 8, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def report_config(folder: Path, database_url: str) -> Path:
    return write_config(folder, database_url, CONFIG_EXTRA, example_campaigns=False)


@pytest.fixture
def report_app(
    tmp_path: Path, database_url: str, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[App]:
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    application = open_app(report_config(tmp_path, database_url), clock=clock)
    yield application
    application.close()


@dataclass
class History:
    contacts: dict[str, int]
    companies: dict[str, int]


class _Writer:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.count = 0

    def add(self, row: Any) -> Any:
        self.session.add(row)
        self.session.flush()
        return row

    def delivery(
        self,
        message: Message,
        contact: int,
        channel: str,
        *,
        sent: datetime | None,
        status: str = "sent",
        estimate: float = 0.0,
        cost: float | None = None,
        due: datetime | None = None,
        post: Post | None = None,
    ) -> Delivery:
        self.count += 1
        moment = due or sent or at(10, 1)
        return self.add(
            Delivery(
                idempotency_key=f"k{self.count}",
                message_id=message.id,
                contact_id=contact,
                channel=channel,
                status=status,
                due_at=moment,
                cost_estimate=estimate,
                cost=cost,
                sent_at=sent,
                extra={"post_id": post.id} if post else {},
                created_at=moment,
                updated_at=moment,
            )
        )

    def event(
        self, delivery: Delivery, kind: str, when: datetime, *, machine: bool = False
    ) -> None:
        self.add(
            Event(
                occurred_at=when,
                type=kind,
                channel=delivery.channel,
                contact_id=delivery.contact_id,
                delivery_id=delivery.id,
                message_id=delivery.message_id,
                machine=machine,
            )
        )


def build_history(app: App) -> History:
    with Session(app.engine) as session:
        w = _Writer(session)
        companies = {
            ext: w.add(Company(external_id=ext, name=name, created_at=T0, updated_at=T0)).id
            for ext, name in (("A1", "Alpha"), ("B1", "Beta"))
        }
        people = (
            ("c1", "Alice", "A1", "vendeur"),
            ("c2", "Bob", "A1", "vendeur"),
            ("c3", "Carol", "B1", "technicien"),
            ("c4", "Dan", "B1", ""),
            ("c5", "Eve", "A1", "vendeur"),
            ("c6", "Fay", "B1", "vendeur"),
            ("c7", "Gus", "B1", "vendeur"),
        )
        contacts = {
            key: w.add(
                Contact(
                    external_id=key.upper(),
                    company_id=companies[company],
                    first_name=first,
                    last_name="Test",
                    role=role,
                    level="seller",
                    created_at=T0,
                    updated_at=T0,
                )
            ).id
            for key, first, company, role in people
        }
        c = contacts
        campaigns = {
            key: w.add(Campaign(key=key, name=key.title(), kind="broadcast", created_at=T0))
            for key in ("spring", "autumn", "bots", "ghost")
        }

        def message(campaign: str) -> Message:
            return w.add(
                Message(
                    campaign_id=campaigns[campaign].id,
                    step="s",
                    occurrence="o",
                    urgency="info",
                    kind="marketing",
                    template="welcome",
                    created_at=T0,
                )
            )

        spring, autumn, bots = message("spring"), message("autumn"), message("bots")
        post = w.add(Post(message_id=spring.id, title="Spring", body="...", created_at=T0))
        sent = at(10, 1)
        d1 = w.delivery(spring, c["c1"], "email", sent=sent, estimate=0.002)
        w.event(d1, "opened", at(10, 1, 9))
        w.event(d1, "opened", at(10, 2, 9))
        w.event(d1, "opened", at(10, 1, 8, 1), machine=True)
        w.event(d1, "clicked", at(10, 1, 9, 5))
        d2 = w.delivery(spring, c["c2"], "email", sent=sent, estimate=0.002)
        w.event(d2, "bounced", at(10, 1, 8, 2))
        d3 = w.delivery(spring, c["c3"], "sms", sent=sent, estimate=0.08, cost=0.0725)
        w.event(d3, "delivered", at(10, 1, 8, 1))
        d4 = w.delivery(spring, c["c4"], "sms", sent=sent, status="failed", estimate=0.0775)
        w.event(d4, "bounced", at(10, 1, 8, 1))
        w.delivery(spring, c["c1"], "intranet", sent=sent, post=post)
        w.add(PostRead(post_id=post.id, contact_id=c["c1"], read_at=at(10, 3)))
        w.delivery(spring, c["c3"], "intranet", sent=sent, post=post)
        w.delivery(spring, c["c2"], "print", sent=sent, estimate=1.65)
        w.delivery(spring, c["c4"], "print", sent=None, status="pending", estimate=1.65, due=sent)
        w.delivery(spring, c["c5"], "email", sent=None, status="failed", estimate=0.002, due=sent)

        d10 = w.delivery(autumn, c["c1"], "email", sent=at(10, 10), estimate=0.002)
        w.event(d10, "opened", at(10, 10, 12))
        d11 = w.delivery(autumn, c["c2"], "sms", sent=at(10, 10), estimate=0.08, cost=0.07)
        w.event(d11, "delivered", at(10, 10, 8, 1))

        d12 = w.delivery(bots, c["c3"], "email", sent=at(10, 5), estimate=0.002)
        w.event(d12, "opened", at(10, 5, 8, 1), machine=True)
        d13 = w.delivery(bots, c["c4"], "email", sent=at(10, 5), estimate=0.002)
        w.event(d13, "opened", at(10, 5, 8, 1), machine=True)
        w.event(d13, "clicked", at(10, 5, 8, 1), machine=True)

        sales = (
            ("s1", "c1", at(10, 15, 12), 1000.0, "approved"),
            ("s2", "c3", at(11, 15, 12), 500.0, "approved"),
            ("s3", "c2", at(10, 20, 12), 300.0, "pending"),
            ("s4", "c4", at(10, 25, 12), 200.0, "approved"),
            ("s5", "c5", at(10, 12, 12), 400.0, "approved"),
            ("s6", "c1", at(9, 20, 12), 250.0, "approved"),
            ("s7", "c2", at(9, 25, 12), 150.0, "approved"),
            ("s8", "c1", at(10, 16, 12), 900.0, "rejected"),
        )
        for ref, who, when, value, status in sales:
            contact = session.get(Contact, c[who])
            assert contact is not None
            w.add(
                Sale(
                    company_id=contact.company_id,
                    contact_id=c[who],
                    invoice_ref=ref,
                    amount=value,
                    status=status,
                    sold_at=when,
                    created_at=when,
                )
            )

        for who in ("c1", "c2"):
            w.add(Participant(challenge_key="fall-cup", contact_id=c[who], registered_at=at(10, 1)))
        ledger = (
            ("earn", 100, "fall-cup", "l1"),
            ("bonus", 20, "fall-cup", "l2"),
            ("redeem", -50, None, "l3"),
        )
        for kind, points, challenge, key in ledger:
            w.add(
                LedgerEntry(
                    contact_id=c["c1"],
                    challenge_key=challenge,
                    kind=kind,
                    points=points,
                    remaining=max(points, 0),
                    source_key=key,
                    created_at=at(10, 20),
                )
            )
        w.add(
            Objective(
                challenge_key="fall-cup",
                scope="participant",
                subject="C1",
                due=at(10, 31),
                target=200,
            )
        )
        # A1 is scored "champions"; B1 has no score ("unscored").
        w.add(
            CompanySegment(
                company_id=companies["A1"], scheme="rfm", segment="champions", computed_at=T0
            )
        )
        session.commit()
    return History(contacts=contacts, companies=companies)


def funnel_row(rows: tuple[FunnelRow, ...], group: str, channel: str) -> dict[str, Any]:
    matching = [r for r in rows if r.group == group and r.channel == channel]
    assert len(matching) == 1, (group, channel, rows)
    row = matching[0].__dict__.copy()
    del row["group"], row["channel"]
    return row


def zero_row(**rates: float | None) -> dict[str, Any]:
    counts = dict.fromkeys(
        ("planned", "sent", "delivered", "opened_human", "opened_machine", "clicked", "read"), 0
    )
    rate_names = ("delivery_rate", "open_rate", "click_rate", "read_rate", "conversion_rate")
    return {
        **counts,
        "reached_contacts": 0,
        "converted": 0,
        "cost": 0.0,
        **dict.fromkeys(rate_names),
        **rates,
    }


# Per-channel totals over the whole history (converted pairs: spring c1, spring c4,
# autumn c1, bots c4).
EMAIL_TOTAL = {
    "planned": 6,  # d1 d2 d9 d10 d12 d13
    "sent": 5,  # d9 never sent
    "delivered": 4,  # d2 bounced
    "opened_human": 2,  # d1 (twice, counted once), d10
    "opened_machine": 3,  # d1, d12, d13
    "clicked": 1,  # d1; d13's click is a machine's
    "read": 0,
    "reached_contacts": 4,  # c1 c2 c3 c4
    "converted": 2,  # c1 (spring d1, autumn d10), c4 (bots d13)
    "cost": 0.01,  # 5 x 0.002
    "delivery_rate": 0.8,  # 4 / 5
    "open_rate": 0.5,  # 2 / 4
    "click_rate": 0.25,  # 1 / 4
    "read_rate": None,  # no read receipts on email
    "conversion_rate": 0.5,  # 2 / 4
}
SMS_TOTAL = {
    "planned": 3,  # d3 d4 d11
    "sent": 3,
    "delivered": 2,  # d3 d11 have Twilio "delivered"; d4 bounced
    "opened_human": 0,
    "opened_machine": 0,
    "clicked": 0,
    "read": 0,
    "reached_contacts": 3,  # c3 c4 c2
    "converted": 1,  # c4 by spring (d4 was sent, then undelivered: still reached)
    "cost": 0.22,  # 0.0725 (Twilio price, not the 0.08 estimate) + 0.0775 + 0.07
    "delivery_rate": 0.6667,  # 2 / 3
    "open_rate": None,  # no opens on SMS
    "click_rate": 0.0,  # 0 / 2
    "read_rate": None,
    "conversion_rate": 0.3333,  # 1 / 3
}
INTRANET_TOTAL = {
    "planned": 2,  # d5 d6
    "sent": 2,
    "delivered": 2,  # published
    "opened_human": 0,
    "opened_machine": 0,
    "clicked": 0,
    "read": 1,  # c1 read P1
    "reached_contacts": 2,  # c1 c3
    "converted": 1,  # c1 by spring
    "cost": 0.0,
    "delivery_rate": 1.0,
    "open_rate": None,
    "click_rate": 0.0,
    "read_rate": 0.5,  # 1 / 2
    "conversion_rate": 0.5,  # 1 / 2
}
PRINT_TOTAL = {
    "planned": 2,  # d7 d8
    "sent": 1,  # d8 pending
    "delivered": 1,  # exported
    "opened_human": 0,
    "opened_machine": 0,
    "clicked": 0,
    "read": 0,
    "reached_contacts": 1,  # c2
    "converted": 0,  # c2's only sale in a spring window is pending
    "cost": 1.65,  # d7 only: an unsent letter costs nothing
    "delivery_rate": 1.0,
    "open_rate": None,
    "click_rate": None,  # printed links are not tracked
    "read_rate": None,
    "conversion_rate": 0.0,  # 0 / 1
}


def test_every_figure_of_the_whole_history(report_app: App) -> None:
    build_history(report_app)
    report = build_report(report_app)

    assert report.campaigns == ("autumn", "bots", "ghost", "spring")
    totals = report.funnel_totals
    assert [r.channel for r in totals] == ["email", "flash", "intranet", "print", "sms", "whatsapp"]
    assert funnel_row(totals, "all", "email") == EMAIL_TOTAL
    assert funnel_row(totals, "all", "sms") == SMS_TOTAL
    assert funnel_row(totals, "all", "intranet") == INTRANET_TOTAL
    assert funnel_row(totals, "all", "print") == PRINT_TOTAL
    assert funnel_row(totals, "all", "flash") == zero_row()  # defined, never used
    assert funnel_row(totals, "all", "whatsapp") == zero_row()
    # Grouped by channel, the rows are the totals.
    assert report.funnel == tuple(r for r in totals if r.planned)

    conversion = report.conversion
    assert conversion.window_days == 30
    by_key = {c.campaign: c for c in conversion.campaigns}
    assert list(by_key) == ["autumn", "bots", "ghost", "spring"]

    spring = by_key["spring"]
    # Reached c1 c2 c3 c4 on 10-01 08:00, window to 10-31 08:00: c1 bought s1 1000, c4 s4 200
    # (c1's s8 is rejected, c2's s3 pending, c3's s2 after the window).
    assert spring.reached.__dict__ == {
        "label": "reached",
        "contacts": 4,
        "converters": 2,
        "sales_amount": 1200.0,
        "rate": 0.5,  # 2 / 4
        "average_order_value": 600.0,  # 1200 / 2 sales
    }
    # The audience "all" is c1..c7; c5 c6 c7 were never reached; same window: c5 bought 400.
    assert spring.comparison_kind == "unreached"
    assert spring.comparison is not None
    assert spring.comparison.__dict__ == {
        "label": "unreached audience",
        "contacts": 3,
        "converters": 1,
        "sales_amount": 400.0,
        "rate": 0.3333,  # 1 / 3
        "average_order_value": 400.0,
    }
    assert spring.uplift_points == 0.1667  # 1/2 - 1/3
    assert spring.uplift == 0.5  # (1/2 - 1/3) / (1/3)

    autumn = by_key["autumn"]
    # Reached c1 c2 on 10-10 08:00, window to 11-09: c1's s1 1000 (a contact reached by two
    # campaigns converts for both).
    assert (autumn.reached.contacts, autumn.reached.converters) == (2, 1)
    assert (autumn.reached.sales_amount, autumn.reached.rate) == (1000.0, 0.5)
    # Its audience (everyone it was planned for) was all reached: baseline 09-10..10-10,
    # c1 bought s6 250 and c2 s7 150.
    assert autumn.comparison_kind == "baseline"
    assert autumn.comparison is not None
    assert autumn.comparison.label == "baseline, same contacts"
    assert (autumn.comparison.contacts, autumn.comparison.converters) == (2, 2)
    assert (autumn.comparison.sales_amount, autumn.comparison.rate) == (400.0, 1.0)
    assert autumn.comparison.average_order_value == 200.0  # 400 / 2 sales
    assert (autumn.uplift_points, autumn.uplift) == (-0.5, -0.5)  # 0.5 - 1; -0.5 / 1

    bots = by_key["bots"]
    # c3 c4 reached 10-05: c4's s4 200 is in the window; baseline 09-05..10-05 is empty.
    assert (bots.reached.contacts, bots.reached.converters, bots.reached.sales_amount) == (
        2,
        1,
        200.0,
    )
    assert bots.comparison is not None and bots.comparison_kind == "baseline"
    assert (bots.comparison.converters, bots.comparison.rate) == (0, 0.0)
    assert bots.comparison.average_order_value is None
    assert bots.uplift_points == 0.5  # 0.5 - 0
    assert bots.uplift is None  # relative to a rate of 0

    ghost = by_key["ghost"]
    assert ghost.reached.contacts == 0 and ghost.reached.rate is None
    assert ghost.comparison is None and ghost.comparison_kind == "none"
    assert ghost.uplift_points is None and ghost.uplift is None

    # Overall, each contact and each sale once: c1 c2 c3 c4 reached; c1 and c4 converted
    # with s1 1000 + s4 200.
    assert conversion.overall.__dict__ == {
        "label": "reached by any campaign",
        "contacts": 4,
        "converters": 2,
        "sales_amount": 1200.0,
        "rate": 0.5,
        "average_order_value": 600.0,
    }
    # spring 1200 - 400/3*4 = 666.67; autumn 1000 - 400/2*2 = 600; bots 200 - 0 = 200
    assert conversion.incremental_sales == 1466.67

    costs = report.costs
    assert {c.channel: (c.sent, c.cost, c.cost_per_sent) for c in costs.channels} == {
        "email": (5, 0.01, 0.002),
        "flash": (0, 0.0, None),
        "intranet": (2, 0.0, 0.0),
        "print": (1, 1.65, 1.65),
        "sms": (3, 0.22, 0.0733),  # 0.22 / 3
        "whatsapp": (0, 0.0, None),
    }
    assert costs.total == 1.88  # 0.01 + 0.22 + 1.65
    assert costs.converters == 2
    assert costs.cost_per_conversion == 0.94  # 1.88 / 2
    assert costs.gain == 360.0  # 30 % of 1200
    assert costs.roi == 190.4894  # (360 - 1.88) / 1.88
    assert "30% margin x attributed sales" in report.gain_definition

    challenge = report.challenges[0]
    assert challenge.key == "fall-cup" and challenge.name == "Fall cup"
    # Audience "all": companies A1 and B1; only A1's c1 and c2 registered.
    assert (challenge.companies_targeted, challenge.companies_registered) == (2, 1)
    assert (challenge.participants, challenge.active_participants) == (2, 1)
    assert (challenge.participation_rate, challenge.active_rate) == (0.5, 0.5)
    assert [(a.subject, a.ratio) for a in challenge.attainment] == [("C1", 0.5)]  # 100 / 200
    assert challenge.team_attainment == ()
    assert (challenge.points_issued, challenge.points_redeemed) == (120, 50)  # 100 + 20; 50
    # October (Paris): s1 1000 + s4 200 + s5 400; September: s6 250 + s7 150.
    assert (challenge.sales_during, challenge.sales_baseline) == (1600.0, 400.0)
    assert challenge.sales_uplift == 3.0  # (1600 - 400) / 400
    assert [(e.rank, e.name, e.company, e.points) for e in challenge.leaderboard] == [
        (1, "Alice Test", "Alpha", 120),
        (2, "Bob Test", "Alpha", 0),
    ]

    # Sends on 10-01 (10:00 in Paris), 10-05 and 10-10; each opened delivery once, on the
    # day of its first open.
    assert [(p.day.isoformat(), p.channel, p.sent, p.opened_human, p.opened_machine) for p in
            report.timeline] == [
        ("2026-10-01", "email", 2, 1, 1),  # d1 d2 sent; d1 opened by a human and a machine
        ("2026-10-01", "intranet", 2, 0, 0),
        ("2026-10-01", "print", 1, 0, 0),
        ("2026-10-01", "sms", 2, 0, 0),
        ("2026-10-05", "email", 2, 0, 2),  # bots: machine opens only
        ("2026-10-10", "email", 1, 1, 0),
        ("2026-10-10", "sms", 1, 0, 0),
    ]  # fmt: skip
    # Sent rows: A1 (champions) d1 d2 d10 email, d5 intranet, d7 print, d11 sms; B1
    # (unscored) d12 d13 email, d6 intranet, d3 d4 sms.
    assert {(m.segment, m.channel): m.sent for m in report.channel_mix} == {
        ("champions", "email"): 3, ("champions", "intranet"): 1,
        ("champions", "print"): 1, ("champions", "sms"): 1,
        (UNSCORED, "email"): 2, (UNSCORED, "intranet"): 1, (UNSCORED, "sms"): 2,
    }  # fmt: skip


def test_json_carries_the_same_figures(report_app: App) -> None:
    build_history(report_app)
    report = build_report(report_app)
    data = json.loads(json.dumps(report.to_json()))  # plain JSON types only
    assert data["schema_version"] == 1
    assert data["generated_at"] == "2026-11-25T10:00:00+00:00"
    assert data["period"] == {"start": None, "end": None}
    assert data["filters"] == {"campaign": None, "by": "channel"}
    email = next(r for r in data["funnel_totals"] if r["channel"] == "email")
    assert email == {"group": "all", "channel": "email", **EMAIL_TOTAL}
    assert data["costs"]["roi"] == 190.4894
    assert data["costs"]["total"] == 1.88
    assert data["conversion"]["overall"]["converters"] == 2
    spring = next(c for c in data["conversion"]["campaigns"] if c["campaign"] == "spring")
    assert spring["comparison"]["contacts"] == 3 and spring["uplift"] == 0.5
    assert data["timeline"][0] == {
        "day": "2026-10-01",
        "channel": "email",
        "sent": 2,
        "opened_human": 1,
        "opened_machine": 1,
    }
    assert data["challenges"][0]["leaderboard"][0]["name"] == "Alice Test"
    assert set(data["definitions"]) >= {"delivered", "opened", "converted", "comparison", "roi"}


def test_grouped_by_company_and_role(report_app: App) -> None:
    build_history(report_app)
    by_company = build_report(report_app, by="company").funnel
    # A1: d1 d2 d9 (c5, never sent) d10 email; B1: d12 d13 email.
    alpha = funnel_row(by_company, "A1 Alpha", "email")
    assert (alpha["planned"], alpha["sent"], alpha["delivered"]) == (4, 3, 2)  # d2 bounced
    assert (alpha["opened_human"], alpha["opened_machine"]) == (2, 1)  # d1 d10; d1
    assert (alpha["open_rate"], alpha["reached_contacts"], alpha["converted"]) == (1.0, 2, 1)
    beta = funnel_row(by_company, "B1 Beta", "email")
    assert (beta["planned"], beta["delivered"], beta["opened_human"]) == (2, 2, 0)
    assert (beta["opened_machine"], beta["open_rate"]) == (2, 0.0)  # all opens machine
    assert (beta["converted"], beta["conversion_rate"]) == (1, 0.5)  # c4 by bots
    assert {(r.group, r.channel) for r in by_company} == {
        ("A1 Alpha", "email"), ("A1 Alpha", "intranet"), ("A1 Alpha", "print"),
        ("A1 Alpha", "sms"), ("B1 Beta", "email"), ("B1 Beta", "intranet"),
        ("B1 Beta", "print"), ("B1 Beta", "sms"),
    }  # fmt: skip

    by_role = build_report(report_app, by="role").funnel
    # c4 (no role): d4 sms (bounced, converted by spring), d8 print (pending), d13 email.
    no_role_sms = funnel_row(by_role, "(no role)", "sms")
    assert (no_role_sms["sent"], no_role_sms["delivered"], no_role_sms["converted"]) == (1, 0, 1)
    no_role_print = funnel_row(by_role, "(no role)", "print")
    assert (no_role_print["planned"], no_role_print["sent"], no_role_print["cost"]) == (1, 0, 0.0)
    # vendeur: c1 c2 (c5 never sent): email d1 d2 d9 d10.
    assert funnel_row(by_role, "vendeur", "email")["planned"] == 4
    # technicien: c3: d3 sms delivered, d6 intranet unread, d12 email.
    tech = funnel_row(by_role, "technicien", "intranet")
    assert (tech["read"], tech["read_rate"]) == (0, 0.0)


def test_grouped_by_segment(report_app: App) -> None:
    build_history(report_app)
    rows = build_report(report_app, by="segment").funnel
    champions = funnel_row(rows, "champions", "email")  # A1: d1 d2 d9 d10
    assert (champions["planned"], champions["sent"], champions["opened_human"]) == (4, 3, 2)
    unscored = funnel_row(rows, UNSCORED, "email")  # B1: d12 d13
    assert (unscored["planned"], unscored["opened_machine"], unscored["converted"]) == (2, 2, 1)
    assert {r.group for r in rows} == {"champions", UNSCORED}


def test_one_campaign_whose_opens_are_all_machine(report_app: App) -> None:
    build_history(report_app)
    report = build_report(report_app, campaign="bots")
    assert report.campaigns == ("bots",)
    assert report.challenges == ()
    email = funnel_row(report.funnel_totals, "all", "email")
    assert (email["planned"], email["sent"], email["delivered"]) == (2, 2, 2)
    assert (email["opened_human"], email["opened_machine"], email["clicked"]) == (0, 2, 0)
    assert (email["open_rate"], email["click_rate"]) == (0.0, 0.0)  # 0 / 2
    assert report.conversion.overall.converters == 1  # c4
    assert report.costs.total == 0.0  # 2 x 0.002 = 0.004, shown to the cent
    # ...but ratios use the unrounded cost: (0.3 x 200 - 0.004) / 0.004
    assert report.costs.roi == 14999.0
    assert report.costs.cost_per_conversion == 0.0  # 0.004 / 1, to the cent


def test_campaign_with_no_deliveries_gives_zeros(report_app: App) -> None:
    build_history(report_app)
    report = build_report(report_app, campaign="ghost")
    assert report.funnel == ()
    assert all(r.planned == 0 and r.delivery_rate is None for r in report.funnel_totals)
    assert report.conversion.overall.rate is None
    assert (report.costs.total, report.costs.roi, report.costs.cost_per_conversion) == (
        0.0,
        None,
        None,
    )


def test_period_keeps_deliveries_due_in_it(report_app: App) -> None:
    build_history(report_app)
    # [10-05 00:00, 10-10 00:00) in Paris (UTC+2 in October): only bots' d12 and d13.
    report = build_report(report_app, start=at(10, 4, 22), end=at(10, 9, 22))
    assert sum(r.planned for r in report.funnel_totals) == 2
    by_key = {c.campaign: c for c in report.conversion.campaigns}
    assert by_key["spring"].reached.contacts == 0  # its sends were on 10-01
    assert by_key["autumn"].reached.contacts == 0  # 10-10: the end is excluded
    assert by_key["bots"].reached.converters == 1


def test_a_challenge_id_selects_the_challenge(report_app: App) -> None:
    build_history(report_app)
    report = build_report(report_app, campaign="fall-cup")
    # Its generated messages (launch, reminders...) were never planned in this history.
    assert report.campaigns == ()
    assert [c.key for c in report.challenges] == ["fall-cup"]
    assert report.challenges[0].points_issued == 120


def test_incremental_gain(
    tmp_path: Path, database_url: str, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    path = report_config(tmp_path, database_url)
    text = path.read_text(encoding="utf-8")
    text = text.replace('gain_basis = "attributed"', 'gain_basis = "incremental"')
    path.write_text(text.replace("margin_rate = 0.3", "margin_rate = 0.25"), encoding="utf-8")
    application = open_app(path, clock=clock)
    try:
        build_history(application)
        costs = build_report(application).costs
    finally:
        application.close()
    assert costs.gain == 366.67  # 25 % of 1466.67
    assert costs.roi == 194.0359  # (0.25 x 1466.67 - 1.88) / 1.88 = 364.7875 / 1.88


def test_empty_database_is_a_report_of_zeros(report_app: App) -> None:
    report = build_report(report_app)
    assert report.funnel == () and report.timeline == () and report.channel_mix == ()
    assert [funnel_row(report.funnel_totals, "all", c) for c in ("email", "sms")] == [
        zero_row(),
        zero_row(),
    ]
    assert report.conversion.campaigns == ()
    assert report.conversion.overall.contacts == 0 and report.conversion.overall.rate is None
    assert report.costs.roi is None and report.costs.cost_per_conversion is None
    challenge = report.challenges[0]
    # No company to target, no participant: nothing to divide by.
    assert (challenge.companies_targeted, challenge.participants) == (0, 0)
    assert (challenge.participation_rate, challenge.active_rate) == (None, None)
    json.dumps(report.to_json())


def test_mistakes_are_user_errors(report_app: App) -> None:
    with pytest.raises(UserError, match="unknown campaign 'nope'"):
        build_report(report_app, campaign="nope")
    with pytest.raises(UserError, match="unknown grouping"):
        build_report(report_app, by="colour")
    with pytest.raises(UserError, match="period is empty"):
        build_report(report_app, start=at(10, 2), end=at(10, 1))
    # A campaign of the config that never fired is known: a report of zeros.
    assert isinstance(build_report(report_app, campaign="spring"), Report)
