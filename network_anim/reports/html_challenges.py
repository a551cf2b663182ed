"""The challenges section of the HTML report: key figures, participation, attainment of
the objectives, leaderboard (pure: a :class:`ChallengeSummary` in, charts out)."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from network_anim.reports import charts, fr_format
from network_anim.reports.charts import HALF_WIDTH, Bar
from network_anim.reports.model import ChallengeSummary

LEADERBOARD_SIZE = 10
TEAMS_SHOWN = 15
ATTAINMENT_BANDS: tuple[tuple[str, float], ...] = (
    ("moins de 25 %", 0.25),
    ("25 à 50 %", 0.5),
    ("50 à 75 %", 0.75),
    ("75 à 100 %", 1.0),
    ("100 % et plus", float("inf")),
)


@dataclass(frozen=True)
class ChallengeView:
    key: str
    name: str
    facts: tuple[tuple[str, str], ...]
    participation: Markup
    attainment: Markup
    teams: Markup
    leaderboard: Markup


def _band(ratio: float) -> int:
    for index, (_, upper) in enumerate(ATTAINMENT_BANDS):
        if ratio < upper:
            return index
    return len(ATTAINMENT_BANDS) - 1


def challenge_view(summary: ChallengeSummary) -> ChallengeView:
    return ChallengeView(
        key=summary.key,
        name=summary.name,
        facts=_facts(summary),
        participation=_participation(summary),
        attainment=_attainment(summary),
        teams=_teams(summary),
        leaderboard=_leaderboard(summary),
    )


def _facts(summary: ChallengeSummary) -> tuple[tuple[str, str], ...]:
    n = fr_format.integer
    return (
        (
            "Entreprises inscrites",
            f"{n(summary.companies_registered)} / {n(summary.companies_targeted)} "
            f"({fr_format.percent(summary.participation_rate, 0)})",
        ),
        (
            "Participants",
            f"{n(summary.participants)} dont {n(summary.active_participants)} actifs "
            f"({fr_format.percent(summary.active_rate, 0)})",
        ),
        (
            "Points distribués / échangés",
            f"{n(summary.points_issued)} / {n(summary.points_redeemed)}",
        ),
        ("Ventes pendant le challenge", fr_format.euros(summary.sales_during, 0)),
        ("Ventes sur la période de référence", fr_format.euros(summary.sales_baseline, 0)),
        ("Progression des ventes", fr_format.percent(summary.sales_uplift)),
    )


def _participation(summary: ChallengeSummary) -> Markup:
    title = f"Participation — {summary.name}"
    if not (summary.companies_targeted or summary.participants):
        return charts.no_data(
            title, "Aucune entreprise ciblée ni aucun participant.", width=HALF_WIDTH
        )

    def share(count: int, rate: float | None) -> str:
        return f"{fr_format.integer(count)} · {fr_format.percent(rate, 0)}"

    return charts.bar_chart(
        width=HALF_WIDTH,
        title=title,
        bars=[
            Bar("Entreprises ciblées", summary.companies_targeted, "#9ca3af"),
            Bar(
                "Entreprises inscrites",
                summary.companies_registered,
                "#0072B2",
                share(summary.companies_registered, summary.participation_rate),
            ),
            Bar("Participants", summary.participants, "#7A5195"),
            Bar(
                "Participants actifs",
                summary.active_participants,
                "#00805D",
                share(summary.active_participants, summary.active_rate),
            ),
        ],
    )


def _attainment(summary: ChallengeSummary) -> Markup:
    """How many participants reached each band of their objective."""
    if not summary.attainment:
        return charts.no_data(
            "Atteinte de l'objectif",
            "Aucun objectif individuel ou aucun participant.",
            width=HALF_WIDTH,
        )
    bands = [0] * len(ATTAINMENT_BANDS)
    for item in summary.attainment:
        bands[_band(item.ratio)] += 1
    reached = len(bands) - 1
    return charts.bar_chart(
        width=HALF_WIDTH,
        title=f"Participants par niveau d'atteinte de l'objectif — {summary.name}",
        bars=[
            Bar(label, count, "#00805D" if i == reached else "#2F7F9F")
            for i, ((label, _), count) in enumerate(zip(ATTAINMENT_BANDS, bands, strict=True))
        ],
        x_label="Nombre de participants",
    )


def _teams(summary: ChallengeSummary) -> Markup:
    teams = sorted(summary.team_attainment, key=lambda a: (-a.ratio, a.subject))
    return charts.bar_chart(
        title=f"Atteinte de l'objectif par équipe — {summary.name}",
        bars=[Bar(a.subject, a.ratio, "#7A5195") for a in teams[:TEAMS_SHOWN]],
        value_format=lambda v: fr_format.percent(v, 0),
        x_label="Part de l'objectif atteinte",
        empty_message="Aucun objectif d'équipe.",
    )


def _leaderboard(summary: ChallengeSummary) -> Markup:
    return charts.bar_chart(
        title=f"Classement en points — {summary.name}",
        bars=[
            Bar(
                f"{entry.rank}. {entry.name}" + (f" ({entry.company})" if entry.company else ""),
                float(entry.points),
                "#B34700" if entry.rank <= 3 else "#8C6D1F",  # the podium apart
            )
            for entry in summary.leaderboard[:LEADERBOARD_SIZE]
        ],
        value_format=lambda v: f"{fr_format.integer(v)}{fr_format.NBSP}pts",
        empty_message="Personne n'a encore marqué de points.",
    )


__all__ = ["ChallengeView", "challenge_view"]
