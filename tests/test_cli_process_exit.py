"""The console entry point skips the garbage collector at exit (network_anim.cli.main);
what the collector used to close must still be closed: SQLite's write-ahead log is moved
into the database file, so the .db file alone holds every change."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _netanim(cwd: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "network_anim", *args], cwd=cwd, check=True, capture_output=True
    )


def test_each_command_leaves_the_database_file_complete(tmp_path: Path) -> None:
    _netanim(tmp_path, "new", "proj")
    project = tmp_path / "proj"
    _netanim(project, "init")
    _netanim(project, "import", "network", str(REPO / "examples" / "network.csv"))
    database = project / "var" / "netanim.db"
    assert not database.with_name("netanim.db-wal").exists()
    # A copy of the file alone, as a backup would take it.
    copy = tmp_path / "copy.db"
    shutil.copy(database, copy)
    with sqlite3.connect(copy) as conn:
        (contacts,) = conn.execute("SELECT count(*) FROM contact").fetchone()
    assert contacts == 15
