"""Bounce and complaint rates per campaign and channel, and the warnings they raise.

Mailbox providers' bulk-sender rules (Gmail, Yahoo: complaints under 0.3 %) and a
relay's reputation (hard bounces under 2 %) are judged per sender and campaign, so the
rates are per campaign and channel, over the rows sent: a delivery counts once for each
kind whatever the number of reports about it. Hard bounces are the rows with a
``bounced`` event (an email's hard bounce, a Twilio "undelivered" or "failed"); soft
bounces the rows with a ``soft_bounced`` event; complaints the rows with a
``complained`` event (bounces/apply.py writes them).

``[bounces] complaint_rate_warning`` and ``hard_bounce_rate_warning`` set the lines; the
report shows the warnings, and the daemon logs the same ones (``log_rate_warnings``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlmodel import Session

from network_anim.app import App
from network_anim.db.models import Delivery, Event, Message
from network_anim.reports.conversion import restrict
from network_anim.reports.figures import rate
from network_anim.reports.model import BounceRate, RateWarning
from network_anim.reports.scope import Scope, resolve_scope

log = logging.getLogger(__name__)

# Event type -> the count it feeds.
_KINDS = {"bounced": "hard_bounces", "soft_bounced": "soft_bounces", "complained": "complaints"}


def compute_bounce_rates(session: Session, scope: Scope) -> tuple[BounceRate, ...]:
    """One line per (campaign, channel) with sent rows in the scope."""
    sent = restrict(
        select(Message.campaign_id, Delivery.channel, func.count())
        .join(Message, Message.id == Delivery.message_id)  # type: ignore[arg-type]
        .where(Delivery.sent_at.is_not(None))  # type: ignore[union-attr]
        .group_by(Message.campaign_id, Delivery.channel),
        scope,
    )
    counts: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
    for campaign_id, channel, n in session.execute(sent):
        counts[(campaign_id, channel)]["sent"] = int(n)
    reported = restrict(
        select(
            Message.campaign_id,
            Delivery.channel,
            Event.type,
            func.count(func.distinct(Delivery.id)),
        )
        .join(Message, Message.id == Delivery.message_id)  # type: ignore[arg-type]
        .join(
            Event,
            and_(Event.delivery_id == Delivery.id, Event.type.in_(list(_KINDS))),  # type: ignore[attr-defined]
        )
        .where(Delivery.sent_at.is_not(None))  # type: ignore[union-attr]
        .group_by(Message.campaign_id, Delivery.channel, Event.type),
        scope,
    )
    for campaign_id, channel, type_, n in session.execute(reported):
        counts[(campaign_id, channel)][_KINDS[type_]] = int(n)
    lines = []
    for (campaign_id, channel), c in counts.items():
        campaign = scope.campaigns.get(campaign_id)
        if campaign is None or not c.get("sent"):
            continue
        sent_rows = c["sent"]
        hard, soft, complaints = (
            c.get(k, 0) for k in ("hard_bounces", "soft_bounces", "complaints")
        )
        lines.append(
            BounceRate(
                campaign=campaign,
                channel=channel,
                sent=sent_rows,
                hard_bounces=hard,
                soft_bounces=soft,
                complaints=complaints,
                hard_bounce_rate=rate(hard, sent_rows),
                soft_bounce_rate=rate(soft, sent_rows),
                complaint_rate=rate(complaints, sent_rows),
            )
        )
    return tuple(sorted(lines, key=lambda line: (line.campaign, line.channel)))


def rate_warnings(
    rates: tuple[BounceRate, ...], *, complaint_rate: float, hard_bounce_rate: float
) -> tuple[RateWarning, ...]:
    """The lines past a threshold (strictly above it), complaints first."""
    warnings = []
    for line in rates:
        if line.complaint_rate is not None and line.complaint_rate > complaint_rate:
            warnings.append(_warning(line, "complaint", line.complaint_rate, complaint_rate))
    for line in rates:
        if line.hard_bounce_rate is not None and line.hard_bounce_rate > hard_bounce_rate:
            warnings.append(_warning(line, "hard_bounce", line.hard_bounce_rate, hard_bounce_rate))
    return tuple(warnings)


def _warning(line: BounceRate, kind: str, value: float, threshold: float) -> RateWarning:
    count = line.complaints if kind == "complaint" else line.hard_bounces
    what = "complaint" if kind == "complaint" else "hard-bounce"
    setting = "complaint_rate_warning" if kind == "complaint" else "hard_bounce_rate_warning"
    message = (
        f"campaign {line.campaign}, {line.channel}: {what} rate {_pct(value)} "
        f"({count} of {line.sent} sent) is above {_pct(threshold)} "
        f"([bounces] {setting})"
    )
    return RateWarning(line.campaign, line.channel, kind, value, threshold, message)


def _pct(value: float) -> str:
    return f"{value * 100:.2f}".rstrip("0").rstrip(".") + " %"


def log_rate_warnings(
    app: App,
    *,
    since: datetime | None = None,
    already_logged: frozenset[tuple[str, str, str]] = frozenset(),
) -> tuple[RateWarning, ...]:
    """Log (WARNING) every campaign and channel past a rate threshold, over deliveries
    due since ``since`` (every delivery when None); returns them all. What the daemon's
    tick calls, with the same figures as the report; it passes the warnings it logged at
    its previous tick as ``already_logged`` (keys from ``warning_key``) so a lasting
    excess is logged once, and again only after it went back under."""
    scope = resolve_scope(app, campaign=None, start=since, end=None, by="channel")
    settings = app.config.bounces
    with Session(app.engine) as session:
        rates = compute_bounce_rates(session, scope)
    warnings = rate_warnings(
        rates,
        complaint_rate=settings.complaint_rate_warning,
        hard_bounce_rate=settings.hard_bounce_rate_warning,
    )
    for warning in warnings:
        if warning_key(warning) not in already_logged:
            log.warning("%s", warning.message)
    return warnings


def warning_key(warning: RateWarning) -> tuple[str, str, str]:
    return (warning.campaign, warning.channel, warning.kind)


__all__ = ["compute_bounce_rates", "log_rate_warnings", "rate_warnings", "warning_key"]
