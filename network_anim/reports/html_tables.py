"""The appendix of the HTML report: every figure behind the charts, as plain tables (what
a reader copies into a spreadsheet, and what a screen reader reads best)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from network_anim.reports import fr_format
from network_anim.reports.html_labels import (
    COMPARISON_LABELS,
    GROUPING_LABELS,
    LINKED,
    OPENABLE,
    READABLE,
    channel_label,
    group_label,
    ordered_channels,
    ordered_segments,
    segment_label,
)
from network_anim.reports.html_timeline import bucket_timeline
from network_anim.reports.model import ChallengeSummary, FunnelRow, Report


@dataclass(frozen=True)
class Table:
    key: str  # the HTML id, for the links of the table of contents
    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    # Per column: "num" (a figure: right-aligned, never wrapped), "key" (a name or a
    # date: never wrapped) or "" (text that may wrap).
    classes: tuple[str, ...]
    empty: str = "Aucune ligne sur la période."


def _table(
    key: str,
    caption: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    keys: int = 1,
    text: frozenset[int] = frozenset(),
) -> Table:
    """The first ``keys`` columns name the row, the columns in ``text`` are prose, the
    others figures."""
    classes = tuple("key" if i < keys else "" if i in text else "num" for i in range(len(headers)))
    return Table(key, caption, tuple(headers), tuple(tuple(r) for r in rows), classes)


def _measured(rate: float | None, channel: str, applies: frozenset[str], count: int) -> str:
    """A rate, or "–" where the channel cannot have it (no open pixel in an SMS)."""
    if channel not in applies and not count:
        return fr_format.NONE
    return fr_format.percent(rate)


# The funnel per channel, one line per measure (channels are few, measures many).
_FUNNEL_LINES: tuple[tuple[str, Callable[[FunnelRow], str]], ...] = (
    ("Planifiés", lambda r: fr_format.integer(r.planned)),
    ("Envoyés", lambda r: fr_format.integer(r.sent)),
    ("Délivrés", lambda r: fr_format.integer(r.delivered)),
    ("Taux de délivrance", lambda r: fr_format.percent(r.delivery_rate)),
    ("Ouverts (humains)", lambda r: fr_format.integer(r.opened_human)),
    ("Ouverts (machines, hors taux)", lambda r: fr_format.integer(r.opened_machine)),
    ("Taux d'ouverture", lambda r: _measured(r.open_rate, r.channel, OPENABLE, r.opened_human)),
    ("Cliqués", lambda r: fr_format.integer(r.clicked)),
    ("Taux de clic", lambda r: _measured(r.click_rate, r.channel, LINKED, r.clicked)),
    ("Lus", lambda r: fr_format.integer(r.read)),
    ("Taux de lecture", lambda r: _measured(r.read_rate, r.channel, READABLE, r.read)),
    ("Contacts touchés", lambda r: fr_format.integer(r.reached_contacts)),
    ("Contacts convertis", lambda r: fr_format.integer(r.converted)),
    ("Taux de conversion", lambda r: fr_format.percent(r.conversion_rate)),
    ("Coût", lambda r: fr_format.euros(r.cost)),
)

# The funnel per group: the counts and rates a comparison between groups needs.
_GROUP_COLUMNS: tuple[tuple[str, Callable[[FunnelRow], str]], ...] = (
    ("Envoyés", lambda r: fr_format.integer(r.sent)),
    ("Délivrés", lambda r: fr_format.integer(r.delivered)),
    ("Taux d'ouverture", lambda r: _measured(r.open_rate, r.channel, OPENABLE, r.opened_human)),
    ("Taux de clic", lambda r: _measured(r.click_rate, r.channel, LINKED, r.clicked)),
    ("Taux de lecture", lambda r: _measured(r.read_rate, r.channel, READABLE, r.read)),
    ("Contacts touchés", lambda r: fr_format.integer(r.reached_contacts)),
    ("Convertis", lambda r: fr_format.integer(r.converted)),
    ("Taux de conversion", lambda r: fr_format.percent(r.conversion_rate)),
    ("Coût", lambda r: fr_format.euros(r.cost)),
)


def _funnel_tables(report: Report) -> list[Table]:
    by_channel = {r.channel: r for r in report.funnel_totals if r.planned or r.sent}
    channels = ordered_channels(by_channel)
    tables = [
        _table(
            "table-funnel",
            "Entonnoir par canal",
            ("Mesure", *(channel_label(c) for c in channels)),
            [(name, *(cell(by_channel[c]) for c in channels)) for name, cell in _FUNNEL_LINES],
        )
    ]
    by = report.filters.by
    if by != "channel":
        grouping = GROUPING_LABELS.get(by, by)
        tables.append(
            _table(
                "table-funnel-groups",
                f"Entonnoir par {grouping} et par canal",
                (grouping.capitalize(), "Canal", *(name for name, _ in _GROUP_COLUMNS)),
                [
                    (
                        group_label(by, r.group),
                        channel_label(r.channel),
                        *(cell(r) for _, cell in _GROUP_COLUMNS),
                    )
                    for r in _grouped_rows(report)
                ],
                keys=2,
            )
        )
    return tables


def _grouped_rows(report: Report) -> list[FunnelRow]:
    """Groups in their natural order (best RFM segment first, else alphabetical), and
    channels in the usual order within each."""
    groups = {r.group for r in report.funnel}
    ordered = ordered_segments(groups) if report.filters.by == "segment" else sorted(groups)
    group_rank = {g: i for i, g in enumerate(ordered)}
    channel_rank = {c: i for i, c in enumerate(ordered_channels(r.channel for r in report.funnel))}
    return sorted(report.funnel, key=lambda r: (group_rank[r.group], channel_rank[r.channel]))


def _timeline_table(report: Report) -> Table:
    buckets = bucket_timeline(report.timeline)
    if buckets is None:
        return _table("table-timeline", "Messages envoyés et ouvertures", ("Jour", "Envoyés"), [])
    channels = ordered_channels(buckets.sent)
    rows = []
    for i, start in enumerate(buckets.starts):
        sent = [buckets.sent[c][i] for c in channels]
        human = sum(v[i] for v in buckets.opened_human.values())
        rows.append(
            (
                fr_format.day(start),
                *(fr_format.integer(v) for v in sent),
                fr_format.integer(sum(sent)),
                fr_format.integer(human),
                fr_format.integer(buckets.opened_machine[i]),
            )
        )
    return _table(
        "table-timeline",
        f"Messages envoyés par canal, et ouvertures, par {buckets.unit}",
        (
            "Semaine du" if buckets.weekly else "Jour",
            *(channel_label(c) for c in channels),
            "Total",
            "Ouvertures humaines",
            "Ouvertures machine",
        ),
        rows,
    )


def _mix_table(report: Report) -> Table:
    channels = ordered_channels(c.channel for c in report.channel_mix)
    segments = ordered_segments(c.segment for c in report.channel_mix)
    counts = {(c.segment, c.channel): c.sent for c in report.channel_mix}
    rows = []
    for segment in segments:
        values = [counts.get((segment, ch), 0) for ch in channels]
        rows.append(
            (
                segment_label(segment),
                *(fr_format.integer(v) for v in values),
                fr_format.integer(sum(values)),
            )
        )
    return _table(
        "table-mix",
        "Messages envoyés par segment RFM et par canal",
        ("Segment", *(channel_label(c) for c in channels), "Total"),
        rows,
    )


def _conversion_table(report: Report) -> Table:
    rows = []
    for c in report.conversion.campaigns:
        comparison = c.comparison
        rows.append(
            (
                c.campaign,
                fr_format.integer(c.reached.contacts),
                fr_format.integer(c.reached.converters),
                fr_format.percent(c.reached.rate),
                fr_format.euros(c.reached.sales_amount, 0),
                fr_format.euros(c.reached.average_order_value, 0),
                COMPARISON_LABELS.get(c.comparison_kind, c.comparison_kind),
                fr_format.integer(comparison.contacts) if comparison else fr_format.NONE,
                fr_format.percent(comparison.rate) if comparison else fr_format.NONE,
                fr_format.points_delta(c.uplift_points),
            )
        )
    overall = report.conversion.overall
    rows.append(
        (
            "Tous (contacts uniques)",
            fr_format.integer(overall.contacts),
            fr_format.integer(overall.converters),
            fr_format.percent(overall.rate),
            fr_format.euros(overall.sales_amount, 0),
            fr_format.euros(overall.average_order_value, 0),
            "",
            "",
            "",
            "",
        )
    )
    return _table(
        "table-conversion",
        "Conversion en ventes par campagne",
        (
            "Campagne",
            "Touchés",
            "Convertis",
            "Taux",
            "Ventes",
            "Panier moyen",
            "Comparaison",
            "Comparés",
            "Taux comparé",
            "Écart",
        ),
        rows,
        text=frozenset({6}),
    )


def _cost_table(report: Report) -> Table:
    costs = report.costs
    by_channel = {c.channel: c for c in costs.channels if c.sent or c.cost}
    rows = [
        (
            channel_label(ch),
            fr_format.integer(by_channel[ch].sent),
            fr_format.euros(by_channel[ch].cost),
            fr_format.euros(by_channel[ch].cost_per_sent, 3),
        )
        for ch in ordered_channels(by_channel)
    ]
    rows.append(
        (
            "Total",
            fr_format.integer(sum(c.sent for c in costs.channels)),
            fr_format.euros(costs.total),
            "",
        )
    )
    return _table(
        "table-costs",
        "Coûts par canal",
        ("Canal", "Envoyés", "Coût", "Coût par envoi"),
        rows,
    )


def _challenge_tables(summary: ChallengeSummary) -> list[Table]:
    leaders = _table(
        f"table-leaders-{summary.key}",
        f"Classement — {summary.name}",
        ("Rang", "Participant", "Entreprise", "Points"),
        [
            (
                str(e.rank),
                e.name,
                e.company or "",
                fr_format.number(e.points, 0 if float(e.points).is_integer() else 1),
            )
            for e in summary.leaderboard
        ],
        keys=3,
    )
    teams = _table(
        f"table-teams-{summary.key}",
        f"Atteinte de l'objectif par équipe — {summary.name}",
        ("Équipe", "Part de l'objectif"),
        [
            (a.subject, fr_format.percent(a.ratio))
            for a in sorted(summary.team_attainment, key=lambda a: (-a.ratio, a.subject))
        ],
    )
    return [leaders, teams]


def links_table(report: Report) -> Table:
    """Clicks per outside link, by campaign and message: which link readers followed."""
    rows = [
        (
            f"{row.campaign} · {row.step} · {row.occurrence}",
            row.url,
            fr_format.integer(row.clicks),
            fr_format.integer(row.people),
            fr_format.integer(row.machine_clicks),
        )
        for row in report.links
    ]
    table = _table(
        "table-links",
        "Clics par lien (liens extérieurs des messages)",
        ("Message", "Lien", "Clics (humains)", "Personnes", "Clics machines (hors taux)"),
        rows,
        keys=1,
        text=frozenset({1}),
    )
    return replace(table, empty="Aucun clic sur un lien extérieur sur la période.")


def appendix(report: Report) -> tuple[Table, ...]:
    tables = [
        *_funnel_tables(report),
        _timeline_table(report),
        _mix_table(report),
        _conversion_table(report),
        _cost_table(report),
    ]
    for summary in report.challenges:
        tables.extend(_challenge_tables(summary))
    return tuple(tables)


def bounces_table(report: Report) -> Table:
    """Bounces and complaints per campaign and channel, over the rows sent."""
    rows = [
        (
            line.campaign,
            channel_label(line.channel),
            fr_format.integer(line.sent),
            f"{fr_format.integer(line.hard_bounces)} ({fr_format.percent(line.hard_bounce_rate)})",
            f"{fr_format.integer(line.soft_bounces)} ({fr_format.percent(line.soft_bounce_rate)})",
            f"{fr_format.integer(line.complaints)} ({fr_format.percent(line.complaint_rate)})",
        )
        for line in report.bounce_rates
    ]
    table = _table(
        "table-bounces",
        "Rebonds et plaintes par campagne et canal (part des envois)",
        ("Campagne", "Canal", "Envoyés", "Rebonds définitifs", "Rebonds temporaires", "Plaintes"),
        rows,
        keys=2,
    )
    return replace(table, empty="Aucun envoi sur la période.")


__all__ = ["Table", "appendix", "bounces_table", "links_table"]
