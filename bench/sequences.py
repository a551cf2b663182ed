#!/usr/bin/env python3
"""Sequences benchmark: one nurture tick with 50,000 due steps among 1,000,000 active
enrolments, against the same 50,000 due steps among 100,000 (the baseline, same run).

Scenario (identical at both sizes, so only the number of enrolments changes): one nurture
campaign with four steps modelled on config.example.toml's "onboarding" (welcome: info,
so intranet post + email; portal-tour; first-steps with its unopened-email branch;
check-in), exiting on converted, replied, unsubscribed and left_audience; one enrolment
per contact, ten contacts per company. Every trait below is keyed on a contact's rank
within the due set (or within the rest), so the due set is the same mix at every size:
its steps a quarter each; 0.5 % inactive (left the audience), 0.5 % opted out of every
channel, 0.5 % replied, 1 % with a sale since enrolment; every contact past the first step
has its previous step's email in the outbox (sent 1 to 9 days ago, two thirds opened), so
the first-steps branch picks email, print (unopened for 5 days) or waits; half the due set
falls due at the same instant (an import wave), the rest over the last day.

For each backend (PostgreSQL: a throwaway database next to ``--pg``, dropped at the end;
SQLite: a file in a temporary folder) and each size, it migrates, generates the data fast
(PostgreSQL COPY, SQLite executemany in one transaction: no ORM), then times
``network_anim.campaigns.sequences.tick(app)`` (what the daemon's sequence tick runs) ``--runs``
times, putting the due set back between ticks (one UPDATE from a saved copy, one DELETE of
the rows the tick created). It reports the median tick, due steps/s, the ratio to the
100,000 run (the goal: about 1, the tick follows the due steps, not the enrolments), the
split (due selection / exit checks / branch lookups / planning / enrolment updates, timed
by wrapping those functions), the peak RSS during the tick, every distinct statement the
tick sent with its count, time and plan (PostgreSQL ``EXPLAIN (ANALYZE, BUFFERS)`` of its
first parameters on the reset due set, inside a rolled-back transaction; SQLite ``EXPLAIN
QUERY PLAN``), the enrolment trigger scan (``enrol_by_triggers``: the daemon's 15-minute
trigger tick, not the sequence tick) and a cProfile of one tick at the big size.

Figures are recorded in docs/bench-log/sequences.md, plans and profiles to
docs/bench-sequences-plans.md (linked from the section). The campaign, the population and
its loading live in bench/sequences_scenario.py.

Example::

    python bench/sequences.py                                   # both backends, ~15 min
    python bench/sequences.py --backends sqlite --enrolments 200000 --baseline 20000 \\
        --due 5000 --runs 1 --out -                            # quick look, no docs change
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import re
import sqlite3
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import benchlib
from sequences_scenario import (
    CAMPAIGN_TOML,
    NOW,
    PER_COMPANY,
    Dataset,
    generate,
    reset,
    sql_one,
    sqlite_path,
)

PLANS = benchlib.REPO / "docs" / "bench-sequences-plans.md"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("Example::")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--pg",
        default=os.environ.get("NETANIM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"),
        help="an existing PostgreSQL database on 127.0.0.1; the bench creates and drops its "
        "own next to it (default: $NETANIM_TEST_PG or %(default)s)",
    )
    parser.add_argument(
        "--backends", default="postgresql,sqlite", help="comma-separated (%(default)s)"
    )
    parser.add_argument("--enrolments", type=int, default=1_000_000, help="(%(default)s)")
    parser.add_argument(
        "--baseline", type=int, default=100_000, help="enrolments of the baseline run"
    )
    parser.add_argument("--due", type=int, default=50_000, help="due steps (%(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="timed ticks per size (median)")
    parser.add_argument(
        "--no-profile", action="store_true", help="skip the cProfile tick at the big size"
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        help="due enrolments per transaction (default: the engine's own)",
    )
    parser.add_argument(
        "--schema",
        default="head",
        help="migrate to this revision (to measure older code on its schema; %(default)s)",
    )
    parser.add_argument(
        "--label", default="", help="words added to the section title (e.g. the code measured)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--out",
        default=str(benchlib.BENCH_LOG),
        help="'-': print only, change no docs (default: record in the run log in %(default)s)",
    )
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or set(backends) - {"postgresql", "sqlite"}:
        parser.error("--backends: postgresql and/or sqlite")
    args.backends = backends
    if args.runs < 1 or args.due < 4:
        parser.error("at least 1 run and 4 due steps")
    if not args.due <= args.baseline <= args.enrolments:
        parser.error("need --due <= --baseline <= --enrolments")
    return args


# -- measuring a tick ---------------------------------------------------------------------------

# Functions of network_anim.campaigns.sequences timed as the parts of a tick (those that exist: the
# bench also runs against older versions of the module).
PARTS = {
    "_claim_due": "due selection",
    "_exit_reasons": "exit checks",
    "_branches": "branch lookups",
    "_branch": "branch lookups",
    "plan_in_session": "planning",
    "_write_back": "enrolment updates",
}


@contextlib.contextmanager
def timed_parts() -> Iterator[dict[str, float]]:
    import network_anim.campaigns.sequences as sequences

    spent: dict[str, float] = Counter()
    originals: dict[str, Callable[..., Any]] = {}

    def timed(label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - began

        return wrapper

    for name, label in PARTS.items():
        function = getattr(sequences, name, None)
        if function is not None:
            originals[name] = function
            setattr(sequences, name, timed(label, function))
    try:
        yield spent
    finally:
        for name, function in originals.items():
            setattr(sequences, name, function)


def reset_peak_rss() -> None:
    """Linux: start the peak RSS (VmHWM) afresh, so it measures the tick alone."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


_CAST = r"(?:::(?:INTEGER|VARCHAR|BOOLEAN|FLOAT|TEXT|JSON|TIMESTAMP WITHOUT TIME ZONE))?"
_MARK = rf"(?:%\(\w+\)s{_CAST}|\?)"
_PLACEHOLDERS = re.compile(rf"{_MARK}(?:\s*,\s*{_MARK})+")
_ROWS = re.compile(r"\(…\)(\s*,\s*\(…\))+")
_SKIPPED = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA", "SELECT 1")


def statement_key(statement: str) -> str:
    """The statement with its IN lists and VALUES rows collapsed (a batch of 500 and the
    last batch of 37 are the same query)."""
    text = " ".join(statement.split())
    text = _PLACEHOLDERS.sub("…", text)
    text = re.sub(rf"\(({_MARK}|…)\)", "(…)", text)
    return _ROWS.sub("(…)", text)


@dataclass
class Statement:
    key: str
    text: str
    parameters: Any
    count: int = 0
    seconds: float = 0.0
    plan: str = ""


class StatementLog:
    """Every distinct statement sent through ``engine`` while active: its first text and
    parameters, how often it ran and the time spent in the database driver."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.statements: dict[str, Statement] = {}

    def __enter__(self) -> StatementLog:
        from sqlalchemy import event

        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc: object) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        conn.info["bench_began"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        elapsed = time.perf_counter() - conn.info.pop("bench_began", time.perf_counter())
        if statement.lstrip().upper().startswith(_SKIPPED):
            return
        key = statement_key(statement)
        found = self.statements.get(key)
        if found is None:
            first = parameters[0] if executemany and parameters else parameters
            found = self.statements[key] = Statement(key, statement, first)
        found.count += len(parameters) if executemany and parameters else 1
        found.seconds += elapsed


def explain(engine: Any, statement: Statement) -> str:
    """PostgreSQL: EXPLAIN (ANALYZE, BUFFERS), rolled back (INSERTs only EXPLAIN: their
    foreign keys point at rows the reset removed); SQLite: EXPLAIN QUERY PLAN."""
    from sqlalchemy.exc import DBAPIError

    postgres = engine.dialect.name == "postgresql"
    analyze = postgres and not statement.text.lstrip().upper().startswith("INSERT")
    if postgres:
        prefix = "EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN "
    else:
        prefix = "EXPLAIN QUERY PLAN "
    with engine.connect() as conn:
        try:
            rows = conn.exec_driver_sql(prefix + statement.text, statement.parameters).all()
        except DBAPIError as exc:
            return f"(not explained: {str(exc.orig).splitlines()[0]})"
        finally:
            conn.rollback()
    if postgres:  # an IN list shows as a long ANY array: its start is enough
        return "\n".join(short_line(str(row[0])) for row in rows)
    depth: dict[int, int] = {0: -1}
    lines = []
    for node, parent, _unused, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + str(detail))
    return "\n".join(lines)


def short_line(line: str, width: int = 240) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


@dataclass
class Tick:
    seconds: float
    parts: dict[str, float]
    peak_rss_mb: float
    work: dict[str, Any]


def outcome(app: Any, stats: Any, data: Dataset) -> dict[str, Any]:
    """What the tick did, to check every run did the same work."""
    from sqlalchemy import func, select

    from network_anim.db.models import Delivery

    with app.engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.channel, func.count())
            .where(Delivery.id > data.max_delivery)  # type: ignore[operator]
            .group_by(Delivery.channel)
        ).all()
    return {
        "steps": sum(stats.steps.values()),
        "postponed": stats.postponed,
        "branched": stats.branched,
        "completed": stats.completed,
        "exited": dict(sorted(stats.exited.items())),
        "outbox rows": dict(sorted((str(c), int(n)) for c, n in rows)),
        "errors": dict(stats.errors),
    }


def tick_options(batch: int | None) -> dict[str, int]:
    return {} if batch is None else {"batch": batch}


def run_tick(app: Any, data: Dataset, batch: int | None, log: StatementLog | None = None) -> Tick:
    from network_anim.campaigns.sequences import tick

    reset_peak_rss()
    with timed_parts() as parts, log if log is not None else contextlib.nullcontext():
        began = time.perf_counter()
        stats = tick(app, **tick_options(batch))
        seconds = time.perf_counter() - began
    return Tick(seconds, dict(parts), peak_rss_mb(), outcome(app, stats, data))


def profile_tick(app: Any, batch: int | None) -> str:
    from network_anim.campaigns.sequences import tick

    profiler = cProfile.Profile()
    profiler.enable()
    tick(app, **tick_options(batch))
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)
    text = out.getvalue().replace(str(benchlib.REPO) + "/", "")
    text = re.sub(r"/\S*/site-packages/", "", text)
    return re.sub(r"/\S*/lib/python3\.\d+/", "", text)


# -- one size on one backend ------------------------------------------------------------------


@dataclass
class SizeResult:
    backend: str
    enrolments: int
    data: Dataset
    ticks: list[Tick]
    statements: list[Statement]
    trigger_seconds: float
    trigger_statements: list[Statement]
    database_size: str
    profile: str = ""
    rss_before_mb: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(t.seconds for t in self.ticks)

    def median_part(self, label: str) -> float:
        return statistics.median(t.parts.get(label, 0.0) for t in self.ticks)


def database_size(backend: str, url: str) -> str:
    if backend == "sqlite":
        path = sqlite_path(url)
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        return f"{size / 1024 / 1024:.0f} MB file"
    value = sql_one(backend, url, "SELECT pg_size_pretty(pg_database_size(current_database()))")
    return f"{value} database"


def write_config(folder: Path, url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "netanim.toml"
    path.write_text(benchlib.example_settings(url) + CAMPAIGN_TOML, encoding="utf-8")
    return path


def measure_size(
    backend: str, url: str, total: int, args: argparse.Namespace, folder: Path, profile: bool
) -> SizeResult:
    from network_anim.app import open_app
    from network_anim.campaigns.sequences import enrol_by_triggers
    from network_anim.clock import SimulatedClock
    from network_anim.db.engine import make_engine
    from network_anim.db.migrate import upgrade

    engine = make_engine(url)
    upgrade(engine, args.schema)
    engine.dispose()
    print(f"[{backend} {total:,}] generating...", flush=True)
    data = generate(backend, url, total, args.due)
    for step, seconds in data.seconds.items():
        print(f"  {step}: {seconds:.1f} s ({sum(data.rows.values()):,} rows)", flush=True)
    os.environ["NETANIM_SECRET_KEY"] = benchlib.SECRET
    app = open_app(write_config(folder, url), clock=SimulatedClock(NOW))
    try:
        rss_before = current_rss_mb()
        ticks: list[Tick] = []
        log = StatementLog(app.engine)
        for run in range(args.runs):
            reset(backend, url, data)
            result = run_tick(app, data, args.batch, log if run == 0 else None)
            ticks.append(result)
            print(
                f"  tick {run + 1}: {result.seconds:.2f} s, peak RSS {result.peak_rss_mb:.0f} MB, "
                f"{json.dumps(result.work)}",
                flush=True,
            )
            if result.work != ticks[0].work:
                raise SystemExit(f"tick {run + 1} did other work than tick 1: {result.work}")
        # Plans on the due set as the first tick found it.
        reset(backend, url, data)
        statements = list(log.statements.values())
        for statement in statements:
            statement.plan = explain(app.engine, statement)
        with StatementLog(app.engine) as trigger_log:
            began = time.perf_counter()
            enrolled = enrol_by_triggers(app)
            trigger_seconds = time.perf_counter() - began
        if sum(enrolled.enrolled.values()):
            raise SystemExit(f"the trigger scan enrolled someone: {dict(enrolled.enrolled)}")
        trigger_statements = list(trigger_log.statements.values())
        for statement in trigger_statements:
            statement.plan = explain(app.engine, statement)
        print(f"  trigger scan (enrol_by_triggers): {trigger_seconds:.2f} s", flush=True)
        profiled = ""
        if profile:
            reset(backend, url, data)
            profiled = profile_tick(app, args.batch)
        return SizeResult(
            backend=backend,
            enrolments=total,
            data=data,
            ticks=ticks,
            statements=statements,
            trigger_seconds=trigger_seconds,
            trigger_statements=trigger_statements,
            database_size=database_size(backend, url),
            profile=profiled,
            rss_before_mb=rss_before,
        )
    finally:
        app.close()


@contextlib.contextmanager
def database(backend: str, args: argparse.Namespace, folder: Path) -> Iterator[str]:
    folder.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    with benchlib.throwaway_postgres(args.pg) as url:
        yield url.replace("postgresql://", "postgresql+psycopg://", 1)


def server_facts(backend: str, url: str) -> str:
    if backend == "sqlite":
        return f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL, no ANALYZE run)"
    rows = benchlib.sql_rows(
        url,
        "SELECT setting FROM pg_settings WHERE name IN ('server_version', "
        "'shared_buffers', 'work_mem') ORDER BY name",
    )
    version, shared, work_mem = (str(r[0]) for r in rows)
    return f"PostgreSQL {version} (shared_buffers {int(shared) * 8 // 1024} MB, work_mem {work_mem} kB)"


# -- report ------------------------------------------------------------------------------------

PART_ORDER = (
    "due selection",
    "exit checks",
    "branch lookups",
    "planning",
    "enrolment updates",
)


def render_backend(backend: str, facts: str, big: SizeResult, small: SizeResult, due: int) -> str:
    lines = [
        f"backend: {facts}; database after generation: {big.database_size} (big), "
        f"{small.database_size} (baseline)"
    ]
    header = (
        f"{'enrolments':>10} | {'tick s (median; runs)':<28} | {'due steps/s':>11} | "
        f"{'peak RSS in tick':>16} | "
        + " | ".join(f"{p:>15}" for p in PART_ORDER)
        + f" | {'other':>7} | trigger scan"
    )
    lines.append(header)
    for result in (big, small):
        runs = ", ".join(f"{t.seconds:.2f}" for t in result.ticks)
        parts = [result.median_part(p) for p in PART_ORDER]
        other = result.median - sum(parts)
        peak = max(t.peak_rss_mb for t in result.ticks)
        lines.append(
            f"{result.enrolments:>10,} | {f'{result.median:.2f} ({runs})':<28} | "
            f"{due / result.median:>11,.0f} | {f'{peak:.0f} MB':>16} | "
            + " | ".join(f"{f'{s:.2f} s':>15}" for s in parts)
            + f" | {f'{other:.2f} s':>7} | {result.trigger_seconds:.2f} s"
        )
    lines.append(
        f"ratio {big.enrolments:,} / {small.enrolments:,} enrolments: tick x{big.median / small.median:.2f}"
        f" (goal: about 1), trigger scan x{big.trigger_seconds / small.trigger_seconds:.2f}"
    )
    lines.append(f"work done by every tick: {json.dumps(big.ticks[0].work)}")
    lines.append(
        "generation: "
        + "; ".join(
            f"{r.enrolments:,}: "
            + ", ".join(f"{k} {v:.0f} s" for k, v in r.data.seconds.items())
            + f" ({sum(r.data.rows.values()):,} rows)"
            for r in (big, small)
        )
    )
    lines.append("statements per tick (big size): count, time in the driver")
    for statement in sorted(big.statements, key=lambda s: -s.seconds):
        lines.append(
            f"  {statement.count:>7,} x {statement.seconds:7.2f} s  {short(statement.key, 110)}"
        )
    return "\n".join(lines)


def short(text: str, width: int) -> str:
    text = shorten_select(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def shorten_select(text: str) -> str:
    """SELECT a.x, a.y, ... FROM -> SELECT <n columns> FROM (the plans keep the full text)."""
    match = re.match(r"SELECT (.*?) FROM ", text)
    if match and len(match.group(1)) > 60:
        count = match.group(1).count(",") + 1
        return f"SELECT <{count} columns> FROM " + text[match.end() :]
    return text


def render_plans(results: list[tuple[str, str, SizeResult, SizeResult]], title: str) -> str:
    out = [f"\n## {title}\n"]
    for backend, facts, big, small in results:
        for result in (big, small):
            out.append(
                f"\n### {backend}, {result.enrolments:,} enrolments: the tick's statements\n"
                f"\n{facts}. Each distinct statement the tick sent (IN lists collapsed), "
                "how often and how long, and its plan for its first parameters on the due "
                "set as the tick found it.\n"
            )
            out += plan_blocks(result.statements)
        out.append(
            f"\n### {backend}, {big.enrolments:,} enrolments: the trigger scan "
            f"(enrol_by_triggers, {big.trigger_seconds:.2f} s)\n"
        )
        out += plan_blocks(big.trigger_statements)
        if big.profile:
            out.append(f"\n### {backend}, {big.enrolments:,} enrolments: cProfile of one tick\n")
            out.append("```\n" + big.profile.strip() + "\n```\n")
    return "".join(out)


def plan_blocks(statements: list[Statement]) -> list[str]:
    blocks = []
    for statement in statements:
        blocks.append(
            f"\n{statement.count:,} x, {statement.seconds:.3f} s: `{shorten_select(statement.key)}`\n"
            f"\n```\n{statement.plan.strip()}\n```\n"
        )
    return blocks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    benchlib.interrupt_on_signals()
    command = ["python", "bench/sequences.py", *(sys.argv[1:] if argv is None else argv)]
    began = time.monotonic()
    results: list[tuple[str, str, SizeResult, SizeResult]] = []
    with benchlib.workspace(args.keep) as folder:
        for backend in args.backends:
            sizes: dict[int, SizeResult] = {}
            facts = ""
            for total in (args.baseline, args.enrolments):
                with database(backend, args, folder / f"{backend}-{total}") as url:
                    facts = server_facts(backend, url)
                    profile = total == args.enrolments and not args.no_profile
                    sizes[total] = measure_size(
                        backend, url, total, args, folder / f"{backend}-{total}", profile
                    )
            results.append((backend, facts, sizes[args.enrolments], sizes[args.baseline]))
    title = (
        f"Sequences tick ({', '.join(args.backends)}){f', {args.label}' if args.label else ''} — "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}"
    )
    figures = "\n\n".join(
        [
            f"scenario: {args.due:,} due steps among {args.enrolments:,} active enrolments, "
            f"baseline the same {args.due:,} among {args.baseline:,}; one nurture campaign "
            f"(4 steps, 4 exit conditions), one enrolment per contact, {PER_COMPANY} contacts "
            f"per company; tick = network_anim.campaigns.sequences.tick(app"
            f"{'' if args.batch is None else f', batch={args.batch}'}), median of {args.runs}, "
            "due set reset between ticks; parts timed by wrapping the sequences functions, "
            "'other' = session, commit and glue",
            *(render_backend(b, f, big, small, args.due) for b, f, big, small in results),
            f"bench wall time: {time.monotonic() - began:.0f} s",
        ]
    )
    print(figures)
    plans = render_plans(results, title)
    if args.out == "-":
        print(plans)
        return 0
    PLANS.parent.mkdir(parents=True, exist_ok=True)
    if not PLANS.exists():
        PLANS.write_text(
            "# Sequences benchmark: statements, plans and profiles\n\n"
            "Written by `bench/sequences.py` (one dated section per run; the figures are in "
            "[bench-log/sequences.md](bench-log/sequences.md)).\n",
            encoding="utf-8",
        )
    with PLANS.open("a", encoding="utf-8") as handle:
        handle.write(plans)
    anchor = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
    benchlib.append_benchmarks(
        title.split(" — ")[0],
        command,
        figures,
        notes=f"Statements with their plans{'' if args.no_profile else ', and a profile of one tick'}: "
        f"[bench-sequences-plans.md, {title}](../bench-sequences-plans.md#{anchor}).",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
