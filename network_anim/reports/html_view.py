"""What the HTML page shows, derived from a :class:`Report` (pure: no database, no I/O).

The report model holds counts per channel; this module adds up what a reader wants at a
glance (headline tiles), buckets the timeline by week when the period is long, and turns
each section into charts (:mod:`charts`). The template only lays these objects out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from markupsafe import Markup

from network_anim.reports import charts, fr_format
from network_anim.reports.charts import HALF_WIDTH, Bar, Series, channel_colour
from network_anim.reports.html_challenges import ChallengeView, challenge_view
from network_anim.reports.html_events import EventView, event_view
from network_anim.reports.html_labels import (
    COMPARISON_LABELS,
    GROUPING_LABELS,
    LINKED,
    OPENABLE,
    READABLE,
    channel_label,
    ordered_channels,
    ordered_segments,
    segment_label,
)
from network_anim.reports.html_tables import Table, appendix, bounces_table, links_table
from network_anim.reports.html_timeline import bucket_timeline
from network_anim.reports.model import FunnelRow, RateWarning, Report, TimelinePoint

MACHINE_COLOUR = "#6b7280"
COST_COLOUR = "#9B3A3A"
GAIN_COLOUR = "#2E7D32"


@dataclass(frozen=True)
class Tile:
    label: str
    value: str
    note: str


@dataclass(frozen=True)
class FunnelView:
    channel: str
    chart: Markup
    note: str


@dataclass(frozen=True)
class Page:
    title: str
    scope: str
    period: str
    generated: str
    tiles: tuple[Tile, ...]
    timeline_unit: str
    sent_chart: Markup
    opens_chart: Markup
    machine_note: str
    funnels: tuple[FunnelView, ...]
    mix_chart: Markup
    challenges: tuple[ChallengeView, ...]
    events: tuple[EventView, ...]
    conversion_chart: Markup
    conversion_note: str
    links: Table
    bounces: Table
    # The [bounces] thresholds a campaign passed, as sentences.
    bounce_warnings: tuple[str, ...]
    cost_chart: Markup
    gain_chart: Markup
    roi_text: str
    gain_definition: str
    tables: tuple[Table, ...]
    campaigns: tuple[str, ...]
    definitions: tuple[tuple[str, str], ...]


def page(report: Report) -> Page:
    zone = ZoneInfo(report.timezone)
    unit, sent_chart, opens_chart = _timeline_charts(report.timeline)
    return Page(
        title="Rapport d'animation du réseau",
        scope=_scope(report),
        period=_period(report, zone),
        generated=fr_format.moment(report.generated_at, zone),
        tiles=_tiles(report),
        timeline_unit=unit,
        sent_chart=sent_chart,
        opens_chart=opens_chart,
        machine_note=_machine_note(report.funnel_totals),
        funnels=tuple(_funnel(row) for row in _by_channel(report.funnel_totals)),
        mix_chart=_mix_chart(report),
        challenges=tuple(challenge_view(c) for c in report.challenges),
        events=tuple(event_view(f) for f in report.rsvp),
        conversion_chart=_conversion_chart(report),
        conversion_note=_conversion_note(report),
        links=links_table(report),
        bounces=bounces_table(report),
        bounce_warnings=tuple(_warning_text(w) for w in report.warnings),
        cost_chart=_cost_chart(report),
        gain_chart=_gain_chart(report),
        roi_text=_roi_text(report),
        gain_definition=report.gain_definition,
        tables=appendix(report),
        campaigns=report.campaigns,
        definitions=tuple(report.definitions.items()),
    )


def _warning_text(warning: RateWarning) -> str:
    what = "de plaintes" if warning.kind == "complaint" else "de rebonds définitifs"
    return (
        f"Campagne {warning.campaign}, {channel_label(warning.channel)} : taux {what} de "
        f"{fr_format.percent(warning.rate, 2)}, au-dessus du seuil de "
        f"{fr_format.percent(warning.threshold, 2)} ([bounces] de la configuration)."
    )


# -- header and headline figures --------------------------------------------------------------


def _scope(report: Report) -> str:
    grouping = GROUPING_LABELS.get(report.filters.by, report.filters.by)
    if report.filters.campaign:
        head = f"Campagne « {report.filters.campaign} »"
    else:
        count = len(report.campaigns)
        head = f"Toutes les campagnes ({count})" if count else "Aucune campagne"
    return f"{head} · entonnoir par {grouping}"


def _period(report: Report, zone: ZoneInfo) -> str:
    start, end = report.period.start, report.period.end
    days = [p.day for p in report.timeline]
    if start is None and end is None:
        if not days:
            return "Toute l'activité enregistrée"
        return f"Toute l'activité : du {fr_format.day(min(days))} au {fr_format.day(max(days))}"
    first = f"du {_bound(start, zone)}" if start else "depuis le début"
    last = f"au {_bound(end, zone, last=True)}" if end else "à aujourd'hui"
    return f"Période : {first} {last}"


def _bound(moment: datetime, zone: ZoneInfo, *, last: bool = False) -> str:
    """A bound at local midnight reads as a day (the end, exclusive, as the day before);
    any other as a day and an hour."""
    local = moment.astimezone(zone)
    if (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0):
        return fr_format.day((local - timedelta(days=1)).date() if last else local.date())
    return fr_format.moment(moment, zone) + (" (exclu)" if last else "")


def _total(rows: Iterable[FunnelRow], channels: frozenset[str] | None, field: str) -> int:
    return sum(getattr(r, field) for r in rows if channels is None or r.channel in channels)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _tiles(report: Report) -> tuple[Tile, ...]:
    rows = report.funnel_totals
    sent = _total(rows, None, "sent")
    planned = _total(rows, None, "planned")
    delivered = _total(rows, None, "delivered")
    opened_delivered = _total(rows, OPENABLE, "delivered")
    human = _total(rows, OPENABLE, "opened_human")
    machine = _total(rows, OPENABLE, "opened_machine")
    linked_delivered = _total(rows, LINKED, "delivered")
    clicked = _total(rows, LINKED, "clicked")
    read_delivered = _total(rows, READABLE, "delivered")
    read = _total(rows, READABLE, "read")
    overall = report.conversion.overall
    costs = report.costs
    return (
        Tile(
            "Messages envoyés",
            fr_format.integer(sent),
            f"sur {fr_format.integer(planned)} planifiés · "
            f"{fr_format.percent(_ratio(delivered, sent))} délivrés",
        ),
        Tile(
            "Taux d'ouverture (e-mail)",
            fr_format.percent(_ratio(human, opened_delivered)),
            f"{fr_format.integer(human)} ouvertures humaines uniques ; "
            f"{fr_format.integer(machine)} ouvertures machine écartées",
        ),
        Tile(
            "Taux de clic",
            fr_format.percent(_ratio(clicked, linked_delivered)),
            f"{fr_format.integer(clicked)} messages cliqués (e-mail et SMS)",
        ),
        Tile(
            "Taux de lecture (portail)",
            fr_format.percent(_ratio(read, read_delivered)),
            f"{fr_format.integer(read)} posts lus sur {fr_format.integer(read_delivered)} publiés",
        ),
        Tile(
            "Contacts convertis",
            fr_format.integer(overall.converters),
            f"{fr_format.percent(overall.rate)} des {fr_format.integer(overall.contacts)} "
            f"contacts touchés · {fr_format.euros(overall.sales_amount, 0)} de ventes",
        ),
        Tile(
            "Coût des envois",
            fr_format.euros(costs.total),
            f"{fr_format.euros(costs.cost_per_conversion)} par contact converti",
        ),
        Tile(
            "ROI",
            fr_format.percent(costs.roi, 0),
            f"gain {fr_format.euros(costs.gain, 0)} pour {fr_format.euros(costs.total, 0)} "
            "de coût ; (gain − coût) / coût",
        ),
    )


# -- over time --------------------------------------------------------------------------------


def _timeline_charts(timeline: Sequence[TimelinePoint]) -> tuple[str, Markup, Markup]:
    sent_title = "Messages envoyés par canal"
    opens_title = "Ouvertures humaines par canal"
    buckets = bucket_timeline(timeline)
    if buckets is None:
        return "jour", charts.no_data(sent_title), charts.no_data(opens_title)
    unit = buckets.unit
    x_label = "Semaine (du lundi)" if buckets.weekly else "Jour"
    sent_series = [
        Series(channel_label(c), tuple(map(float, buckets.sent[c])), channel_colour(c))
        for c in ordered_channels(buckets.sent)
    ]
    opened = buckets.opened_human
    opens_series = [
        Series(f"{channel_label(c)} (humaines)", tuple(map(float, opened[c])), channel_colour(c))
        for c in ordered_channels(opened)
        if any(opened[c]) or c in OPENABLE
    ]
    if any(buckets.opened_machine):
        opens_series.append(
            Series(
                "Machines (écartées des taux)",
                tuple(map(float, buckets.opened_machine)),
                MACHINE_COLOUR,
                dashed=True,
            )
        )
    return (
        unit,
        charts.line_chart(
            title=f"{sent_title}, par {unit}",
            x=buckets.starts,
            series=sent_series,
            y_label=f"Messages envoyés par {unit}",
            x_label=x_label,
        ),
        charts.line_chart(
            title=f"{opens_title}, par {unit}",
            x=buckets.starts,
            series=opens_series,
            y_label=f"Ouvertures par {unit}",
            x_label=x_label,
            empty_message="Aucune ouverture enregistrée sur la période.",
        ),
    )


def _machine_note(rows: Sequence[FunnelRow]) -> str:
    machine = sum(r.opened_machine for r in rows)
    human = sum(r.opened_human for r in rows)
    if not machine:
        return "Aucune ouverture machine (préchargement, antivirus) détectée."
    share = fr_format.percent(_ratio(machine, machine + human), 0)
    return (
        f"{fr_format.integer(machine)} messages n'ont été « ouverts » que par une machine "
        f"(préchargement Apple Mail, passerelle antivirus) : {share} des ouvertures brutes, "
        "comptées à part et dans aucun taux."
    )


# -- funnel and channel mix -------------------------------------------------------------------


def _by_channel(rows: Sequence[FunnelRow]) -> list[FunnelRow]:
    """The channels that had something planned, in the usual order (a channel the
    campaigns never use would only show an empty panel)."""
    by_name = {r.channel: r for r in rows if r.planned or r.sent}
    return [by_name[c] for c in ordered_channels(by_name)]


def _funnel(row: FunnelRow) -> FunnelView:
    stages: list[tuple[str, float]] = [
        ("Planifiés", row.planned),
        ("Envoyés", row.sent),
        ("Délivrés", row.delivered),
    ]
    if row.channel in OPENABLE or row.opened_human:
        stages.append(("Ouverts (humains)", row.opened_human))
    if row.channel in LINKED or row.clicked:
        stages.append(("Cliqués", row.clicked))
    if row.channel in READABLE or row.read:
        stages.append(("Lus", row.read))
    name = channel_label(row.channel)
    chart = charts.funnel_chart(
        width=HALF_WIDTH,
        title=f"Entonnoir {name}",
        stages=stages,
        colour=channel_colour(row.channel),
        empty_message=f"Aucun message {name} sur la période.",
    )
    note = (
        f"{fr_format.integer(row.reached_contacts)} contacts touchés, "
        f"{fr_format.integer(row.converted)} convertis "
        f"({fr_format.percent(row.conversion_rate)}) · coût {fr_format.euros(row.cost)}"
    )
    return FunnelView(name, chart, note)


def _mix_chart(report: Report) -> Markup:
    cells = report.channel_mix
    channels = ordered_channels(c.channel for c in cells)
    segments = ordered_segments(c.segment for c in cells)
    counts = {(c.segment, c.channel): c.sent for c in cells}
    series = [
        Series(
            channel_label(ch),
            tuple(float(counts.get((seg, ch), 0)) for seg in segments),
            channel_colour(ch),
        )
        for ch in channels
    ]
    return charts.stacked_bars(
        title="Mix des canaux par segment RFM (part des messages envoyés)",
        categories=[segment_label(s) for s in segments],
        series=series,
        empty_message="Aucun message envoyé sur la période.",
    )


# -- conversion, cost and ROI -----------------------------------------------------------------


def _conversion_chart(report: Report) -> Markup:
    campaigns = [c for c in report.conversion.campaigns if c.reached.contacts]
    return charts.grouped_bars(
        title="Taux de conversion en ventes : contacts touchés et groupe de comparaison",
        categories=[c.campaign for c in campaigns],
        series=[
            Series("Contacts touchés", tuple(c.reached.rate for c in campaigns), "#0072B2"),
            Series(
                "Groupe de comparaison",
                tuple(c.comparison.rate if c.comparison else None for c in campaigns),
                "#9ca3af",
            ),
        ],
        value_format=lambda v: fr_format.percent(v),
        empty_message="Aucune vente approuvée de contact touché sur la période.",
    )


def _conversion_note(report: Report) -> str:
    conversion = report.conversion
    kinds = sorted({c.comparison_kind for c in conversion.campaigns})
    compared = ", ".join(COMPARISON_LABELS.get(k, k) for k in kinds) or "aucune"
    return (
        f"Fenêtre de conversion : {conversion.window_days} jours après le premier envoi de "
        f"chaque campagne. Groupes de comparaison : {compared}. Ventes supplémentaires "
        f"estimées : {fr_format.euros(conversion.incremental_sales, 0)}."
    )


def _cost_chart(report: Report) -> Markup:
    rows = {c.channel: c for c in report.costs.channels if c.sent or c.cost}
    return charts.bar_chart(
        width=HALF_WIDTH,
        title="Coût des envois par canal",
        bars=[
            Bar(
                channel_label(ch),
                rows[ch].cost,
                channel_colour(ch),
                f"{fr_format.euros(rows[ch].cost)} · "
                f"{fr_format.euros(rows[ch].cost_per_sent, 3)}/envoi",
            )
            for ch in ordered_channels(rows)
        ],
        x_label="Coût (EUR)",
        empty_message="Aucun envoi, donc aucun coût, sur la période.",
    )


def _gain_chart(report: Report) -> Markup:
    costs = report.costs
    if not (costs.total or costs.gain):
        return charts.no_data("Coût et gain", "Ni coût ni vente sur la période.", width=HALF_WIDTH)
    return charts.bar_chart(
        width=HALF_WIDTH,
        title="Coût et gain",
        bars=[
            Bar("Coût des envois", costs.total, COST_COLOUR),
            Bar("Gain (marge sur ventes)", costs.gain, GAIN_COLOUR),
            Bar("Résultat (gain − coût)", costs.gain - costs.total, "#374151"),
        ],
        value_format=lambda v: fr_format.euros(v, 0),
    )


def _roi_text(report: Report) -> str:
    costs = report.costs
    if costs.roi is None or not costs.total:
        return "ROI non calculable : aucun coût sur la période."
    formula = (
        f"ROI = (gain − coût) / coût = ({fr_format.euros(costs.gain)} − "
        f"{fr_format.euros(costs.total)}) / {fr_format.euros(costs.total)} = "
        f"{fr_format.percent(costs.roi, 0)}"
    )
    back = fr_format.euros(costs.gain / costs.total)
    return f"{formula} : chaque euro dépensé a rapporté {back} de marge."


__all__ = ["FunnelView", "Page", "Tile", "page"]
