"""What every command shares: --config/--db options, opening the app, user-error exits."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USER_ERROR = 1

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def config_option(func: F) -> F:
    return click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="NETANIM_CONFIG",
        default=None,
        help="Config file (TOML). Default: $NETANIM_CONFIG, else ./netanim.toml if present, "
        "else the embedded defaults.",
    )(func)


def config_with_positional(func: F) -> F:
    """``-c``/``$NETANIM_CONFIG`` like every command, plus the older positional CONFIG_FILE
    (kept as an alias so existing unit files and scripts go on working)."""
    func = click.argument(
        "config_file", required=False, type=click.Path(path_type=Path, dir_okay=False)
    )(func)
    return config_option(func)


def chosen_config(config_file: Path | None, config_path: Path | None) -> Path | None:
    """The config named by the positional alias or by ``-c``; both must agree."""
    from network_anim.errors import UserError

    if config_file is not None and config_path is not None and config_file != config_path:
        raise UserError(
            f"two config files given: {config_file} and {config_path}",
            ["name it once: -c FILE (the positional CONFIG_FILE is the same option)"],
        )
    return default_config(config_file or config_path)


def db_option(func: F) -> F:
    return click.option(
        "--db",
        "db_url",
        envvar="NETANIM_DB",
        default=None,
        help="Database URL, overriding [engine] database (sqlite:///file.db, "
        "postgresql://user@host/db). Also $NETANIM_DB.",
    )(func)


def app_options(func: F) -> F:
    return config_option(db_option(func))


def default_config(config_path: Path | None) -> Path | None:
    if config_path is not None:
        return config_path
    local = Path("netanim.toml")
    return local if local.is_file() else None


def open_app(config_path: Path | None, db_url: str | None, *, need_schema: bool = True) -> Any:
    from network_anim.app import open_app as _open
    from network_anim.challenges.standings import variable_sources

    app = _open(default_config(config_path), db_url=db_url, variables=variable_sources())
    return _schema_checked(app) if need_schema else app


def app_for(loaded: Any, db_url: str | None) -> Any:
    """The App of a config already loaded, its schema checked (a command that starts
    work before the database and the engine's modules are opened, a good half second)."""
    from network_anim.app import app_from_config
    from network_anim.challenges.standings import variable_sources

    return _schema_checked(app_from_config(loaded, db_url=db_url, variables=variable_sources()))


def _schema_checked(app: Any) -> Any:
    from network_anim.db.schema_version import ensure_schema

    ensure_schema(app.engine)
    return app


def run_cli(cli: click.Group, argv: list[str]) -> Any:
    """Run click; a user mistake prints its problems and exits 1, never a traceback."""
    from network_anim.errors import UserError

    try:
        code = cli.main(args=argv, prog_name="netanim", standalone_mode=False)
    except UserError as exc:
        err_console.print(f"[bold red]error:[/] {exc.summary}", highlight=False, markup=True)
        for problem in exc.problems:
            err_console.print(f"  - {problem}", highlight=False, markup=False)
        sys.exit(EXIT_USER_ERROR)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(EXIT_USER_ERROR)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    # Without standalone mode click returns the exit code of ctx.exit() instead of exiting.
    if isinstance(code, int) and code:
        sys.exit(code)
    return code


@contextmanager
def simulation_progress(
    first: Any, last: Any, *, disabled: bool
) -> Iterator[Callable[[Any], None]]:
    """A progress bar over simulated days; yields the simulation's on_step callback."""
    from rich.progress import BarColumn, Progress, TextColumn

    total = (last - first).total_seconds()
    with Progress(
        TextColumn("Simulating"),
        BarColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
        disable=disabled,
    ) as progress:
        task = progress.add_task("", total=total)

        def on_step(now: Any) -> None:
            progress.update(
                task, completed=(now - first).total_seconds(), description=f"{now:%Y-%m-%d}"
            )

        yield on_step
