"""The ``netanim`` command line. Subcommands load lazily so ``--help`` stays fast."""

from __future__ import annotations

import gc
import importlib
import sys
from typing import Any

import click

# name -> (module, attribute, one-line help shown by `netanim --help` without importing it)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("network_anim.cli.init_cmd", "init", "Create or upgrade the database schema."),
    "import": (
        "network_anim.cli.import_cmd",
        "import_group",
        "Import the network, or sales declarations.",
    ),
    "validate": (
        "network_anim.cli.validate_cmd",
        "validate",
        "Check a config file and its templates.",
    ),
    "broadcast": (
        "network_anim.cli.broadcast_cmd",
        "broadcast",
        "Send a one-off message to an audience.",
    ),
    "preview": (
        "network_anim.cli.preview_cmd",
        "preview",
        "A message as chosen contacts would get it, as files to open.",
    ),
    "dispatch": (
        "network_anim.cli.dispatch_cmd",
        "dispatch",
        "Send every outbox row that is due now.",
    ),
    "outbox": ("network_anim.cli.outbox_cmd", "outbox", "List outbox rows by status; retry them."),
    "daemon": ("network_anim.cli.daemon_cmd", "daemon", "Run campaigns, sequences and the outbox."),
    "reload": (
        "network_anim.cli.reload_cmd",
        "reload",
        "Make the running daemon re-read its config.",
    ),
    "enroll": ("network_anim.cli.enroll_cmd", "enroll", "Put contacts into a nurturing sequence."),
    "plan": (
        "network_anim.cli.plan_cmd",
        "plan",
        "Simulate a period: every message that would go out.",
    ),
    "challenge": (
        "network_anim.cli.challenge_cmd",
        "challenge",
        "Challenges: register, review, rankings, KPIs.",
    ),
    "points": (
        "network_anim.cli.points_cmd",
        "points",
        "Points: balance explained, awards, redemptions.",
    ),
    "rewards": (
        "network_anim.cli.rewards_cmd",
        "rewards",
        "Rewards shop: catalogue, cancel, supplier file.",
    ),
    "serve": (
        "network_anim.cli.serve_cmd",
        "serve",
        "Serve the partner portal, tracking links and Twilio webhooks.",
    ),
    "api": (
        "network_anim.cli.api_cmd",
        "api",
        "Read API for other systems: bearer tokens.",
    ),
    "report": (
        "network_anim.cli.report_cmd",
        "report",
        "Funnel, conversion into sales, challenges, costs and ROI.",
    ),
    "audience": (
        "network_anim.cli.audience_cmd",
        "audience",
        "Audiences: count them, explain who is in and why.",
    ),
    "segment": (
        "network_anim.cli.segment_cmd",
        "segment",
        "RFM segments of companies, for campaign audiences.",
    ),
    "demo": (
        "network_anim.cli.demo_cmd",
        "demo",
        "Sample network, months simulated, outputs on disk.",
    ),
    "new": ("network_anim.cli.new_cmd", "new", "Write a starter project into a new folder."),
    "bounces": (
        "network_anim.cli.bounces_cmd",
        "bounces",
        "Email bounces and complaints from files.",
    ),
    "webhooks": (
        "network_anim.cli.webhooks_cmd",
        "webhooks",
        "Signed webhooks of what happens: send, ping, secrets.",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        module, attribute, _ = _COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="network-anim", prog_name="netanim")
def cli() -> None:
    """Animate a B2B distribution network over the channel that fits each message.

    \b
    Example, a new project on the embedded default (SQLite, file transports):
      netanim new my-network && cd my-network
      netanim init
      netanim import network examples/network.csv
      netanim broadcast --audience all --urgency info --template welcome --id welcome-2027
    """


def main(argv: list[str] | None = None) -> Any:
    """``netanim ARGV``; without ``argv``, the process's own command line, as its entry
    point: the process ends with the command."""
    from network_anim.cli.common import run_cli

    if argv is not None:
        return run_cli(cli, argv)
    try:
        return run_cli(cli, sys.argv[1:])
    finally:
        # At exit the interpreter runs the garbage collector over every object the
        # engine's modules made while it takes them apart (SQLModel's models alone: 0.2 s
        # after each command); objects in cycles then would only have their memory
        # freed, which the system does at once.
        gc.freeze()
