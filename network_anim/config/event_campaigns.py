"""An event's messages, generated from its definition (docs/events.md): the invitation to
its audience, a reminder to those who said yes (one per ``remind_days_before``), a last
call to those who have not answered, and the operational notice a contact promoted from
the waiting list receives.

They are ordinary campaigns of kind ``event``, so the daemon, the router, ``netanim plan``
and the reports treat them like any other. The reminders' and the last call's audiences
(``<id>-invited-yes``, ``<id>-invited-no-answer``) are read from the RSVP table when they
fire (network/audience.py).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from network_anim.config.challenge_campaigns import extended
from network_anim.config.settings import (
    Audience,
    Campaign,
    Config,
    EventConfig,
    Schedule,
    Step,
)

INVITATION, PROMOTED = "invitation", "promoted"
_SEND_HOUR = time(10)  # reminders and last call: mid-morning, inside every send window


def campaign_id(event: EventConfig, part: str) -> str:
    return f"{event.id}-{part}"


def event_vars(event: EventConfig) -> dict[str, str | int | float | bool]:
    """What every message of the event states (templates read them as variables)."""
    return {
        "event_id": event.id,
        "event_name": event.name,
        "event_date": event.start.strftime("%d/%m/%Y"),
        "event_time": event.start.strftime("%H:%M").replace(":", "h"),
        "event_place": event.place,
        "event_reply": f"{event.reply_keyword} OUI" if event.reply_keyword else "OUI",
        "event_reply_no": f"{event.reply_keyword} NON" if event.reply_keyword else "NON",
    }


def _operational(name: str, template: str) -> Step:
    """A message the contact asked for by answering yes: urgent (SMS first), no caps."""
    return Step(name=name, template=template, urgency="urgent", kind="operational")  # type: ignore[arg-type]


def _days_before(event: EventConfig, days: int) -> datetime:
    return datetime.combine(event.start.date() - timedelta(days=days), _SEND_HOUR)


def _campaigns(event: EventConfig, base: Audience) -> tuple[list[Audience], list[Campaign]]:
    yes = base.model_copy(
        update={"name": f"{event.id}-invited-yes", "event": event.id, "rsvp": "yes"}
    )
    silent = base.model_copy(
        update={"name": f"{event.id}-invited-no-answer", "event": event.id, "rsvp": "no-answer"}
    )
    common: dict[str, Any] = {"kind": "event", "level": event.level, "vars": event_vars(event)}

    def campaign(part: str, title: str, audience: Audience, step: Step, at: datetime) -> Campaign:
        return Campaign(
            id=campaign_id(event, part),
            name=f"{event.name}: {title}",
            audience=audience.name,
            steps=(step,),
            schedule=Schedule(date=at),
            **common,
        )

    campaigns = [
        campaign(
            INVITATION,
            "invitation",
            base,
            Step(name="invitation", template="event-invitation", urgency=event.urgency),
            event.invite_at,
        )
    ]
    for days in sorted(set(event.remind_days_before), reverse=True):
        campaigns.append(
            campaign(
                f"reminder-{days}d",
                f"reminder {days} day(s) before",
                yes,
                _operational("reminder", "event-reminder"),
                _days_before(event, days),
            )
        )
    if event.last_call_days_before is not None:
        campaigns.append(
            campaign(
                "last-call",
                "last call",
                silent,
                Step(name="last-call", template="event-last-call", urgency=event.urgency),
                _days_before(event, event.last_call_days_before),
            )
        )
    # No schedule: planned for one contact at a time, when a seat frees up for them
    # (campaigns/events.py).
    promoted = campaign(
        PROMOTED,
        "seat freed",
        yes,
        _operational("promoted", "event-promoted"),
        event.start,
    )
    campaigns.append(promoted.model_copy(update={"schedule": None}))
    return [yes, silent], campaigns


def generated(config: Config) -> tuple[tuple[Audience, ...], tuple[Campaign, ...]]:
    audiences: list[Audience] = []
    campaigns: list[Campaign] = []
    for event in config.events:
        base = next((a for a in config.audiences if a.name == event.audience), None)
        if base is None:
            continue  # refused by Config's validation
        more_audiences, more_campaigns = _campaigns(event, base)
        audiences += more_audiences
        campaigns += more_campaigns
    return tuple(audiences), tuple(campaigns)


def with_event_campaigns(config: Config) -> Config:
    """The effective config: what the user wrote plus every event's messages."""
    if not config.events:
        return config
    return extended(config, *generated(config))


def event_campaign_ids(config: Config, event_id: str) -> set[str]:
    """The campaigns generated for one event (a report of the event covers them)."""
    return {c.id for c in config.campaigns if c.kind == "event" and c.id.startswith(f"{event_id}-")}
