"""Enrolment into a challenge's generated sequences (registration, milestone); the
participants' standings their messages state come from ``challenges.standings``."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from network_anim.config.challenge_campaigns import MILESTONE, WELCOME, campaign_id
from network_anim.config.settings import ChallengeConfig

__all__ = ["MILESTONE", "WELCOME", "enrol_in"]


def enrol_in(
    app: Any, session: Session, challenge: ChallengeConfig, part: str, contacts: list[Any]
) -> int:
    """Put contacts into one of the challenge's generated sequences (registration, milestone)."""
    from network_anim.campaigns.sequences import enrol

    campaign = app.config.campaign(campaign_id(challenge, part))
    if campaign is None or not contacts:
        return 0
    return enrol(app, session, campaign, contacts, trigger=f"challenge:{part}")
