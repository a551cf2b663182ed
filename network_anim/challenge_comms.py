"""A challenge's communication rhythm, generated from its definition (DESIGN.md §1: launch
by paper mailing, then email, reminders, results).

The messages are ordinary campaigns, so the daemon, the router and ``netanim plan`` treat
them like any other: scheduled ones (launch, monthly reminders to the registered and,
differently, to the others, last-week push, results) and sequences (confirmation and
follow-up after registration, milestone reached) that registration and scoring enrol
contacts into.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from sqlmodel import Session

from network_anim.config import (
    Audience,
    Campaign,
    ChallengeConfig,
    Config,
    Enrol,
    Schedule,
    Step,
)

WELCOME, MILESTONE = "welcome", "milestone"
# Monthly: the first Monday of each month (APScheduler matches day AND day_of_week).
_FIRST_MONDAY = "0 9 1-7 * mon"
# The leaderboard digest: every other weekday than the monthly reminder's.
_THURSDAYS = "0 9 * * thu"


def campaign_id(challenge: ChallengeConfig, part: str) -> str:
    return f"{challenge.id}-{part}"


def _step(
    name: str, template: str, urgency: str, *, kind: str = "marketing", delay: str = "0d"
) -> Step:
    return Step(name=name, template=template, urgency=urgency, kind=kind, delay=delay)  # type: ignore[arg-type]


def _at(day: Any, hour: int) -> datetime:
    return datetime.combine(day, time(hour))


def generated(config: Config) -> tuple[tuple[Audience, ...], tuple[Campaign, ...]]:
    audiences: list[Audience] = []
    campaigns: list[Campaign] = []
    for challenge in config.challenges:
        base = next((a for a in config.audiences if a.name == challenge.audience), None)
        if base is None:
            continue  # reported by checks.challenge_problems
        registered = base.model_copy(
            update={
                "name": f"{challenge.id}-registered",
                "challenge": challenge.id,
                "registered": True,
            }
        )
        others = base.model_copy(
            update={
                "name": f"{challenge.id}-not-registered",
                "challenge": challenge.id,
                "registered": False,
            }
        )
        audiences += [registered, others]
        common: dict[str, Any] = {
            "kind": "challenge",
            "level": challenge.level,
            "vars": {
                "challenge_name": challenge.name,
                "challenge_end": challenge.end.strftime("%d/%m/%Y"),
                "points": 0,
                "rank": "-",
                "participants": 0,
                "movement": "nouveau classement",
            },
        }
        start, end = _at(challenge.start, 9), _at(challenge.end, 9)
        during = {"start": start + timedelta(days=1), "end": end}

        def add(part: str, title: str, audience: Audience, *steps: Step, **timing: Any) -> None:
            """One generated campaign: scheduled with ``schedule=``, else a sequence."""
            kind = "challenge" if "schedule" in timing else "nurture"
            if kind == "nurture":
                timing = {"enrol": Enrol(on=("manual",)), "exit_on": ("unsubscribed",)}
            campaigns.append(
                Campaign(
                    id=campaign_id(challenge, part),  # noqa: B023 (called within this iteration)
                    name=f"{challenge.name}: {title}",  # noqa: B023
                    audience=audience.name,
                    steps=steps,
                    **timing,
                    **{**common, "kind": kind},  # noqa: B023
                )
            )

        add(
            "launch",
            "launch",
            base,
            _step("letter", "challenge-launch", "important"),
            _step("email", "challenge-launch", "reminder", delay="2bd"),
            schedule=Schedule(date=start),
        )
        add(
            "reminder",
            "monthly reminder",
            registered,
            _step("reminder", "challenge-reminder", "reminder"),
            schedule=Schedule(cron=_FIRST_MONDAY, **during),
        )
        if challenge.registration == "required":
            add(
                "invitation",
                "not registered yet",
                others,
                _step("invitation", "challenge-invitation", "reminder"),
                schedule=Schedule(cron=_FIRST_MONDAY, **during),
            )
        add(
            "digest",
            "leaderboard digest",
            registered,
            _step("digest", "challenge-digest", "reminder"),
            schedule=Schedule(cron=_THURSDAYS, start=start + timedelta(days=7), end=end),
        )
        add(
            "last-week",
            "last week",
            registered,
            _step("push", "challenge-last-week", "urgent"),
            schedule=Schedule(date=end - timedelta(days=6)),
        )
        add(
            "results",
            "results",
            base,
            _step("results", "challenge-results", "info"),
            schedule=Schedule(date=_at(challenge.end + timedelta(days=1), 10)),
        )
        add(
            WELCOME,
            "registration",
            registered,
            _step("confirmation", "challenge-registered", "reminder", kind="operational"),
            _step("follow-up", "challenge-follow-up", "reminder", delay="7d"),
        )
        add(
            MILESTONE,
            "milestone reached",
            registered,
            _step("bravo", "challenge-milestone", "info"),
        )
    return tuple(audiences), tuple(campaigns)


def with_challenge_campaigns(config: Config) -> Config:
    """The effective config: what the user wrote plus every challenge's messages."""
    if not config.challenges:
        return config
    audiences, campaigns = generated(config)
    return config.model_copy(
        update={
            "audiences": config.audiences + audiences,
            "campaigns": config.campaigns + campaigns,
        }
    )


def is_generated(campaign: Campaign) -> bool:
    return (
        campaign.kind in ("challenge", "nurture")
        and campaign.name.count(": ") == 1
        and campaign.id.endswith(
            (
                "-launch",
                "-reminder",
                "-digest",
                "-invitation",
                "-last-week",
                "-results",
                f"-{WELCOME}",
                f"-{MILESTONE}",
            )
        )
    )


def contact_vars(app: Any, session: Session, campaign: Campaign) -> dict[int, dict[str, Any]]:
    """Each participant's points, rank and (for the digest) places gained since the last
    digest. Personal, so a participant hidden from public boards still gets their own."""
    challenge = next((c for c in app.config.challenges if campaign.id.startswith(f"{c.id}-")), None)
    if challenge is None or campaign.kind != "challenge":
        return {}
    from sqlalchemy import func, select

    from network_anim.challenges import challenge_points
    from network_anim.db.models import Contact, LeaderboardSnapshot, Participant
    from network_anim.leaderboard import take_snapshot

    members = dict(
        session.execute(
            select(Participant.contact_id, Contact.external_id)
            .join(Contact, Contact.id == Participant.contact_id)
            .where(Participant.challenge_key == challenge.id)
        ).all()
    )
    points = challenge_points(session, challenge.id)
    ordered = sorted(members, key=lambda cid: -points.get(cid, 0))
    ranks: dict[int, int] = {}
    for position, cid in enumerate(ordered, start=1):
        ahead = ordered[position - 2] if position > 1 else None
        tied = ahead is not None and points.get(ahead, 0) == points.get(cid, 0)
        ranks[cid] = ranks[ahead] if tied and ahead is not None else position
    previous: dict[str, int] = {}
    if campaign.id == campaign_id(challenge, "digest"):
        last = session.scalar(
            select(func.max(LeaderboardSnapshot.taken_at)).where(
                LeaderboardSnapshot.challenge_key == challenge.id,
                LeaderboardSnapshot.scope == "individual",
            )
        )
        if last is not None:
            previous = dict(
                session.execute(
                    select(LeaderboardSnapshot.subject, LeaderboardSnapshot.rank).where(
                        LeaderboardSnapshot.challenge_key == challenge.id,
                        LeaderboardSnapshot.scope == "individual",
                        LeaderboardSnapshot.taken_at == last,
                    )
                ).all()
            )
        take_snapshot(app, challenge.id, "individual")  # the next digest counts moves from now
    return {
        cid: {
            "points": points.get(cid, 0),
            "rank": ranks[cid],
            "participants": len(members),
            "movement": _movement(
                previous[members[cid]] - ranks[cid] if members[cid] in previous else None
            ),
        }
        for cid in members
    }


def _movement(places: int | None) -> str:
    if not places:
        return "même place que la semaine dernière" if places == 0 else "nouveau classement"
    return f"{abs(places)} place{'s' if abs(places) > 1 else ''} {'gagnée' if places > 0 else 'perdue'}{'s' if abs(places) > 1 else ''}"


def enrol_in(
    app: Any, session: Session, challenge: ChallengeConfig, part: str, contacts: list[Any]
) -> int:
    """Put contacts into one of the challenge's generated sequences (registration, milestone)."""
    from network_anim.sequences import enrol

    campaign = app.config.campaign(campaign_id(challenge, part))
    if campaign is None or not contacts:
        return 0
    return enrol(app, session, campaign, contacts, trigger=f"challenge:{part}")
