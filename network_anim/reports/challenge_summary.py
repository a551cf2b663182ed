"""Challenge figures for the report, taken from the challenge engine's own KPIs and
leaderboard (never re-derived here, so the report and ``netanim challenge`` agree)."""

from __future__ import annotations

from network_anim.app import App
from network_anim.challenges.kpis import kpis
from network_anim.challenges.leaderboard import leaderboard
from network_anim.reports.figures import amount, rate
from network_anim.reports.model import Attainment, ChallengeSummary, LeaderEntry

LEADERBOARD_TOP = 5


def challenge_summaries(app: App, keys: tuple[str, ...]) -> tuple[ChallengeSummary, ...]:
    return tuple(_summary(app, key) for key in keys)


def _summary(app: App, key: str) -> ChallengeSummary:
    challenge = app.config.challenge(key)
    figures = kpis(app, key)
    scope = "individual" if "individual" in challenge.modes else "team"
    top = leaderboard(app, key, scope=scope, limit=LEADERBOARD_TOP)  # type: ignore[arg-type]
    return ChallengeSummary(
        key=key,
        name=challenge.name,
        companies_targeted=figures["companies_targeted"],
        companies_registered=figures["companies_registered"],
        participants=figures["participants"],
        active_participants=figures["active_participants"],
        participation_rate=rate(figures["companies_registered"], figures["companies_targeted"]),
        active_rate=rate(figures["active_participants"], figures["participants"]),
        attainment=_attainments(figures["attainment"]),
        team_attainment=_attainments(figures["team_attainment"]),
        points_issued=figures["points_issued"],
        points_redeemed=figures["points_redeemed"],
        sales_during=amount(figures["sales_during"]),
        sales_baseline=amount(figures["sales_baseline"]),
        sales_uplift=figures["sales_uplift"],
        leaderboard=tuple(
            LeaderEntry(rank=r.rank, name=r.name, company=r.company, points=r.points) for r in top
        ),
    )


def _attainments(ratios: dict[str, float]) -> tuple[Attainment, ...]:
    """Best first, then by subject, so the list reads like a ranking."""
    ordered = sorted(ratios.items(), key=lambda item: (-item[1], item[0]))
    return tuple(Attainment(subject, ratio) for subject, ratio in ordered)
