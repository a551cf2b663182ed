from __future__ import annotations

import asyncio
from pathlib import Path

import click

from network_anim.cli.common import app_options, console, open_app


@click.group()
def webhooks() -> None:
    """Outbound webhooks: signed JSON POSTs of what happens (docs/webhooks.md).

    Subscribers are the config's [[webhooks]] entries; the daemon sends on its dispatch
    tick, `netanim webhooks send` does one pass; `netanim outbox --status dead` lists
    what was given up, `netanim outbox retry wh-N` requeues it.

    \b
    Example:
      netanim webhooks send
    """


@webhooks.command("send")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary on stdout.")
@app_options
def send(as_json: bool, config_path: Path | None, db_url: str | None) -> None:
    """Read what happened since the last pass into the webhook outbox, then POST every
    row that is due (the daemon does both on its dispatch tick).

    A subscriber whose secret variable is missing or malformed is skipped (its rows
    wait) and named. Failed attempts are retried with backoff on later passes.

    \b
    Example:
      netanim webhooks send --json
    """
    import json

    from network_anim.outbox.sending import worker_id
    from network_anim.webhooks.feed import run_feed
    from network_anim.webhooks.sender import WebhookSender

    app = open_app(config_path, db_url)
    if not app.config.webhooks:
        console.print("no [[webhooks]] subscriber in the config: nothing to send")
        return
    queued = run_feed(app)
    stats = asyncio.run(WebhookSender(app, worker_id=worker_id()).send_due())
    if as_json:
        summary = {
            "queued": dict(queued),
            "outcomes": dict(stats.outcomes),
            "reclaimed": stats.reclaimed,
            "problems": stats.problems,
        }
        click.echo(json.dumps(summary))
    else:
        outcomes = ", ".join(f"{n} {what}" for what, n in sorted(stats.outcomes.items()))
        console.print(f"{sum(queued.values())} event row(s) queued; sent: {outcomes or 'none'}")
        for problem in stats.problems:
            console.print(f"[yellow]skipped:[/] {problem}")


@webhooks.command("test")
@click.argument("names", nargs=-1)
@app_options
def test(names: tuple[str, ...], config_path: Path | None, db_url: str | None) -> None:
    """POST a signed webhook.ping to the subscribers NAMES (all of them by default) now,
    never through the outbox, and show each answer; exit 1 if one did not answer 2xx.

    \b
    Example:
      netanim webhooks test
    """
    from network_anim.errors import UserError
    from network_anim.webhooks.operator import ping, subscriber

    app = open_app(config_path, db_url)
    targets = [subscriber(app, name) for name in names] or list(app.config.webhooks)
    if not targets:
        console.print("no [[webhooks]] subscriber in the config: nothing to ping")
        return
    refused = []
    for target in targets:
        webhook_id, answer = asyncio.run(ping(app, target))
        console.print(f"{target.name}: {target.url} answered {answer.detail} to {webhook_id}")
        if not answer.ok:
            refused.append(f"{target.name}: {answer.detail}")
    if refused:
        raise UserError(f"{len(refused)} subscriber(s) refused the ping", refused)


@webhooks.command("secret")
def secret() -> None:
    """Print a new signing secret ("whsec_" + base64 of 32 random bytes) to put in the
    variable a subscriber's secret_env names, and to give to the receiver.

    \b
    Example:
      netanim webhooks secret
    """
    from network_anim.webhooks.signing import new_secret

    click.echo(new_secret())
