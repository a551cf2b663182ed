from __future__ import annotations

from pathlib import Path

import click

from network_anim.cli.common import db_option
from network_anim.cli.logs import configure_logging, log_options


@click.command()
@click.argument("config_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "-v", "--verbose", is_flag=True, help="Log every tick (the same as --log-level debug)."
)
@log_options
@db_option
def daemon(
    config_file: Path, verbose: bool, log_level: str, log_format: str, db_url: str | None
) -> None:
    """Run campaigns on their calendar, sequences per contact, and the outbox, until stopped.

    SIGTERM or Ctrl-C: stop claiming, finish the sends in flight, exit 0. SIGHUP (or
    `netanim reload`): re-read CONFIG_FILE; a broken config is reported and the running
    one stays. On PostgreSQL any number of daemons may run: they share the outbox, and
    one of them at a time holds the scheduler role.

    \b
    Example:
      netanim daemon config.example.toml
      netanim daemon config.example.toml --log-format json
    """
    import asyncio

    from network_anim.daemon.service import Daemon

    configure_logging("debug" if verbose else log_level, log_format)
    raise SystemExit(asyncio.run(Daemon(config_file, db_url=db_url).run()))
