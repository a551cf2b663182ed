from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import click

from network_anim.cli.common import app_options, console, open_app

if TYPE_CHECKING:
    from network_anim.outbox.stats import DispatchStats


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary on stdout.")
@app_options
def dispatch(as_json: bool, config_path: Path | None, db_url: str | None) -> None:
    """Send every outbox row that is due now, then stop (the daemon does this on a tick).

    Rows deferred to a legal send window, or waiting for a retry, go out once due.

    \b
    Example:
      netanim dispatch
    """
    import json
    from collections import Counter

    from rich.progress import Progress
    from rich.table import Table

    from network_anim.outbox.sending import send_due
    from network_anim.planning.fallbacks import drain_with_fallbacks

    app = open_app(config_path, db_url)
    with Progress(console=console, transient=True, disable=as_json) as progress:
        task = progress.add_task("Sending", total=None)
        stats = asyncio.run(
            send_due(
                app,
                on_progress=lambda n: progress.advance(task, n),
                drive=drain_with_fallbacks,
            )
        )
    by_channel: dict[str, Counter[str]] = {}
    for (channel, outcome), count in stats.outcomes.items():
        by_channel.setdefault(channel, Counter())[outcome] += count
    if as_json:
        payload = {
            "outcomes": {ch: dict(c) for ch, c in by_channel.items()},
            "fallbacks": dict(stats.fallbacks),
            "fallbacks_held": dict(stats.fallbacks_held),
            "reclaimed": stats.reclaimed,
            "recovered": stats.recovered,
        }
        click.echo(json.dumps(payload))
        return
    if not by_channel and not stats.fallbacks_held:
        console.print("nothing due in the outbox")
        return
    table = Table(title="Dispatch")
    outcomes = ["sent", "deferred", "failed", "dead", "unknown", "opted_out"]
    table.add_column("channel")
    for outcome in outcomes:
        table.add_column(outcome, justify="right")
    for channel, counts in sorted(by_channel.items()):
        table.add_row(channel, *(str(counts[o]) for o in outcomes))
    console.print(table)
    _print_fallbacks(stats)


def _print_fallbacks(stats: DispatchStats) -> None:
    """The fallbacks the planner planned after permanent failures, and those it held."""
    planned, held = stats.fallbacks, stats.fallbacks_held
    if planned:
        moved = ", ".join(f"{n} to {ch}" for ch, n in sorted(planned.items()))
        console.print(f"permanent failures moved to the next channel: {moved}")
    if held:
        kept = ", ".join(f"{n} to {ch}" for ch, n in sorted(held.items()))
        console.print(
            f"fallbacks held (frequency cap, no channel left): {kept}; "
            "`netanim outbox --status failed` says why"
        )
