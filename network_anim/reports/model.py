"""What a report is: frozen dataclasses, computed once by :mod:`build`, rendered many ways.

The terminal tables (:mod:`terminal`), the JSON document (:meth:`Report.to_json`, schema in
``docs/report-json.md``) and the HTML page (:mod:`html`) all read these objects and never
query the database themselves, so every view shows the same figures.

Conventions: counts are ints; amounts are EUR rounded to cents; rates are fractions
(0.55, not 55) rounded to 4 places and ``None`` when their denominator is 0 (shown "–");
times are aware UTC datetimes, days are dates in the [engine] time zone.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from datetime import date, datetime
from typing import Any

from network_anim.reports.rsvp import RsvpFunnel

# Bumped on any change a JSON consumer would notice (renamed/removed field, new meaning).
SCHEMA_VERSION = 1

# The --by dimensions of the funnel.
GROUPINGS: tuple[str, ...] = ("channel", "segment", "company", "role")
# The group name of the funnel rows when grouping by channel (the channel is the group),
# and of the per-channel totals whatever the grouping.
ALL_GROUPS = "all"
# The segment of a company that has no RFM score yet.
UNSCORED = "unscored"

# How every figure is counted; printed under the tables and carried in the JSON, so a
# number is never read without its definition.
DEFINITIONS: dict[str, str] = {
    "period": "A delivery belongs to the report when its due_at is in [from, to); what "
    "happens to it afterwards (send, provider status, open, click, read, the sales that "
    "follow) counts with it whatever its date. The timeline dates sends by sent_at and "
    "opens by the first open's occurred_at, in the [engine] time zone.",
    "planned": "Outbox rows (any status) of the period, fallback rows included.",
    "sent": "Planned rows that reached the provider (sent_at set), even if a later "
    "provider status failed them.",
    "delivered": "SMS: sent rows with a Twilio 'delivered' status event. Email: sent rows "
    "minus those with a 'bounced' or 'soft_bounced' event. Intranet and flash posts: published (sent) rows. "
    "Print: letters exported to the mail house (sent rows).",
    "opened": "Delivered rows with an 'opened' event from a human; rows opened by a "
    "machine (mail prefetchers, security scanners: events flagged machine) are counted "
    "apart and in no rate. A click does not count as an open. Tracked on email only.",
    "clicked": "Delivered rows with a 'clicked' event from a human (not on print).",
    "read": "Intranet and flash posts: delivered rows whose post (the flash post, or the "
    "message's page) the contact read on the portal (PostRead).",
    "rates": "delivery rate = delivered / sent; open rate = human opened / delivered; "
    "click rate = clicked / delivered; read rate = read / delivered; conversion rate = "
    "converted / reached contacts. None (shown '–') when the denominator is 0 or the "
    "channel does not track the event.",
    "reached": "A contact with at least one sent row of the campaign in the period.",
    "converted": "A reached contact with an approved sale dated within "
    "[reports] conversion_window_days of the campaign's first sent row to them. A contact "
    "reached by two campaigns converts for each of them, but once in the overall total; "
    "in the funnel a contact converts on every channel that reached them.",
    "comparison": "The campaign's audience (as the config defines it now; for a campaign "
    "the config does not hold, such as a broadcast, every contact it was planned for) "
    "never reached by it, over the window starting at the campaign's first send; when "
    "the whole audience was reached, the same contacts over the window just before their "
    "first delivery (baseline period). uplift_points = reached rate - comparison rate; "
    "uplift = uplift_points / comparison rate.",
    "challenges": "Whole challenge, not cut to the report period: the challenge engine's "
    "KPIs (participation rate = companies registered / companies targeted) and top of "
    "the leaderboard.",
    "links": "Clicks per link: the 'clicked' events of the period's deliveries on each "
    "outside link of a message (the links table, stored when the message was rendered), "
    "by campaign and message (step and occurrence). clicks: human clicks; people: "
    "distinct contacts among them; machine_clicks: link scanners and previews, in no "
    "rate. A click from an email sent before links were stored counts under its URL "
    "with link_id null.",
    "bounces": "Per campaign and channel, over its sent rows: hard bounces = rows with a "
    "'bounced' event (an email's hard bounce, soft_to_hard soft bounces of one address, a "
    "Twilio 'undelivered'/'failed'); soft bounces = rows with a 'soft_bounced' event (each "
    "retried once); complaints = rows with a 'complained' event (spam reports). A row "
    "counts once per kind. warnings: complaint rate above [bounces] "
    "complaint_rate_warning, hard-bounce rate above hard_bounce_rate_warning.",
    "cost": "Sent rows only: Delivery.cost when the provider priced it (Twilio), else the "
    "estimate from [channels.*].cost made when the row was planned (print: per letter).",
    "roi": "ROI = (gain - cost) / cost, None when the cost is 0; the gain is defined in "
    "gain_definition.",
}


@dataclass(frozen=True)
class Period:
    """[start, end); ``None`` for an open end."""

    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class Filters:
    campaign: str | None
    by: str


@dataclass(frozen=True)
class FunnelRow:
    """One (group, channel) line of the funnel. ``group`` is the value of the --by
    dimension (segment, company "external id - name", role), or "all"."""

    group: str
    channel: str
    planned: int
    sent: int
    delivered: int
    opened_human: int
    opened_machine: int
    clicked: int
    read: int
    reached_contacts: int
    converted: int
    cost: float
    delivery_rate: float | None
    open_rate: float | None
    click_rate: float | None
    read_rate: float | None
    conversion_rate: float | None


@dataclass(frozen=True)
class TimelinePoint:
    """One day and channel: rows sent and opens (by occurred_at) that day."""

    day: date
    channel: str
    sent: int
    opened_human: int
    opened_machine: int


@dataclass(frozen=True)
class MixCell:
    """Sent rows for one RFM segment on one channel."""

    segment: str
    channel: str
    sent: int


@dataclass(frozen=True)
class Attainment:
    """Challenge points from sales / final target, for a participant or a team."""

    subject: str
    ratio: float


@dataclass(frozen=True)
class LeaderEntry:
    rank: int
    name: str
    company: str | None
    points: int | float


@dataclass(frozen=True)
class ChallengeSummary:
    key: str
    name: str
    companies_targeted: int
    companies_registered: int
    participants: int
    active_participants: int
    participation_rate: float | None  # companies registered / companies targeted
    active_rate: float | None  # active participants / participants
    attainment: tuple[Attainment, ...]
    team_attainment: tuple[Attainment, ...]
    points_issued: int
    points_redeemed: int
    sales_during: float
    sales_baseline: float
    sales_uplift: float | None
    leaderboard: tuple[LeaderEntry, ...]


@dataclass(frozen=True)
class ConversionGroup:
    """A set of contacts and what they bought within the window."""

    label: str
    contacts: int
    converters: int
    sales_amount: float
    rate: float | None  # converters / contacts
    average_order_value: float | None  # sales_amount / number of sales


@dataclass(frozen=True)
class CampaignConversion:
    campaign: str
    reached: ConversionGroup
    comparison: ConversionGroup | None
    comparison_kind: str  # "unreached" | "baseline" | "none"
    uplift_points: float | None  # reached rate - comparison rate
    uplift: float | None  # (reached rate - comparison rate) / comparison rate


@dataclass(frozen=True)
class Conversion:
    window_days: int
    campaigns: tuple[CampaignConversion, ...]
    overall: ConversionGroup  # every reached contact once
    incremental_sales: float  # sum over campaigns of reached sales beyond the comparison's


@dataclass(frozen=True)
class LinkClicks:
    """The clicks on one outside link of one message."""

    campaign: str
    step: str
    occurrence: str
    link_id: int | None  # None: clicks from before stored links, counted by URL
    url: str
    clicks: int  # human clicks
    people: int  # distinct contacts who clicked (human)
    machine_clicks: int


@dataclass(frozen=True)
class BounceRate:
    """Bounces and complaints of one campaign on one channel, over its sent rows."""

    campaign: str
    channel: str
    sent: int
    hard_bounces: int
    soft_bounces: int
    complaints: int
    hard_bounce_rate: float | None  # hard_bounces / sent
    soft_bounce_rate: float | None
    complaint_rate: float | None  # complaints / sent


@dataclass(frozen=True)
class RateWarning:
    """A campaign and channel past a [bounces] threshold."""

    campaign: str
    channel: str
    kind: str  # "complaint" | "hard_bounce"
    rate: float
    threshold: float
    message: str


@dataclass(frozen=True)
class ChannelCost:
    channel: str
    sent: int
    cost: float
    cost_per_sent: float | None


@dataclass(frozen=True)
class Costs:
    channels: tuple[ChannelCost, ...]
    total: float
    converters: int
    cost_per_conversion: float | None
    gain: float
    roi: float | None


@dataclass(frozen=True)
class Report:
    schema_version: int
    generated_at: datetime
    timezone: str
    period: Period
    filters: Filters
    campaigns: tuple[str, ...]  # campaign keys covered
    gain_definition: str
    definitions: dict[str, str]
    funnel: tuple[FunnelRow, ...]  # per group and channel
    funnel_totals: tuple[FunnelRow, ...]  # per channel, group "all"
    timeline: tuple[TimelinePoint, ...]
    channel_mix: tuple[MixCell, ...]
    challenges: tuple[ChallengeSummary, ...]
    conversion: Conversion
    costs: Costs
    # Clicks per outside link, by campaign and message, most clicked first in each.
    links: tuple[LinkClicks, ...] = ()
    # Bounce and complaint rates per campaign and channel, and the thresholds passed.
    bounce_rates: tuple[BounceRate, ...] = ()
    warnings: tuple[RateWarning, ...] = ()
    # Events covered: invited → answered → yes → attended per invitation channel.
    rsvp: tuple[RsvpFunnel, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON types (schema: docs/report-json.md)."""
        result = _plain(self)
        assert isinstance(result, dict)
        return result


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value
