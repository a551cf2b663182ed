"""A challenge participant's standing as template variables: the source of per-contact
variables (``app.ContactVariables``) for every campaign addressed to a challenge's
registered participants (the generated reminder, digest, last-week push, registration and
milestone messages, and any campaign of the user's on such an audience).

The figures are the individual leaderboard's (``leaderboard.standings``: the same ranking
query, ties shared), read in the firing's transaction for all its contacts at once. The
digest also stores a snapshot there, so the next digest's movement counts from this one,
and a firing that fails (a template error) leaves no snapshot behind.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlmodel import Session

from network_anim.app import App
from network_anim.challenges.leaderboard import Standing, snapshot_in, standings
from network_anim.config.challenge_campaigns import campaign_id
from network_anim.config.settings import Campaign, ChallengeConfig, Config

# What `netanim validate` renders a template with: plausible, and unlike any real value
# a placeholder would produce.
_SAMPLE: dict[str, Any] = {
    "rank": 3,
    "rank_label": "3e",
    "points": 1250,
    "participants": 42,
    "movement": "2 places gagnées",
}


class ChallengeStandings:
    """Rank, points, board size and movement of each participant (see the module)."""

    def provides(self, config: Config, campaign: Campaign) -> Mapping[str, Any]:
        return dict(_SAMPLE) if _challenge_of(config, campaign) is not None else {}

    def values(
        self,
        app: App,
        session: Session,
        campaign: Campaign,
        contact_ids: Collection[int] | None,
    ) -> Mapping[int, Mapping[str, Any]]:
        challenge = _challenge_of(app.config, campaign)
        if challenge is None:
            return {}
        now = app.clock.now()
        board = standings(session, app, challenge.id, now, contact_ids)
        if campaign.id == campaign_id(challenge, "digest") and "individual" in challenge.modes:
            snapshot_in(session, app, challenge.id, "individual", now)
        return {contact_id: variables(standing) for contact_id, standing in board.items()}


def variables(standing: Standing) -> dict[str, Any]:
    return {
        "rank": standing.rank,
        "rank_label": rank_label(standing.rank),
        "points": standing.points,
        "participants": standing.participants,
        "movement": movement(standing.movement),
    }


def rank_label(rank: int) -> str:
    """French ordinal: 1er, 2e, 3e..."""
    return "1er" if rank == 1 else f"{rank}e"


def movement(places: int | None) -> str:
    """The move since the previous snapshot, in words (None: not ranked then)."""
    if places is None:
        return "nouveau classement"
    if places == 0:
        return "même place que la semaine dernière"
    plural = "s" if abs(places) > 1 else ""
    verb = "gagnée" if places > 0 else "perdue"
    return f"{abs(places)} place{plural} {verb}{plural}"


def _challenge_of(config: Config, campaign: Campaign) -> ChallengeConfig | None:
    """The challenge whose registered participants are the campaign's whole audience."""
    audience = next((a for a in config.audiences if a.name == campaign.audience), None)
    if audience is None or audience.challenge is None or audience.registered is not True:
        return None
    return next((c for c in config.challenges if c.id == audience.challenge), None)


def variable_sources() -> tuple[ChallengeStandings]:
    """The per-contact variable sources of a running engine: whoever builds one (cli,
    daemon, simulation, demo) passes these to its App."""
    return (ChallengeStandings(),)
