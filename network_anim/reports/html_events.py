"""The events section of the HTML report: each event's RSVP funnel, invited → answered →
yes → attended, as a chart of all channels and a table per channel of the invitation
(pure: a :class:`RsvpFunnel` in, a view out)."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from network_anim.reports import charts, fr_format
from network_anim.reports.figures import rate
from network_anim.reports.html_labels import channel_label
from network_anim.reports.html_tables import Table
from network_anim.reports.rsvp import RsvpFunnel, RsvpRow

EVENT_COLOUR = "#7B4B94"
STAGE_LABELS = (
    ("invited", "Invités"),
    ("answered", "Ont répondu"),
    ("yes", "Oui"),
    ("attended", "Présents"),
)


@dataclass(frozen=True)
class EventView:
    key: str
    name: str
    facts: tuple[tuple[str, str], ...]
    funnel: Markup
    table: Table


def event_view(funnel: RsvpFunnel) -> EventView:
    return EventView(
        key=funnel.event,
        name=funnel.name,
        facts=_facts(funnel),
        funnel=charts.funnel_chart(
            title=f"Entonnoir des réponses — {funnel.name}",
            stages=[(label, getattr(funnel.totals, stage)) for stage, label in STAGE_LABELS],
            colour=EVENT_COLOUR,
            empty_message=f"Aucune invitation à {funnel.name} envoyée pour l'instant.",
        ),
        table=_table(funnel),
    )


def _facts(funnel: RsvpFunnel) -> tuple[tuple[str, str], ...]:
    n, totals = fr_format.integer, funnel.totals
    return (
        ("Places confirmées", f"{n(funnel.seats_confirmed)} / {n(funnel.capacity)}"),
        ("Liste d'attente", n(funnel.waiting)),
        ("Taux de réponse", fr_format.percent(rate(totals.answered, totals.invited), 0)),
        ("Présents parmi les oui", fr_format.percent(rate(totals.attended, totals.yes), 0)),
    )


def _table(funnel: RsvpFunnel) -> Table:
    def line(row: RsvpRow, name: str) -> tuple[str, ...]:
        counts = [fr_format.integer(getattr(row, stage)) for stage, _ in STAGE_LABELS]
        return (name, *counts, fr_format.percent(rate(row.answered, row.invited), 0))

    rows = [line(r, channel_label(r.channel)) for r in funnel.rows]
    if funnel.rows:
        rows.append(line(funnel.totals, "Tous canaux"))
    headers = ("Canal de l'invitation", *(label for _, label in STAGE_LABELS), "Taux de réponse")
    return Table(
        key=f"table-rsvp-{funnel.event}",
        caption=f"Réponses à l'invitation par canal — {funnel.name}",
        headers=headers,
        rows=tuple(rows),
        classes=("key", *("num",) * (len(headers) - 1)),
        empty="Aucune invitation envoyée.",
    )
