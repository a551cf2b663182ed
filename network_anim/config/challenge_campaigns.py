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

from network_anim.config.settings import (
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
            # What every message of the challenge states; each participant's standing
            # (rank, points...) comes from challenges.standings at planning time.
            "vars": {
                "challenge_name": challenge.name,
                "challenge_end": challenge.end.strftime("%d/%m/%Y"),
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
    return extended(config, *generated(config))


def extended(
    config: Config, audiences: tuple[Audience, ...], campaigns: tuple[Campaign, ...]
) -> Config:
    """``config`` with generated audiences and campaigns after the user's own."""
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
