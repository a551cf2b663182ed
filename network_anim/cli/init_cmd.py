from __future__ import annotations

from pathlib import Path

import click

from network_anim.cli.common import app_options, console, open_app


@click.command()
@app_options
def init(config_path: Path | None, db_url: str | None) -> None:
    """Create the database schema, or upgrade it to the latest migration.

    Safe to run again: an up-to-date database is left as it is.

    \b
    Examples:
      netanim init
      netanim init --db postgresql://postgres@127.0.0.1:5432/netanim
    """
    from network_anim.db.engine import ensure_sqlite_folder
    from network_anim.db.migrate import current_revision, head_revision, upgrade

    app = open_app(config_path, db_url, need_schema=False)
    ensure_sqlite_folder(app.engine)
    before = _revision_or_none(app)
    upgrade(app.engine)
    app.data_dir.mkdir(parents=True, exist_ok=True)
    url = app.engine.url.render_as_string(hide_password=True)
    if before == head_revision():
        console.print(f"database {url} is up to date (schema {before})")
    else:
        console.print(f"database {url}: schema {before or 'none'} → {current_revision(app.engine)}")


def _revision_or_none(app: object) -> str | None:
    from sqlalchemy.exc import OperationalError

    from network_anim.db.migrate import current_revision
    from network_anim.errors import UserError

    try:
        return current_revision(app.engine)  # type: ignore[attr-defined]
    except OperationalError as exc:
        raise UserError(
            "cannot open the database", [str(exc.orig).strip().splitlines()[0]]
        ) from None
