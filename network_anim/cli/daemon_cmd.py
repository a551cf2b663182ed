from __future__ import annotations

from pathlib import Path

import click

from network_anim.cli.common import chosen_config, config_with_positional, db_option
from network_anim.cli.logs import configure_logging, log_options


@click.command()
@config_with_positional
@click.option(
    "-v", "--verbose", is_flag=True, help="Log every tick (the same as --log-level debug)."
)
@log_options
@db_option
def daemon(
    config_file: Path | None,
    config_path: Path | None,
    verbose: bool,
    log_level: str,
    log_format: str,
    db_url: str | None,
) -> None:
    """Run campaigns on their calendar, sequences per contact, and the outbox, until stopped.

    SIGTERM or Ctrl-C: stop claiming, finish the sends in flight, exit 0. SIGHUP (or
    `netanim reload`): re-read the config file (-c FILE, $NETANIM_CONFIG, ./netanim.toml;
    a positional CONFIG_FILE is the same); a broken config is reported and the running
    one stays. On PostgreSQL any number of daemons may run: they share the outbox, and
    one of them at a time holds the scheduler role.

    \b
    Examples:
      netanim daemon
      netanim daemon --log-format json
    """
    import asyncio

    from network_anim.daemon.service import Daemon
    from network_anim.errors import UserError

    config = chosen_config(config_file, config_path)
    if config is None:
        raise UserError(
            "the daemon needs a config file (it re-reads it on SIGHUP)",
            ["pass -c FILE, set NETANIM_CONFIG, or run it where netanim.toml is"],
        )
    configure_logging("debug" if verbose else log_level, log_format)
    raise SystemExit(asyncio.run(Daemon(config, db_url=db_url).run()))
