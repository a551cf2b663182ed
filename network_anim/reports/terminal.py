"""The report as rich tables on a terminal: the funnel, conversion, challenges, costs."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from network_anim.reports.model import (
    BounceRate,
    ChallengeSummary,
    ConversionGroup,
    FunnelRow,
    MixCell,
    Report,
)
from network_anim.reports.rsvp import rsvp_table

NONE = "–"


def percent(value: float | None) -> str:
    return NONE if value is None else f"{value * 100:.1f} %"


def money(value: float | None) -> str:
    return NONE if value is None else f"{value:,.2f} EUR"


def ratio(value: float | None) -> str:
    """ROI and uplifts: a signed multiple (ROI 1.5 = gain 2.5 times the cost)."""
    return NONE if value is None else f"{value:+.2f}"


def with_rate(count: int, value: float | None) -> str:
    return f"{count} ({percent(value)})" if value is not None else str(count)


def render_terminal(report: Report, console: Console) -> None:
    console.print(_heading(report), highlight=False)
    console.print(_funnel_table(report, report.funnel, grouped=report.filters.by != "channel"))
    if report.filters.by != "channel" and report.funnel_totals:
        console.print(_funnel_table(report, report.funnel_totals, grouped=False, title="all"))
    if report.filters.by == "segment" and report.channel_mix:
        console.print(_mix_table(report.channel_mix))
    if report.bounce_rates:
        console.print(_bounce_table(report.bounce_rates))
    for warning in report.warnings:
        console.print(
            f"Warning: {warning.message}", style="bold red", highlight=False, markup=False
        )
    console.print(_conversion_table(report))
    for challenge in report.challenges:
        console.print(_challenge_table(challenge))
    for funnel in report.rsvp:
        console.print(rsvp_table(funnel))
    if report.links:
        console.print(_links_table(report))
    console.print(_cost_table(report))
    console.print(f"Gain: {report.gain_definition}", highlight=False, markup=False)
    console.print(
        "Opens: human opens only in the open rate; machine opens (prefetchers, scanners) "
        'shown apart. Definitions of every figure: --json, "definitions".',
        highlight=False,
        style="dim",
    )


def _heading(report: Report) -> str:
    period = report.period
    start = period.start.isoformat() if period.start else "the beginning"
    end = period.end.isoformat() if period.end else "now"
    what = report.filters.campaign or "every campaign"
    return (
        f"[bold]Report[/] {what}, deliveries due from {start} to {end} "
        f"({report.timezone}), funnel by {report.filters.by}"
    )


def _funnel_table(
    report: Report, rows: Iterable[FunnelRow], *, grouped: bool, title: str | None = None
) -> Table:
    table = Table(title=f"Funnel{f' ({title})' if title else ''}", title_justify="left")
    if grouped:
        table.add_column(report.filters.by)
    for name in ("channel", "planned", "sent", "delivered", "opened (human)"):
        table.add_column(name, justify="left" if name == "channel" else "right")
    for name in ("machine opens", "clicked", "read", "reached", "converted", "cost"):
        table.add_column(name, justify="right")
    for row in rows:
        cells = [
            row.channel,
            str(row.planned),
            str(row.sent),
            with_rate(row.delivered, row.delivery_rate),
            with_rate(row.opened_human, row.open_rate),
            str(row.opened_machine),
            with_rate(row.clicked, row.click_rate),
            with_rate(row.read, row.read_rate),
            str(row.reached_contacts),
            with_rate(row.converted, row.conversion_rate),
            money(row.cost),
        ]
        table.add_row(*([row.group] if grouped else []), *cells)
    return table


def _bounce_table(rates: tuple[BounceRate, ...]) -> Table:
    table = Table(title="Bounces and complaints (of the rows sent)", title_justify="left")
    table.add_column("campaign")
    table.add_column("channel")
    for name in ("sent", "hard bounces", "soft bounces", "complaints"):
        table.add_column(name, justify="right")
    for line in rates:
        table.add_row(
            escape(line.campaign),
            line.channel,
            str(line.sent),
            with_rate(line.hard_bounces, line.hard_bounce_rate),
            with_rate(line.soft_bounces, line.soft_bounce_rate),
            with_rate(line.complaints, line.complaint_rate),
        )
    return table


def _mix_table(cells: tuple[MixCell, ...]) -> Table:
    channels = sorted({cell.channel for cell in cells})
    segments = sorted({cell.segment for cell in cells})
    counts = {(cell.segment, cell.channel): cell.sent for cell in cells}
    table = Table(title="Channel mix (sent by segment)", title_justify="left")
    table.add_column("segment")
    for channel in channels:
        table.add_column(channel, justify="right")
    for segment in segments:
        table.add_row(segment, *(str(counts.get((segment, c), 0)) for c in channels))
    return table


def _group_cells(group: ConversionGroup | None) -> list[str]:
    if group is None:
        return [NONE, NONE, NONE, NONE]
    return [
        str(group.contacts),
        str(group.converters),
        percent(group.rate),
        money(group.sales_amount),
    ]


def _conversion_table(report: Report) -> Table:
    conversion = report.conversion
    table = Table(
        title=f"Conversion into sales (approved sales within {conversion.window_days} days)",
        title_justify="left",
    )
    table.add_column("campaign")
    for name in ("reached", "converted", "rate", "sales"):
        table.add_column(name, justify="right")
    table.add_column("compared with")
    for name in ("contacts", "converted", "rate", "sales", "uplift (pts)", "uplift"):
        table.add_column(name, justify="right")
    silent = [item.campaign for item in conversion.campaigns if not item.reached.contacts]
    for item in conversion.campaigns:
        if not item.reached.contacts and len(conversion.campaigns) > 1:
            continue
        comparison = item.comparison.label if item.comparison else "no comparison"
        table.add_row(
            item.campaign,
            *_group_cells(item.reached),
            comparison,
            *_group_cells(item.comparison),
            NONE if item.uplift_points is None else f"{item.uplift_points * 100:+.1f}",
            NONE if item.uplift is None else f"{item.uplift * 100:+.1f} %",
        )
    overall = conversion.overall
    table.add_row(
        "[bold]overall[/] (each contact once)", *_group_cells(overall), "", "", "", "", "", "", ""
    )
    if silent and len(conversion.campaigns) > 1:
        table.caption = f"Not shown, no contact reached in the period: {', '.join(silent)}"
        table.caption_justify = "left"
    return table


def _challenge_table(challenge: ChallengeSummary) -> Table:
    table = Table(title=f"Challenge {challenge.key}: {challenge.name}", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = (
        (
            "companies registered / targeted",
            f"{challenge.companies_registered} / {challenge.companies_targeted} "
            f"({percent(challenge.participation_rate)})",
        ),
        ("participants", str(challenge.participants)),
        (
            "active participants (with sales points)",
            with_rate(challenge.active_participants, challenge.active_rate),
        ),
        ("points issued", str(challenge.points_issued)),
        ("points redeemed", str(challenge.points_redeemed)),
        ("sales during the challenge", money(challenge.sales_during)),
        ("sales, baseline period before", money(challenge.sales_baseline)),
        ("sales uplift", percent(challenge.sales_uplift)),
        (
            "objective attained (participants at 100 %+)",
            f"{sum(a.ratio >= 1 for a in challenge.attainment)} / {len(challenge.attainment)}",
        ),
    )
    for name, value in rows:
        table.add_row(name, value)
    for entry in challenge.leaderboard:
        company = f" ({entry.company})" if entry.company else ""
        table.add_row(f"#{entry.rank} {entry.name}{company}", f"{entry.points} pts")
    return table


def _links_table(report: Report) -> Table:
    table = Table(title="Clicks per link (outside links of each message)", title_justify="left")
    table.add_column("message")
    table.add_column("link", overflow="fold")
    table.add_column("clicks", justify="right")
    table.add_column("people", justify="right")
    table.add_column("machine clicks", justify="right")
    for row in report.links:
        table.add_row(
            escape(f"{row.campaign} {row.step} {row.occurrence}"),
            escape(row.url),
            str(row.clicks),
            str(row.people),
            str(row.machine_clicks),
        )
    return table


def _cost_table(report: Report) -> Table:
    costs = report.costs
    table = Table(title="Costs and ROI", title_justify="left")
    table.add_column("channel")
    table.add_column("sent", justify="right")
    table.add_column("cost", justify="right")
    table.add_column("per message", justify="right")
    for item in costs.channels:
        per = NONE if item.cost_per_sent is None else f"{item.cost_per_sent:.4f} EUR"
        table.add_row(item.channel, str(item.sent), money(item.cost), per)
    table.add_row("[bold]total[/]", "", money(costs.total), "")
    table.add_row(
        "cost per conversion", str(costs.converters), money(costs.cost_per_conversion), ""
    )
    table.add_row("gain", "", money(costs.gain), "")
    table.add_row("ROI = (gain - cost) / cost", "", ratio(costs.roi), "")
    return table
