"""One clock: no code under network_anim/ but the clock module reads the machine's time.

Every time a message, a file or a record carries comes from ``App.clock`` (simulated in
``plan`` and ``demo``, real in the daemon), so a simulated month's emails, letters and
SMS carry that month. This test reads the source (AST, like tests/test_layers.py) and
fails on any way to read the wall clock outside ``network_anim/clock.py``:
``datetime.now``/``utcnow``/``today``, ``date.today``, ``time.time``/``time_ns``, the
``time`` functions that default to the current time, ``email.utils.formatdate`` and
``localtime``, and SQL ``now()`` / ``CURRENT_TIMESTAMP``. Monotonic timers for durations
and rates (``time.monotonic``, ``time.perf_counter``, ``loop.time()``) are not a time
anyone receives and stay allowed.

Ruff's ``DTZ`` rules were not enough: they flag naive datetimes, not ``datetime.now(UTC)``,
which is exactly what carried the machine's time into every email's Date header.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "network_anim"
ALLOWED = {PACKAGE / "clock.py"}

# Attribute reads on the datetime/date classes that return the machine's time.
# (``fromtimestamp`` converts a time it is given: not a read.)
_CLASS_READS = {"now", "utcnow", "today"}
_DATETIME_CLASSES = {"datetime", "date"}
# Functions of the time module that return (or default to) the current wall-clock time.
_TIME_READS = {"time", "time_ns", "localtime", "gmtime", "ctime", "asctime", "strftime"}
# email.utils helpers that read the clock when no time is given.
_EMAIL_READS = {"formatdate", "localtime"}
_SQL_NOW = {"now", "current_timestamp", "current_date", "current_time", "localtimestamp"}
# In SQL text: CURRENT_TIMESTAMP and friends, or now() not called on an object.
_SQL_TEXT = re.compile(
    r"\b(CURRENT_TIMESTAMP|CURRENT_DATE|LOCALTIMESTAMP)\b|(?<![.\w])now\(\)", re.IGNORECASE
)


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` for a chain of attribute reads on a name, else ""."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def machine_time_reads(source: str) -> list[tuple[int, str]]:
    """(line, what) of every read of the machine's time in ``source``."""
    tree = ast.parse(source)
    # Local names bound to the modules and classes that read the clock.
    time_modules, email_utils, classes, sql_funcs = {"time"}, {"email.utils"}, set(), set()
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "time":
                    time_modules.add(alias.asname or "time")
                elif alias.name == "email.utils" and alias.asname:
                    email_utils.add(alias.asname)
                elif alias.name == "datetime":
                    classes.update(
                        f"{alias.asname or 'datetime'}.{cls}" for cls in _DATETIME_CLASSES
                    )
        elif isinstance(node, ast.ImportFrom):
            names = {alias.name: alias.asname or alias.name for alias in node.names}
            if node.module == "datetime":
                classes.update(local for name, local in names.items() if name in _DATETIME_CLASSES)
            elif node.module == "time":
                found += [(node.lineno, f"from time import {n}") for n in names if n in _TIME_READS]
            elif node.module == "email.utils":
                found += [
                    (node.lineno, f"from email.utils import {n}")
                    for n in names
                    if n in _EMAIL_READS
                ]
            elif node.module == "email" and "utils" in names:
                email_utils.add(names["utils"])
            elif node.module in {"sqlalchemy", "sqlalchemy.sql", "sqlmodel"} and "func" in names:
                sql_funcs.add(names["func"])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner = _dotted(node.value)
            if (
                (node.attr in _CLASS_READS and owner in classes)
                or (node.attr in _TIME_READS and owner in time_modules)
                or (node.attr in _EMAIL_READS and owner in email_utils)
            ):
                found.append((node.lineno, f"{owner}.{node.attr}"))
            elif node.attr.lower() in _SQL_NOW and owner in sql_funcs | {"sqlalchemy.func"}:
                found.append((node.lineno, f"{owner}.{node.attr} (the database's clock)"))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _SQL_TEXT.search(node.value)
        ):
            found.append((node.lineno, f"SQL {node.value[:40]!r} (the database's clock)"))
    return sorted(set(found))


def test_nothing_outside_the_clock_module_reads_the_machines_time() -> None:
    hits = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {what}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path not in ALLOWED
        for line, what in machine_time_reads(path.read_text(encoding="utf-8"))
    ]
    assert not hits, (
        "the machine's time is read outside network_anim/clock.py; take the engine's "
        "clock instead (app.clock.now(), passed to the component):\n  " + "\n  ".join(hits)
    )


@pytest.mark.parametrize(
    "source",
    [
        "from datetime import UTC, datetime\nx = datetime.now(UTC)",
        "from datetime import datetime as dt\nx = dt.utcnow()",
        "import datetime\nx = datetime.datetime.now()",
        "import datetime as d\nx = d.date.today()",
        "from datetime import date\nx = date.today()",
        "from datetime import datetime\nf = datetime.now",  # passed as a default factory
        "import time\nstamp = time.time()",
        "import time as t\nstamp = t.time_ns()",
        "from time import time\nstamp = time()",
        "import time\nlabel = time.strftime('%Y')",
        "from email.utils import formatdate\nx = formatdate()",
        "import email.utils\nx = email.utils.formatdate()",
        "from sqlalchemy import func\nx = func.now()",
        "q = 'UPDATE delivery SET updated_at = CURRENT_TIMESTAMP'",
    ],
)
def test_each_way_of_reading_the_machines_time_is_caught(source: str) -> None:
    assert machine_time_reads(source), source


@pytest.mark.parametrize(
    "source",
    [
        "import time\nstarted = time.monotonic()\nspent = time.perf_counter() - started",
        "import asyncio\nnow = asyncio.get_running_loop().time()",
        "from datetime import UTC, datetime\nx = datetime(2026, 1, 1, tzinfo=UTC)",
        "def f(clock):\n    return clock.now()",
        "from datetime import datetime\nx = datetime.fromisoformat('2026-01-01T00:00+00:00')",
        "from email.utils import format_datetime",
        '"""Dated by the engine clock: clock.now(), never the machine\'s."""',
        "from datetime import UTC, datetime\nx = datetime.fromtimestamp(record.created, UTC)",
    ],
)
def test_clocks_for_durations_and_given_times_are_allowed(source: str) -> None:
    assert not machine_time_reads(source), source
