"""What a report covers: the campaigns, the challenges and the period asked for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.config.challenge_campaigns import is_generated
from network_anim.config.event_campaigns import event_campaign_ids
from network_anim.db.models import Campaign
from network_anim.errors import UserError
from network_anim.reports.model import GROUPINGS


@dataclass(frozen=True)
class Scope:
    campaign_filter: str | None
    # Campaign rows covered: id -> key (every campaign in the database when not filtered).
    campaigns: dict[int, str]
    challenge_keys: tuple[str, ...]
    start: datetime | None
    end: datetime | None
    by: str
    event_keys: tuple[str, ...] = ()

    @property
    def campaign_ids(self) -> list[int]:
        return sorted(self.campaigns)


def resolve_scope(
    app: App,
    *,
    campaign: str | None,
    start: datetime | None,
    end: datetime | None,
    by: str,
) -> Scope:
    """Check the filters and name what they cover; a mistake is a :class:`UserError`.

    ``campaign`` is a campaign key (of the database, or of the config: one that never
    fired gives a report of zeros), or a challenge id: the challenge's figures plus the
    messages generated for it (launch, reminders, results...).
    """
    if by not in GROUPINGS:
        raise UserError(f"unknown grouping {by!r}", [f"--by takes one of: {', '.join(GROUPINGS)}"])
    for name, moment in (("start", start), ("end", end)):
        if moment is not None and moment.tzinfo is None:
            raise ValueError(f"naive {name} datetime: give an aware one")
    if start is not None and end is not None and end <= start:
        raise UserError(
            "the report period is empty", [f"--to ({end:%Y-%m-%d}) must be after --from"]
        )
    challenge_ids = [c.id for c in app.config.challenges]
    with Session(app.engine) as session:
        rows = {cid: key for cid, key in session.execute(select(Campaign.id, Campaign.key))}
    event_ids = tuple(e.id for e in app.config.events)
    if campaign is None:
        return Scope(None, rows, tuple(challenge_ids), start, end, by, event_ids)
    if campaign in event_ids:
        generated = event_campaign_ids(app.config, campaign)
        covered = {cid: key for cid, key in rows.items() if key in generated}
        return Scope(campaign, covered, (), start, end, by, (campaign,))
    if campaign in challenge_ids:
        generated = {
            c.id
            for c in app.config.campaigns
            if is_generated(c) and c.id.startswith(f"{campaign}-")
        }
        covered = {cid: key for cid, key in rows.items() if key in generated}
        return Scope(campaign, covered, (campaign,), start, end, by)
    covered = {cid: key for cid, key in rows.items() if key == campaign}
    if not covered and app.config.campaign(campaign) is None:
        known = sorted(rows.values()) + challenge_ids + list(event_ids)
        listed = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "")
        raise UserError(
            f"unknown campaign {campaign!r}",
            [f"campaigns with messages in the database, challenges, events: {listed or 'none'}"],
        )
    return Scope(campaign, covered, (), start, end, by)
