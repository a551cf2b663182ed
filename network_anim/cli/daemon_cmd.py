from __future__ import annotations

import logging
from pathlib import Path

import click

from network_anim.cli.common import db_option


@click.command()
@click.argument("config_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("-v", "--verbose", is_flag=True, help="Log every tick, not only what happened.")
@db_option
def daemon(config_file: Path, verbose: bool, db_url: str | None) -> None:
    """Run campaigns on their calendar, sequences per contact, and the outbox, until stopped.

    SIGTERM or Ctrl-C: stop claiming, finish the sends in flight, exit 0. SIGHUP (or
    `netanim reload`): re-read CONFIG_FILE; a broken config is reported and the running
    one stays. On PostgreSQL any number of daemons may run: they share the outbox, and
    one of them at a time holds the scheduler role.

    \b
    Example:
      netanim daemon config.example.toml
    """
    import asyncio

    from rich.logging import RichHandler

    from network_anim.daemon.service import Daemon

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False)],
    )
    # APScheduler narrates every run at INFO; its warnings still show.
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    raise SystemExit(asyncio.run(Daemon(config_file, db_url=db_url).run()))
