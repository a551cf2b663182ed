from __future__ import annotations

from pathlib import Path

import click

from network_anim.cli.common import config_option, console


@click.command()
@config_option
def reload(config_path: Path | None) -> None:
    """Ask the running daemon to re-read its config (SIGHUP to the pid in data_dir).

    \b
    Example:
      netanim reload
    """
    import os
    import signal

    from network_anim.cli.common import default_config
    from network_anim.config.loading import load_config
    from network_anim.errors import UserError

    loaded = load_config(default_config(config_path))
    pid_file = loaded.resolve(loaded.config.engine.data_dir) / "daemon.pid"
    try:
        pid = int(pid_file.read_text(encoding="utf-8").strip())
        os.kill(pid, signal.SIGHUP)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        raise UserError(
            f"no running daemon found ({pid_file})", ["start one: netanim daemon -c CONFIG"]
        ) from None
    console.print(
        f"reload requested from daemon pid {pid}; its log says whether the new config was taken"
    )
