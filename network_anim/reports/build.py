"""Compute a whole :class:`Report` from the database: the one entry point of the package.

Example::

    from network_anim.reports.build import build_report

    report = build_report(app, campaign="newsletter", by="segment")
    print(report.to_json()["costs"]["roi"])
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from network_anim.app import App
from network_anim.reports.bounce_rates import compute_bounce_rates, rate_warnings
from network_anim.reports.challenge_summary import challenge_summaries
from network_anim.reports.conversion import compute_conversion
from network_anim.reports.costs import compute_costs, gain_definition
from network_anim.reports.funnel import compute_funnel
from network_anim.reports.links import compute_link_clicks
from network_anim.reports.model import DEFINITIONS, SCHEMA_VERSION, Filters, Period, Report
from network_anim.reports.rsvp import compute_rsvp
from network_anim.reports.scope import resolve_scope


def build_report(
    app: App,
    *,
    campaign: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    by: str = "channel",
) -> Report:
    """The report of deliveries due in [start, end) (open ends when ``None``), for one
    campaign key or challenge id or for everything, with the funnel grouped ``by``
    channel, segment, company or role. An unknown campaign or grouping raises
    :class:`~network_anim.errors.UserError`."""
    scope = resolve_scope(app, campaign=campaign, start=start, end=end, by=by)
    settings = app.config.reports
    timezone = app.config.engine.timezone
    with Session(app.engine) as session:
        converted = compute_conversion(app, session, scope)
        funnel = compute_funnel(
            session, scope, converted.converted_pairs, timezone, app.definitions
        )
        links = compute_link_clicks(session, scope, app.config.engine.base_url)
        bounce_rates = compute_bounce_rates(session, scope)
        rsvp = compute_rsvp(session, tuple(app.config.event(k) for k in scope.event_keys))
    thresholds = app.config.bounces
    return Report(
        schema_version=SCHEMA_VERSION,
        generated_at=app.clock.now(),
        timezone=timezone,
        period=Period(start=start, end=end),
        filters=Filters(campaign=campaign, by=by),
        campaigns=tuple(sorted(scope.campaigns.values())),
        gain_definition=gain_definition(settings),
        definitions=dict(DEFINITIONS),
        funnel=funnel.rows,
        funnel_totals=funnel.totals,
        timeline=funnel.timeline,
        channel_mix=funnel.mix,
        challenges=challenge_summaries(app, scope.challenge_keys),
        conversion=converted.conversion,
        costs=compute_costs(settings, funnel.totals, funnel.raw_costs, converted.conversion),
        links=links,
        bounce_rates=bounce_rates,
        warnings=rate_warnings(
            bounce_rates,
            complaint_rate=thresholds.complaint_rate_warning,
            hard_bounce_rate=thresholds.hard_bounce_rate_warning,
        ),
        rsvp=rsvp,
    )
