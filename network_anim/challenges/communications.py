"""What a challenge's generated messages need at run time: each participant's standing
(points, rank, places gained) and enrolment into its generated sequences."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from network_anim.config.challenge_campaigns import MILESTONE, WELCOME, campaign_id
from network_anim.config.settings import Campaign, ChallengeConfig

__all__ = ["MILESTONE", "WELCOME", "contact_vars", "enrol_in"]


def contact_vars(app: Any, session: Session, campaign: Campaign) -> dict[int, dict[str, Any]]:
    """Each participant's points, rank and (for the digest) places gained since the last
    digest. Personal, so a participant hidden from public boards still gets their own."""
    challenge = next((c for c in app.config.challenges if campaign.id.startswith(f"{c.id}-")), None)
    if challenge is None or campaign.kind != "challenge":
        return {}
    from sqlalchemy import func, select

    from network_anim.challenges.leaderboard import take_snapshot
    from network_anim.challenges.ledger import challenge_points
    from network_anim.db.models import Contact, LeaderboardSnapshot, Participant

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
    from network_anim.campaigns.sequences import enrol

    campaign = app.config.campaign(campaign_id(challenge, part))
    if campaign is None or not contacts:
        return 0
    return enrol(app, session, campaign, contacts, trigger=f"challenge:{part}")
