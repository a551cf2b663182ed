"""The schema check every command makes, read without Alembic, agrees with Alembic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from network_anim.db.engine import make_engine
from network_anim.db.migrate import current_revision, head_revision
from network_anim.db.schema_version import (
    _ASSIGNMENT,
    VERSIONS,
    at_shipped_head,
    ensure_schema,
    shipped_head,
    stored_revisions,
)
from network_anim.errors import UserError


def test_the_shipped_head_is_alembics() -> None:
    assert shipped_head() == head_revision()


def test_every_migration_file_states_its_revisions_plainly() -> None:
    # Otherwise the check falls back to Alembic: right, but the tenth of a second is back.
    for path in sorted(VERSIONS.glob("*.py")):
        names = [m[1] for m in _ASSIGNMENT.finditer(path.read_text("utf-8"))]
        assert names == ["revision", "down_revision"], path.name


def test_a_migrated_database_passes(engine: Engine) -> None:
    assert stored_revisions(engine) == [current_revision(engine)] == [head_revision()]
    assert at_shipped_head(engine)
    ensure_schema(engine)


def test_a_database_behind_is_refused_and_told_to_run_init(engine: Engine) -> None:
    head = head_revision()
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        assert stored_revisions(engine) == ["0001"]
        assert not at_shipped_head(engine)
        with pytest.raises(UserError) as caught:
            ensure_schema(engine)
        assert "is not initialised or its schema is out of date" in caught.value.summary
        assert caught.value.problems == ["run: netanim init (with the same --config / --db)"]
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})


def test_a_database_never_initialised_is_refused(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        assert stored_revisions(engine) == []
        with pytest.raises(UserError, match="is not initialised"):
            ensure_schema(engine)
    finally:
        engine.dispose()


def test_commands_that_open_the_database_do_not_load_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'netanim.db'}"
    from network_anim.db.migrate import upgrade

    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    probe = (
        "import sys\n"
        "from network_anim.db.engine import make_engine\n"
        "from network_anim.db.schema_version import ensure_schema\n"
        f"ensure_schema(make_engine({url!r}))\n"
        "print('alembic' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
