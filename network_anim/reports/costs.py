"""Cost per channel, cost per conversion, the gain and ROI = (gain - cost) / cost."""

from __future__ import annotations

from network_anim.config.settings import ReportSettings
from network_anim.reports.figures import amount, rate
from network_anim.reports.model import ChannelCost, Conversion, Costs, FunnelRow


def gain_definition(settings: ReportSettings) -> str:
    """The sentence printed with ROI: what the gain is, with the config's figures."""
    margin = f"{settings.margin_rate:.0%}"
    window = settings.conversion_window_days
    if settings.gain_basis == "incremental":
        return (
            f"gain = {margin} margin x incremental sales: what contacts reached by each "
            f"campaign bought (approved sales within {window} days of its first delivery) "
            "beyond what its comparison group's sales per contact predict; campaigns "
            "without a comparison group add nothing; a contact reached by two campaigns "
            "counts for each ([reports] margin_rate, gain_basis)"
        )
    return (
        f"gain = {margin} margin x attributed sales: approved sales of reached contacts "
        f"within {window} days of a campaign's first delivery to them, each sale counted "
        "once ([reports] margin_rate, gain_basis)"
    )


def compute_costs(
    settings: ReportSettings,
    totals: tuple[FunnelRow, ...],
    raw_costs: dict[str, float],
    conversion: Conversion,
) -> Costs:
    """``raw_costs``: unrounded cost per channel, what the ratios are computed from."""
    channels = tuple(
        ChannelCost(
            channel=row.channel,
            sent=row.sent,
            cost=row.cost,
            cost_per_sent=_unit(raw_costs.get(row.channel, 0.0), row.sent),
        )
        for row in totals
    )
    total = sum(raw_costs.values())
    sales = (
        conversion.incremental_sales
        if settings.gain_basis == "incremental"
        else conversion.overall.sales_amount
    )
    gain = settings.margin_rate * sales
    converters = conversion.overall.converters
    return Costs(
        channels=channels,
        total=amount(total),
        converters=converters,
        cost_per_conversion=_per(total, converters),
        gain=amount(gain),
        roi=rate(gain - total, total),
    )


def _per(total: float, count: int) -> float | None:
    return amount(total / count) if count else None


def _unit(total: float, count: int) -> float | None:
    # An SMS costs a few cents: four places keep 0.0725 from reading 0.07.
    return round(total / count, 4) if count else None
