from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import click

from network_anim.cli.common import app_options, console, open_app
from network_anim.cli.message_options import message_options
from network_anim.domain import Level, MessageKind, Urgency


def _parse_vars(values: tuple[str, ...]) -> dict[str, str]:
    from network_anim.errors import UserError

    parsed: dict[str, str] = {}
    bad = []
    for value in values:
        name, sep, content = value.partition("=")
        if not sep or not name.strip().isidentifier():
            bad.append(f"--var {value!r}: write NAME=VALUE with NAME a plain identifier")
            continue
        parsed[name.strip()] = content
    if bad:
        raise UserError("bad --var option", bad)
    return parsed


@click.command()
@click.option(
    "--audience", required=True, help="Audience name from [[audiences]] ('all' = everyone)."
)
@click.option(
    "--urgency",
    required=True,
    type=click.Choice([u.value for u in Urgency]),
    help="How fast and loud: the router picks each contact's channels from it.",
)
@click.option("--template", required=True, help="Template name under templates/<channel>/.")
@message_options()
@click.option(
    "--attach",
    "attachments",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="A document to download from the post (repeatable).",
)
@click.option(
    "--id", "occurrence", default=None, help="Broadcast id: the same id never sends twice."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Count, estimate cost, show one sample per channel; send nothing.",
)
@click.option("--explain", is_flag=True, help="Show each contact's channels and why.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary on stdout.")
@app_options
def broadcast(
    audience: str,
    urgency: str,
    template: str,
    variables: tuple[str, ...],
    kind: str,
    level: str,
    attachments: tuple[Path, ...],
    occurrence: str | None,
    dry_run: bool,
    explain: bool,
    as_json: bool,
    config_path: Path | None,
    db_url: str | None,
) -> None:
    """Send a one-off message to an audience, each contact on the channel that fits.

    Every delivery is written to the outbox first, keyed on (broadcast id, contact,
    channel): running the same command again with the same --id sends nothing new.
    Deliveries deferred to a legal send window wait in the outbox for `netanim dispatch`
    (or the daemon).

    \b
    Examples:
      netanim broadcast --audience all --urgency info --template welcome \\
          --id welcome-2026 --dry-run --explain
      netanim broadcast --audience sellers --urgency urgent --template stock-alert \\
          --var product="Routeur X200" --var quantity=40 --id stock-0412
    """
    from sqlmodel import Session

    from network_anim.compose.attachments import check_files
    from network_anim.config.settings import Audience
    from network_anim.engine.checks import template_problems
    from network_anim.errors import UserError
    from network_anim.planning.messages import broadcast_campaign, provided_variables, step_request

    app = open_app(config_path, db_url)
    vars_ = _parse_vars(variables)
    audience_cfg = (
        Audience(name="all", description="every active contact")
        if audience == "all" and audience not in {a.name for a in app.config.audiences}
        else app.config.audience(audience)
    )
    campaign = broadcast_campaign(
        audience_cfg,
        template=template,
        urgency=Urgency(urgency),
        kind=MessageKind(kind),
        level=Level(level),
        variables=vars_,
        attachments=tuple(path.resolve() for path in attachments),
    )
    problems = template_problems(
        app.config,
        app.templates,
        template=template,
        urgency=Urgency(urgency),
        kind=MessageKind(kind),
        # An audience of a challenge's participants also gets their standings.
        variables=provided_variables(app.config, app.variables, campaign),
        today=app.clock.now().date(),
    )
    problems += check_files(attachments)
    if problems:
        raise UserError(f"template {template!r} cannot be sent", problems)
    occurrence = occurrence or app.clock.now().strftime("%Y%m%d-%H%M%S")
    with Session(app.engine) as session:
        request = step_request(
            app,
            session,
            campaign,
            campaign.steps[0],
            occurrence=occurrence,
            due_at=None,
            audience=audience_cfg,
        )
    plan = _plan_with_progress(app, request, dry_run=dry_run, explain=explain, quiet=as_json)
    if dry_run:
        _report_dry_run(plan, occurrence, as_json)
        return
    from network_anim.outbox.sending import send_due

    stats = _send_with_progress(app, plan, send_due, quiet=as_json)
    _report_run(app, plan, stats, occurrence, as_json, explain)


def _plan_with_progress(
    app: Any, request: Any, *, dry_run: bool, explain: bool, quiet: bool
) -> Any:
    from rich.progress import Progress
    from sqlmodel import Session

    from network_anim.network.audience import count_audience
    from network_anim.planning.planner import plan_message

    with Session(app.engine) as session:
        total = count_audience(
            session, request.audience, now=app.clock.now(), min_level=request.level
        )
    with Progress(console=console, transient=True, disable=quiet) as progress:
        task = progress.add_task("Routing and rendering", total=total)
        return plan_message(
            app,
            request,
            dry_run=dry_run,
            explain=explain,
            progress=lambda n: progress.advance(task, n),
        )


def _send_with_progress(app: Any, plan: Any, send_due: Any, *, quiet: bool) -> Any:
    from rich.progress import Progress

    from network_anim.planning.fallbacks import drain_with_fallbacks

    due_now = sum(plan.new_rows.values()) - sum(plan.deferred.values())
    with Progress(console=console, transient=True, disable=quiet) as progress:
        task = progress.add_task("Sending", total=max(due_now, 1))
        return asyncio.run(
            send_due(
                app,
                message_id=plan.message_id,
                on_progress=lambda n: progress.advance(task, n),
                drive=drain_with_fallbacks,
            )
        )


def _report_dry_run(plan: Any, occurrence: str, as_json: bool) -> None:
    import json

    from rich.panel import Panel
    from rich.table import Table

    if as_json:
        click.echo(json.dumps(_summary(plan, occurrence, deferred=dict(plan.deferred))))
        return
    table = Table(title=f"Broadcast {occurrence} — dry run ({plan.audience_size} contacts)")
    for column in ("channel", "deliveries", "deferred to window", "estimated cost (EUR)"):
        table.add_column(column, justify="left" if column == "channel" else "right")
    for channel in sorted(plan.new_rows):
        table.add_row(
            channel,
            str(plan.new_rows[channel]),
            str(plan.deferred[channel]),
            f"{plan.cost[channel]:.2f}",
        )
    table.add_row(
        "total",
        str(sum(plan.new_rows.values())),
        str(sum(plan.deferred.values())),
        f"{plan.total_cost:.2f}",
    )
    console.print(table)
    _print_unreachable(plan)
    _print_explanations(plan)
    for channel, sample in sorted(plan.samples.items()):
        body = (f"Subject: {sample.subject}\n\n" if sample.subject else "") + sample.text
        console.print(Panel(body.strip(), title=f"sample: {channel}", expand=False), markup=False)


def _summary(
    plan: Any,
    occurrence: str,
    *,
    deferred: dict[str, int],
    stats: Any = None,
    explain: bool = True,
) -> dict[str, Any]:
    """The --json summary; a dry run (no ``stats``) and a real run give the same keys, so
    a script reads both alike. ``deferred``: rows waiting for a later time (a legal
    window, quiet hours), by channel."""
    outcomes: dict[str, dict[str, int]] = {}
    for (channel, outcome), count in (stats.outcomes if stats else {}).items():
        outcomes.setdefault(channel, {})[outcome] = count
    return {
        "dry_run": stats is None,
        "id": occurrence,
        "message_id": plan.message_id if stats else None,
        "audience": plan.audience_size,
        "planned": dict(plan.new_rows),
        "deferred": deferred,
        "already_planned": plan.already_planned,
        "unreachable": len(plan.unreachable),
        "cost": {k: round(v, 4) for k, v in plan.cost.items()},
        "total_cost": round(plan.total_cost, 4),
        "outcomes": outcomes,
        "fallbacks": dict(stats.fallbacks) if stats else {},
        "fallbacks_held": dict(stats.fallbacks_held) if stats else {},
        "explain": _explain_json(plan) if explain else [],
    }


def _report_run(
    app: Any, plan: Any, stats: Any, occurrence: str, as_json: bool, explain: bool
) -> None:
    import json

    from rich.table import Table

    remaining = _pending_by_channel(app, plan.message_id)
    outcomes: dict[str, Counter[str]] = {}
    for (channel, outcome), count in stats.outcomes.items():
        outcomes.setdefault(channel, Counter())[outcome] += count
    channels = sorted(set(plan.new_rows) | set(outcomes) | set(remaining))
    if as_json:
        summary = _summary(plan, occurrence, deferred=remaining, stats=stats, explain=explain)
        click.echo(json.dumps(summary))
        return
    table = Table(title=f"Broadcast {occurrence} ({plan.audience_size} contacts)")
    for column in ("channel", "planned now", "sent", "failed", "deferred", "unknown", "opted out"):
        table.add_column(column, justify="left" if column == "channel" else "right")
    for channel in channels:
        c = outcomes.get(channel, Counter())
        table.add_row(
            channel,
            str(plan.new_rows.get(channel, 0)),
            str(c["sent"]),
            str(c["failed"] + c["dead"]),
            str(remaining.get(channel, 0)),
            str(c["unknown"]),
            str(c["opted_out"]),
        )
    console.print(table)
    if plan.already_planned and not sum(plan.new_rows.values()):
        console.print(f"broadcast {occurrence} was already planned: nothing new to send")
    if stats.fallbacks:
        moved = ", ".join(f"{n} to {ch}" for ch, n in sorted(stats.fallbacks.items()))
        console.print(f"permanent failures moved to the next channel: {moved}")
    if stats.fallbacks_held:
        kept = ", ".join(f"{n} to {ch}" for ch, n in sorted(stats.fallbacks_held.items()))
        console.print(
            f"fallbacks held (frequency cap, no channel left): {kept}; "
            "`netanim outbox --status failed` says why"
        )
    if remaining:
        console.print(
            f"{sum(remaining.values())} deliveries wait in the outbox (legal window, quiet hours or "
            "retry): `netanim dispatch` or the daemon sends them when due"
        )
    _print_unreachable(plan)
    if explain:
        _print_explanations(plan)


def _pending_by_channel(app: Any, message_id: int | None) -> dict[str, int]:
    from sqlalchemy import func, select

    from network_anim.db.models import Delivery
    from network_anim.domain import DeliveryStatus

    with app.engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.channel, func.count())
            .where(
                Delivery.message_id == message_id, Delivery.status == DeliveryStatus.PENDING.value
            )
            .group_by(Delivery.channel)
        )
        return {channel: int(count) for channel, count in rows}


def _print_unreachable(plan: Any) -> None:
    if not plan.unreachable:
        return
    console.print(f"[yellow]{len(plan.unreachable)} contact(s) unreachable[/] (nothing planned):")
    for contact, why in plan.unreachable[:20]:
        console.print(f"  {contact}: {why}", markup=False)
    if len(plan.unreachable) > 20:
        console.print(f"  ... and {len(plan.unreachable) - 20} more (--json lists them all)")


def _print_explanations(plan: Any) -> None:
    from rich.table import Table

    if not plan.explanations:
        return
    table = Table(title="Why each contact gets each channel", show_lines=True)
    table.add_column("contact")
    table.add_column("channels")
    table.add_column("reasons")
    for item in plan.explanations:
        routing = item.routing
        table.add_row(
            f"{item.contact} {item.name}",
            ", ".join(routing.channels) or "—",
            routing.explain(),
        )
    console.print(table)


def _explain_json(plan: Any) -> list[dict[str, Any]]:
    return [
        {
            "contact": item.contact,
            "channels": list(item.routing.channels),
            "choices": [
                {
                    "channel": c.channel,
                    "reason": c.reason,
                    "not_before": c.not_before.isoformat() if c.not_before else None,
                    "fallback": list(c.fallback),
                }
                for c in item.routing.choices
            ],
            "excluded": [{"channel": ch, "reason": why} for ch, why in item.routing.excluded],
            "unreachable": item.routing.unreachable,
        }
        for item in plan.explanations
    ]
