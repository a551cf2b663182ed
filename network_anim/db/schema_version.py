"""Is the database at the schema revision this package ships? Read without loading
Alembic: every command that opens the database asks, and importing Alembic (which brings
Mako and Pygments) took a tenth of a second of each. Where the answer is not plain (a
migration history with branches), Alembic is asked.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, inspect, text

VERSIONS = Path(__file__).with_name("migrations") / "versions"
VERSION_TABLE = "alembic_version"  # Alembic's default, which env.py keeps
# The module-level assignments every migration file starts with (alembic's template).
_ASSIGNMENT = re.compile(r'^(revision|down_revision) = (?:"([^"]*)"|(None))$', re.MULTILINE)


@cache
def shipped_head() -> str | None:
    """The one revision that no migration file revises, from the files' own lines;
    None when a file does not say it plainly (a merge, a tuple of parents) or there is
    not exactly one head."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        found = {m[1]: m[2] or None for m in _ASSIGNMENT.finditer(path.read_text("utf-8"))}
        revision = found.get("revision")
        if revision is None or "down_revision" not in found:
            return None
        revisions.add(revision)
        if found["down_revision"] is not None:
            parents.add(found["down_revision"])  # type: ignore[arg-type]
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def stored_revisions(engine: Engine) -> list[str]:
    """The revisions the database's version table holds (none before `netanim init`)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return []
        rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
        return [version for (version,) in rows]


def at_shipped_head(engine: Engine) -> bool:
    """Whether the database is at this package's newest revision."""
    head = shipped_head()
    stored = stored_revisions(engine)
    if head is not None and len(stored) <= 1:
        return stored == [head]
    from network_anim.db.migrate import current_revision, head_revision

    return current_revision(engine) == head_revision()


def ensure_schema(engine: Engine) -> None:
    """Refuse to work on a database that `netanim init` has not brought to the head."""
    from sqlalchemy.exc import OperationalError

    from network_anim.errors import UserError

    url = engine.url.render_as_string(hide_password=True)
    try:
        current = at_shipped_head(engine)
    except OperationalError as exc:
        raise UserError(
            f"cannot open the database {url}", [str(exc.orig).strip().splitlines()[0]]
        ) from None
    if not current:
        raise UserError(
            f"the database {url} is not initialised or its schema is out of date",
            ["run: netanim init (with the same --config / --db)"],
        )
