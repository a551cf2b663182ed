#!/usr/bin/env python3
"""Leaderboard benchmark (PostgreSQL only): how long the challenge leaderboards take on
a big ledger, against the plain aggregate they are built on.

It creates a throwaway database next to ``--pg`` (dropped at the end, even on failure),
migrates it, then generates:

* companies and contacts (``--participants``, about 50 per company) with COPY, every
  contact a participant of the challenge (1 in 37 opted out of public ranking);
* ``--entries`` ledger entries server-side (``INSERT ... SELECT generate_series``), in
  time order like an append-only ledger: 85 % for the challenge (earn 70 %, bonus 10 %,
  adjust 5 %), 10 % for another challenge, 5 % redemptions and expiry without a
  challenge; contacts skewed (a few very active, 10 % of participants without any entry).

Then it times, as the portal would call them (``network_anim.challenges.leaderboard``, one session
each, rows converted): the individual top 50, the five around a mid-table participant,
the team top 50 (one team per company, average per member) and the month and week views,
each the median of ``--runs`` runs after one warm-up, next to the plain
``SELECT contact_id, SUM(points) FROM ledgerentry WHERE challenge_key=... GROUP BY
contact_id ORDER BY 2 DESC LIMIT 50`` (ratio = leaderboard / plain). It does so on the
schema as migrated, then again with candidate indexes created in the throwaway database
only, shows ``EXPLAIN (ANALYZE, BUFFERS)`` of the main query, the peak RSS of this
process (``resource.getrusage``), and appends the figures to docs/bench-log/leaderboard.md.

Example::

    python bench/leaderboard.py                       # 100,000 participants, 5,000,000 entries
    python bench/leaderboard.py --participants 10000 --entries 500000 --out -   # quick look
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO / "docs" / "bench-log" / "leaderboard.md"
CHALLENGE = "bench"
# The challenge runs from 4 January; "now" is mid-March (a Wednesday, 15:00 UTC).
START = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
NOW = datetime(2027, 3, 17, 15, 0, tzinfo=UTC)

# Indexes tried on top of the migrated schema, cumulatively (throwaway database only).
CANDIDATE_INDEXES: list[tuple[str, str]] = [
    (
        "+ covering",
        "CREATE INDEX bench_ix_ledger_challenge_cover ON ledgerentry "
        "(challenge_key, contact_id) INCLUDE (kind, points, created_at)",
    ),
    (
        "+ covering + period",
        "CREATE INDEX bench_ix_ledger_challenge_time ON ledgerentry "
        "(challenge_key, created_at) INCLUDE (contact_id, kind, points)",
    ),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Example: python bench/leaderboard.py --runs 3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--pg",
        default=os.environ.get("NETANIM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"),
        help="an existing PostgreSQL database to connect to; the bench creates and drops "
        "its own next to it (default: $NETANIM_TEST_PG or %(default)s)",
    )
    parser.add_argument("--participants", type=int, default=100_000, help="default %(default)s")
    parser.add_argument("--entries", type=int, default=5_000_000, help="default %(default)s")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per query (median)")
    parser.add_argument(
        "--no-indexes", action="store_true", help="only the schema as migrated (faster)"
    )
    parser.add_argument(
        "--out",
        default=str(BENCHMARKS),
        help="Markdown file the section is appended to ('-': print only; default %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.participants < 100 or args.entries < 1000 or args.runs < 1:
        parser.error("at least 100 participants, 1000 entries and 1 run")
    return args


# -- the throwaway database -----------------------------------------------------------------


def _admin_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def create_database(admin: str) -> tuple[str, str]:
    import psycopg

    name = f"netanim_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"{admin.rsplit('/', 1)[0]}/{name}"


def drop_database(admin: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- data -----------------------------------------------------------------------------------


def _copy(conn: Any, table: Any, rows: Iterator[dict[str, Any]]) -> int:
    """COPY rows into a table, filling the columns' Python-side defaults (no server ones)."""
    columns = [c for c in table.columns if c.name != "id"]
    defaults = {
        c.name: c.default.arg for c in columns if c.default is not None and c.default.is_scalar
    }
    names = [c.name for c in columns]
    count = 0
    with (
        conn.cursor() as cursor,
        cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row([row.get(n, defaults.get(n)) for n in names])
            count += 1
    return count


def generate(url: str, participants: int, entries: int) -> dict[str, float]:
    import psycopg

    from network_anim.db.models import Company, Contact, Participant

    naive = NOW.replace(tzinfo=None) - timedelta(days=90)  # UTCDateTime stores naive UTC
    companies = max(1, participants // 50)
    timings: dict[str, float] = {}
    with psycopg.connect(_admin_url(url)) as conn:
        conn.execute("SET synchronous_commit = off")
        began = time.perf_counter()
        _copy(
            conn,
            Company.__table__,  # type: ignore[attr-defined]
            (
                {
                    "external_id": f"B{i:05d}",
                    "name": f"Partenaire {i:05d}",
                    "created_at": naive,
                    "updated_at": naive,
                }
                for i in range(1, companies + 1)
            ),
        )
        company_ids = [r[0] for r in conn.execute("SELECT id FROM company ORDER BY id")]
        _copy(
            conn,
            Contact.__table__,  # type: ignore[attr-defined]
            (
                {
                    "external_id": f"K{i:06d}",
                    "company_id": company_ids[i % companies],
                    "first_name": f"Prénom{i % 997}",
                    "last_name": f"Nom{i:06d}",
                    "level": "seller",
                    "created_at": naive,
                    "updated_at": naive,
                }
                for i in range(1, participants + 1)
            ),
        )
        first_contact = conn.execute("SELECT min(id) FROM contact").fetchone()[0]  # type: ignore[index]
        _copy(
            conn,
            Participant.__table__,  # type: ignore[attr-defined]
            (
                {
                    "challenge_key": CHALLENGE,
                    "contact_id": first_contact + i,
                    "registered_at": naive,
                    "via": "automatic",
                    "public": i % 37 != 0,
                }
                for i in range(participants)
            ),
        )
        conn.commit()
        timings["companies, contacts, participants (COPY)"] = time.perf_counter() - began

        began = time.perf_counter()
        active = int(participants * 0.9)
        span = (NOW - START).total_seconds()
        conn.execute(
            """
            INSERT INTO ledgerentry
                (contact_id, challenge_key, kind, points, remaining, source_key, actor,
                 reason, created_at)
            SELECT c,
                   CASE WHEN r < 0.85 THEN %(challenge)s WHEN r < 0.95 THEN 'other' END,
                   CASE WHEN r < 0.70 THEN 'earn' WHEN r < 0.80 THEN 'bonus'
                        WHEN r < 0.85 THEN 'adjust' WHEN r < 0.95 THEN 'earn'
                        WHEN r < 0.98 THEN 'redeem' ELSE 'expire' END,
                   CASE WHEN r < 0.70 THEN 10 + (p * 200)::int
                        WHEN r < 0.80 THEN 50 + (p * 100)::int
                        WHEN r < 0.85 THEN (p * 40)::int - 20
                        WHEN r < 0.95 THEN 10 + (p * 200)::int
                        ELSE -(10 + (p * 900)::int) END,
                   0, 'bench:' || g, 'system', '',
                   %(start)s + make_interval(secs => (g::float8 / %(n)s) * %(span)s)
            FROM (
                SELECT g, random() AS r, random() AS p,
                       %(first)s + floor(random() ^ 2 * %(active)s)::int AS c
                FROM generate_series(1, %(n)s) AS g
            ) AS generated
            """,
            {
                "challenge": CHALLENGE,
                "start": START.replace(tzinfo=None),
                "n": entries,
                "span": span,
                "first": first_contact,
                "active": active,
            },
        )
        conn.commit()
        timings["ledger entries (INSERT ... SELECT generate_series)"] = time.perf_counter() - began
    began = time.perf_counter()
    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    timings["VACUUM ANALYZE"] = time.perf_counter() - began
    return timings


# -- measuring ------------------------------------------------------------------------------


def make_app(url: str) -> Any:
    from network_anim.app import App
    from network_anim.clock import SimulatedClock
    from network_anim.config.settings import ChallengeConfig, Config, LoadedConfig, Scoring

    challenge = ChallengeConfig(
        id=CHALLENGE,
        name="Bench challenge",
        audience="all",
        start=date(2027, 1, 4),
        end=date(2027, 4, 30),
        team_ranking="average",
        scoring=Scoring(points_per_unit=1),
    )
    loaded = LoadedConfig(config=Config(challenges=(challenge,)), path=None, base_dir=REPO)
    return App(loaded=loaded, definitions={}, database_url=url, clock=SimulatedClock(NOW))


def median_seconds(call: Callable[[], Any], runs: int) -> tuple[float, Any]:
    result = call()  # warm-up: caches, connection pool, plans
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def measure(app: Any, runs: int, viewer: str) -> dict[str, tuple[float, int]]:
    from network_anim.challenges.leaderboard import leaderboard

    plain_sql = (
        "SELECT contact_id, SUM(points) FROM ledgerentry WHERE challenge_key = %(key)s "
        "GROUP BY contact_id ORDER BY 2 DESC LIMIT 50"
    )

    def plain() -> list[Any]:
        with app.engine.connect() as conn:
            return conn.exec_driver_sql(plain_sql, {"key": CHALLENGE}).all()

    calls: dict[str, Callable[[], Any]] = {
        "plain SQL top 50 (reference)": plain,
        "individual top 50": lambda: leaderboard(app, CHALLENGE, now=NOW, limit=50),
        "individual around me (5 rows)": lambda: leaderboard(
            app, CHALLENGE, now=NOW, around=viewer
        ),
        "team top 50 (average)": lambda: leaderboard(
            app, CHALLENGE, scope="team", now=NOW, limit=50
        ),
        "individual top 50, month": lambda: leaderboard(
            app, CHALLENGE, period="month", now=NOW, limit=50
        ),
        "individual top 50, week": lambda: leaderboard(
            app, CHALLENGE, period="week", now=NOW, limit=50
        ),
    }
    results: dict[str, tuple[float, int]] = {}
    for label, call in calls.items():
        seconds, rows = median_seconds(call, runs)
        results[label] = (seconds, len(rows))
        print(f"  {label:<34} {seconds * 1000:9.1f} ms  ({len(rows)} rows)", flush=True)
    return results


def explain(app: Any, **kwargs: Any) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the exact statement the leaderboard sends."""
    from sqlalchemy import event

    from network_anim.challenges.leaderboard import leaderboard

    sent: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "rank()" in statement.lower():
            sent.append((statement, parameters))

    event.listen(app.engine, "before_cursor_execute", record)
    try:
        leaderboard(app, CHALLENGE, now=NOW, **kwargs)
    finally:
        event.remove(app.engine, "before_cursor_execute", record)
    statement, parameters = sent[-1]
    with app.engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        return "\n".join(row[0] for row in plan)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# -- report ---------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPU ({cpu}), {ram} RAM, {platform.system()} {platform.release()}"


def pg_facts(url: str) -> tuple[str, str]:
    import psycopg

    with psycopg.connect(_admin_url(url)) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        settings = ", ".join(
            f"{name}={conn.execute(f'SHOW {name}').fetchone()[0]}"  # type: ignore[index]
            for name in ("shared_buffers", "work_mem", "max_parallel_workers_per_gather")
        )
        sizes = conn.execute(
            "SELECT pg_size_pretty(pg_table_size('ledgerentry')), "
            "pg_size_pretty(pg_indexes_size('ledgerentry'))"
        ).fetchone()
    return f"PostgreSQL {version} ({settings})", f"table {sizes[0]}, indexes {sizes[1]}"  # type: ignore[index]


def index_size(url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(_admin_url(url)) as conn:
        return conn.execute(  # type: ignore[index]
            "SELECT pg_size_pretty(pg_relation_size(%s::regclass))", (name,)
        ).fetchone()[0]


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def render(report: dict[str, Any]) -> str:
    variants: list[tuple[str, dict[str, tuple[float, int]], float]] = report["variants"]
    labels = list(variants[0][1])
    lines = [
        "",
        f"## Challenge leaderboard ({report['date']})",
        "",
        f"- Command: `{report['command']}` (commit {report['commit']})",
        f"- Machine: {report['machine']}; {report['postgres']}",
        f"- Data: {report['participants']:,} participants in {report['companies']:,} "
        f"companies, {report['entries']:,} ledger entries "
        f"({report['challenge_entries']:,} for the challenge); ledger {report['sizes']}",
        "- Generation: " + "; ".join(f"{k} {v:.1f} s" for k, v in report["generation"].items()),
        f"- Timings: median of {report['runs']} runs after one warm-up, as the portal calls "
        "`network_anim.challenges.leaderboard.leaderboard()` (session, query, rows converted); "
        "ratio = leaderboard / plain `SELECT contact_id, SUM(points) ... GROUP BY "
        "contact_id ORDER BY 2 DESC LIMIT 50` measured in the same run.",
        f"- Peak RSS of the bench process: {report['rss_after_load']:.0f} MB after "
        f"generation, {report['rss_end']:.0f} MB at the end (rows never come to Python).",
        f"- Total run time: {report['elapsed']:.0f} s; load average when it started "
        f"{report['load']:.2f} (other work on the machine shows as noise).",
        "",
        "| query | " + " | ".join(name for name, _, _ in variants) + " |",
        "|---|" + "---:|" * len(variants),
    ]
    for label in labels:
        cells = []
        for _, results, _ in variants:
            seconds = results[label][0]
            plain = results["plain SQL top 50 (reference)"][0]
            ratio = "" if label.startswith("plain") else f" (x{seconds / plain:.2f})"
            cells.append(f"{seconds * 1000:,.0f} ms{ratio}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if len(variants) > 1:
        lines += ["", "Indexes tried, cumulatively, in the throwaway database only:", ""]
        for (label, ddl), (_, size), (_, _, seconds) in zip(
            CANDIDATE_INDEXES, report["index_sizes"], variants[1:], strict=True
        ):
            lines.append(f"- {label}: `{ddl}` ({size}, built in {seconds:.1f} s)")
    for title, plan in report["plans"]:
        lines += ["", f"EXPLAIN (ANALYZE, BUFFERS), {title}:", "", "```", plan, "```"]
    return "\n".join(lines) + "\n"


def append(out: str, text: str) -> None:
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # create with a header only if nobody else did first
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="utf-8") as header:
            header.write(
                "# Benchmarks\n\nFigures measured by the scripts in `bench/`; each section "
                "names its command, date and machine. Newest sections are appended.\n"
            )
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


# -- main -----------------------------------------------------------------------------------


def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    from network_anim.challenges.leaderboard import take_snapshot
    from network_anim.db.engine import make_engine
    from network_anim.db.migrate import upgrade

    began = time.perf_counter()
    load = os.getloadavg()[0]
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    print(f"generating {args.participants:,} participants, {args.entries:,} entries...", flush=True)
    generation = generate(url, args.participants, args.entries)
    for step, seconds in generation.items():
        print(f"  {step}: {seconds:.1f} s", flush=True)
    rss_after_load = peak_rss_mb()

    app = make_app(url)
    try:
        # A previous digest's ranks, so the movement join has real work to do.
        snapshot_started = time.perf_counter()
        stored = take_snapshot(app, CHALLENGE, "individual", NOW - timedelta(days=7))
        generation[f"take_snapshot individual ({stored:,} rows)"] = (
            time.perf_counter() - snapshot_started
        )
        take_snapshot(app, CHALLENGE, "team", NOW - timedelta(days=7))
        with app.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE leaderboardsnapshot")
            conn.commit()
            viewer = conn.exec_driver_sql(
                "SELECT external_id FROM contact ORDER BY id OFFSET %(n)s LIMIT 1",
                {"n": args.participants // 3},
            ).scalar_one()
            challenge_entries = conn.exec_driver_sql(
                "SELECT count(*) FROM ledgerentry WHERE challenge_key = %(k)s", {"k": CHALLENGE}
            ).scalar_one()
        postgres, sizes = pg_facts(url)

        variants: list[tuple[str, dict[str, tuple[float, int]], float]] = []
        plans: list[tuple[str, str]] = []
        print("schema as migrated:", flush=True)
        variants.append(("schema as migrated", measure(app, args.runs, viewer), 0.0))
        plans.append(("individual top 50, schema as migrated", explain(app, limit=50)))
        plans.append(("around me, schema as migrated", explain(app, around=viewer)))
        index_sizes: list[tuple[str, str]] = []
        if not args.no_indexes:
            for label, ddl in CANDIDATE_INDEXES:
                started = time.perf_counter()
                with app.engine.connect() as conn:
                    conn.exec_driver_sql(ddl)
                    conn.commit()
                with app.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                    c.exec_driver_sql("VACUUM ANALYZE ledgerentry")
                created = time.perf_counter() - started
                name = ddl.split()[2]
                index_sizes.append((name, index_size(url, name)))
                print(f"{label} (created in {created:.1f} s):", flush=True)
                variants.append((label, measure(app, args.runs, viewer), created))
            plans.append(("individual top 50, with both indexes", explain(app, limit=50)))
            plans.append(
                (
                    "individual top 50 of the month, with both indexes",
                    explain(app, period="month", limit=50),
                )
            )
    finally:
        app.close()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python bench/leaderboard.py " + " ".join(sys.argv[1:]),
        "commit": git_commit(),
        "machine": machine(),
        "postgres": postgres,
        "participants": args.participants,
        "companies": max(1, args.participants // 50),
        "entries": args.entries,
        "challenge_entries": challenge_entries,
        "sizes": sizes,
        "generation": generation,
        "runs": args.runs,
        "variants": variants,
        "plans": plans,
        "index_sizes": index_sizes,
        "rss_after_load": rss_after_load,
        "rss_end": peak_rss_mb(),
        "elapsed": time.perf_counter() - began,
        "load": load,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    admin = _admin_url(args.pg)
    name, url = create_database(admin)
    print(f"throwaway database {name}", flush=True)
    try:
        report = run(args, url)
    finally:
        drop_database(admin, name)
        print(f"dropped {name}", flush=True)
    text = render(report)
    print(text)
    if args.out != "-":
        append(args.out, text)
        print(f"appended to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
