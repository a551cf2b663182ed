from __future__ import annotations

from collections import Counter
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from network_anim.cli.common import console, simulation_progress

if TYPE_CHECKING:  # the command's imports stay lazy: `netanim --help` loads none of them
    from network_anim.demo.engagement import EngagementStats


@click.command()
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Campaigns to run (their outputs are moved into --dir). Default: "
    "./config.example.toml if present, else the example config that ships with network-anim.",
)
@click.option(
    "--dir",
    "folder",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("var/demo"),
    show_default=True,
    help="Everything goes here. A new or empty folder, or one an earlier demo wrote (its "
    ".netanim-demo marker lists what the demo clears); any other folder is refused.",
)
@click.option("--from", "start", default=None, help="First simulated day (default: today 08:00).")
@click.option("--months", type=click.IntRange(1, 24), default=4, show_default=True)
@click.option("--contacts", type=click.IntRange(10, 100_000), default=400, show_default=True)
@click.option("--seed", type=int, default=2026, show_default=True, help="Same seed, same network.")
@click.option("--json", "as_json", is_flag=True, help="Summary as JSON.")
def demo(
    config_path: Path | None,
    folder: Path,
    start: str | None,
    months: int,
    contacts: int,
    seed: int,
    as_json: bool,
) -> None:
    """A sample network of ~40 companies and 400 contacts, months of the example campaigns
    on a simulated clock, every email, SMS and letter written to disk, and the HTML report
    of the period (report.html). The network's reactions (opens, clicks, reads, SMS
    statuses, registrations, sales) are simulated, seeded by --seed.

    Runs from any folder. The demo only ever deletes what it wrote itself, and a run that
    fails removes everything it wrote.

    \b
    Examples:
      netanim demo
      netanim demo --months 1 --contacts 100 --seed 7 --dir var/demo-small
    """
    import asyncio
    import json
    from zoneinfo import ZoneInfo

    from network_anim.cli.plan_cmd import parse_moment
    from network_anim.clock import SystemClock
    from network_anim.config.loading import load_config
    from network_anim.demo.engagement import EngagementSimulator
    from network_anim.demo.run import (
        default_demo_config,
        demo_folder,
        open_demo_app,
        prepare_demo,
        write_demo_report,
    )
    from network_anim.engine.simulation import sent_between, simulate
    from network_anim.outbox.transports import ConfiguredTransports

    if config_path is None:
        config_path = default_demo_config()
    timezone = load_config(config_path).config.engine.timezone
    # The one reading of the real clock: the day the simulation starts from.
    today = SystemClock().now().astimezone(ZoneInfo(timezone)).date()
    first = (
        parse_moment(start, timezone, "--from")
        if start
        else datetime.combine(today, time(8), tzinfo=ZoneInfo(timezone))
    )
    last = first + timedelta(days=30 * months)
    # Claimed before anything is written; a failure takes back everything written.
    with demo_folder(folder):
        setup = prepare_demo(config_path, folder, start=first, contacts=contacts, seed=seed)
        app = open_demo_app(setup, first)
        try:
            transports = ConfiguredTransports(app)
            grace = timedelta(minutes=app.config.daemon.misfire_grace_minutes)
            # The network's reactions (opens, clicks, reads, sales...) are simulated step
            # by step, so sequences and challenges see them as they would in production.
            engagement = EngagementSimulator(app, start=first, seed=seed)
            with simulation_progress(first, last, disabled=as_json) as progress:

                def on_step(now: datetime) -> None:
                    progress(now)
                    engagement.step(now)

                report = asyncio.run(
                    simulate(
                        app,
                        last,
                        transports,
                        grace=grace,
                        resend_safe=transports.resend_safe,
                        on_step=on_step,
                    )
                )
            reactions = engagement.finish(last)
            sent = sent_between(app.engine, first, last)
            report_html = write_demo_report(app, folder, first, last)
        finally:
            app.close()
    by_campaign: Counter[tuple[str, str]] = Counter((m.campaign, m.channel) for m in sent)
    cost: Counter[str] = Counter()
    for m in sent:
        cost[m.campaign] += m.cost
    outputs = {
        "database": str(folder / "netanim.db"),
        "network": str(setup.network_csv),
        "emails": str(folder / "outbox" / "email"),
        "sms": str(folder / "outbox" / "sms" / "sms.jsonl"),
        "letters": str(folder / "exports" / "print"),
        "report": str(report_html),
    }
    if as_json:
        click.echo(
            json.dumps(
                {
                    "from": first.isoformat(),
                    "to": last.isoformat(),
                    "contacts": setup.contacts,
                    "sales": setup.sales,
                    "messages": len(sent),
                    "by_campaign": {f"{c}/{ch}": n for (c, ch), n in sorted(by_campaign.items())},
                    "cost": {c: round(v, 2) for c, v in cost.items()},
                    "engagement": {"seed": seed, **reactions.as_json()},
                    "outputs": outputs,
                    "report_html": str(report_html),
                }
            )
        )
        return
    _print_summary(by_campaign, cost, report, setup, first, last)
    _print_engagement(reactions, seed)
    for name, path in outputs.items():
        if name != "report":  # last, on its own line: what to open first
            console.print(f"  {name:9} {path}", soft_wrap=True)
    console.print(f"HTML report: {report_html}", soft_wrap=True)


def _print_summary(by_campaign, cost, report, setup, first, last) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    channels = sorted({ch for _, ch in by_campaign})
    campaigns = sorted({c for c, _ in by_campaign})
    table = Table(title=f"Demo: {setup.contacts} contacts, {first:%Y-%m-%d} → {last:%Y-%m-%d}")
    table.add_column("campaign")
    for channel in channels:
        table.add_column(channel, justify="right")
    table.add_column("cost (EUR)", justify="right")
    for campaign in campaigns:
        table.add_row(
            campaign,
            *(str(by_campaign[(campaign, ch)]) for ch in channels),
            f"{cost[campaign]:.2f}",
        )
    table.add_row(
        "total",
        *(str(sum(by_campaign[(c, ch)] for c in campaigns)) for ch in channels),
        f"{sum(cost.values()):.2f}",
    )
    console.print(table)
    seq = report.sequences
    console.print(
        f"sequences: {sum(seq.enrolled.values())} enrolments, {seq.completed} completed, "
        f"{sum(seq.exited.values())} exited {dict(seq.exited) or ''}, {seq.branched} unopened branches; "
        f"scheduled firings: {sum(report.firings.planned.values())}"
    )


def _print_engagement(stats: EngagementStats, seed: int) -> None:
    console.print(
        f"simulated reactions (seed {seed}, not real people): "
        f"{stats.human_opens} human opens and {stats.machine_opens} machine opens, "
        f"{stats.human_clicks} human clicks and {stats.machine_clicks} machine clicks, "
        f"{stats.post_reads} post reads, {stats.sms_delivered} SMS delivered and "
        f"{stats.sms_undelivered} undelivered, {stats.registrations} challenge registrations, "
        f"{stats.sales_declared} sales declared ({stats.sales_approved} approved, "
        f"{stats.sales_rejected} rejected), {stats.points_awarded} points awarded"
    )
