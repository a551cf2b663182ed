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

The challenge is then synced as the daemon does at start (``sync_challenges``: its
running totals are built from the ledger, timed). The bench times, as the portal calls
them (``network_anim.challenges.leaderboard.leaderboard``, one session each, rows
converted, movement joined from a week-old snapshot): the individual top 50, the five
around a mid-table participant, the team top 50 (one team per company, average per
member) and the month and week top 50, each the median of ``--runs`` runs after one
warm-up, next to the plain ``SELECT contact_id, SUM(points) FROM ledgerentry WHERE
challenge_key=... GROUP BY contact_id ORDER BY 2 DESC LIMIT 50`` of the same run
(speed-up = plain / leaderboard; target: <= 20 ms and >= 50 x).

Then it writes through the engine's own functions: ``--writes`` pending sales approved
by the manager's review (``awarding.review``), manual adjustments up and down
(``ledger.credit`` / ``debit``), the expiry of a third of the approved credits
(``ledger.expire_due``) and a re-scoring after a rule change (``rescoring.recompute``,
whose compensating entries land on every approved sale); and ``totals.differences``
(``netanim challenge verify``) compares the running totals with the ledger: 0 expected.
It shows ``EXPLAIN (ANALYZE, BUFFERS)`` of the top 50 and "around me" statements and
records the run in docs/bench-log/leaderboard.md, newest first.

Example::

    python bench/leaderboard.py                       # 100,000 participants, 5,000,000 entries
    python bench/leaderboard.py --participants 10000 --entries 500000 --out -   # quick look
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import REPO, append_benchmarks, throwaway_postgres

CHALLENGE = "bench"
# The challenge runs from 4 January; "now" is mid-March (a Wednesday, 15:00 UTC).
START = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
NOW = datetime(2027, 3, 17, 15, 0, tzinfo=UTC)


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
        "--writes",
        type=int,
        default=2_000,
        help="sales approved through the review, then adjusted, expired and re-scored "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--out",
        choices=("log", "-"),
        default="log",
        help="'log': record the run in docs/bench-log/leaderboard.md (newest first); "
        "'-': print only",
    )
    args = parser.parse_args(argv)
    if args.participants < 100 or args.entries < 1000 or args.runs < 1:
        parser.error("at least 100 participants, 1000 entries and 1 run")
    return args


def _admin_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


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


# -- the engine -----------------------------------------------------------------------------


def make_app(url: str, points_per_unit: int = 1) -> Any:
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
        scoring=Scoring(points_per_unit=points_per_unit),
    )
    loaded = LoadedConfig(config=Config(challenges=(challenge,)), path=None, base_dir=REPO)
    return App(loaded=loaded, definitions={}, database_url=url, clock=SimulatedClock(NOW))


def vacuum(url: str, *tables: str) -> None:
    import psycopg

    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE " + ", ".join(tables))


# -- measuring ------------------------------------------------------------------------------

PLAIN = "plain SUM ... GROUP BY top 50 (reference)"


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
        PLAIN: plain,
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
        print(f"  {label:<42} {seconds * 1000:9.2f} ms  ({len(rows)} rows)", flush=True)
    return results


def explain(app: Any, **kwargs: Any) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the ranking statement the leaderboard sends."""
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


# -- writing through the engine, then verifying ---------------------------------------------


def write_and_verify(app: Any, url: str, writes: int) -> dict[str, Any]:
    """Approvals, adjustments, expiry and a re-scoring through the engine's functions,
    then the totals compared with the ledger."""
    from sqlalchemy import insert, select, update
    from sqlmodel import Session

    from network_anim.challenges import totals
    from network_anim.challenges.awarding import review
    from network_anim.challenges.ledger import credit, debit, expire_due
    from network_anim.challenges.rescoring import recompute
    from network_anim.db.models import Contact, LedgerEntry, Participant, Sale

    pick = random.Random(7)
    figures: dict[str, Any] = {}
    with Session(app.engine) as session, session.begin():
        people = session.execute(
            select(Contact.id, Contact.company_id).join(
                Participant,
                Participant.contact_id == Contact.id,  # type: ignore[arg-type]
            )
        ).all()
        chosen = pick.sample(people, min(writes, len(people)))
        sold = NOW - timedelta(days=3)
        session.execute(
            insert(Sale),
            [
                {
                    "company_id": company_id,
                    "contact_id": contact_id,
                    "invoice_ref": f"BENCH-{index:06d}",
                    "product": "",
                    "quantity": float(pick.randint(1, 20)),
                    "amount": 100.0,
                    "status": "pending",
                    "sold_at": sold,
                    "created_at": sold,
                    "source": "bench",
                }
                for index, (contact_id, company_id) in enumerate(chosen)
            ],
        )
        sale_ids = list(session.scalars(select(Sale.id).where(Sale.source == "bench")))

    began = time.perf_counter()
    for start in range(0, len(sale_ids), 100):
        review(app, sale_ids[start : start + 100], approve=True, actor="bench")
    seconds = time.perf_counter() - began
    figures["approvals"] = (len(sale_ids), seconds)

    began = time.perf_counter()
    adjusted = 0
    for index, (contact_id, _) in enumerate(chosen[: max(1, len(chosen) // 4)]):
        with Session(app.engine) as session, session.begin():
            common = {
                "contact_id": contact_id,
                "kind": "adjust",
                "source_key": f"manual:bench-{index}",
                "now": NOW,
                "actor": "bench",
                "reason": "bench adjustment",
                "challenge_key": CHALLENGE,
            }
            if index % 2:
                entry = debit(session, points=pick.randint(1, 30), partial=True, **common)
            else:
                entry = credit(session, points=pick.randint(1, 30), **common)
            adjusted += entry is not None
    figures["adjustments"] = (adjusted, time.perf_counter() - began)

    with Session(app.engine) as session, session.begin():
        session.execute(
            update(LedgerEntry)
            .where(LedgerEntry.source_key.like("sale:%"), LedgerEntry.id % 3 == 0)  # type: ignore[union-attr,operator]
            .values(expires_at=NOW - timedelta(hours=1))
        )
        began = time.perf_counter()
        expired = expire_due(session, NOW)
    figures["expiry"] = (expired, time.perf_counter() - began)

    began = time.perf_counter()
    rescored = recompute(make_app(url, points_per_unit=2), CHALLENGE, actor="bench")
    figures["recompute"] = (
        rescored.changed_sales,
        rescored.points_delta,
        time.perf_counter() - began,
    )

    began = time.perf_counter()
    with Session(app.engine) as session:
        found = totals.differences(session, CHALLENGE, app.config.engine.timezone)
    figures["verify"] = (len(found), time.perf_counter() - began)
    figures["differences"] = [d.as_dict() for d in found[:10]]
    return figures


# -- report ---------------------------------------------------------------------------------


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
            "pg_size_pretty(pg_indexes_size('ledgerentry')), "
            "pg_size_pretty(pg_total_relation_size('challengetotal')), "
            "(SELECT count(*) FROM challengetotal), (SELECT count(*) FROM companytotal)"
        ).fetchone()
    return (
        f"PostgreSQL {version} ({settings})",
        f"ledger table {sizes[0]}, its indexes {sizes[1]}; running totals {sizes[3]:,} "  # type: ignore[index]
        f"participant rows ({sizes[2]} with indexes), {sizes[4]:,} company rows",  # type: ignore[index]
    )


TARGET_MS, TARGET_SPEEDUP = 20.0, 50.0


def render(report: dict[str, Any]) -> str:
    results: dict[str, tuple[float, int]] = report["results"]
    plain = results[PLAIN][0]
    lines = [
        f"data: {report['participants']:,} participants in {report['companies']:,} companies, "
        f"{report['entries']:,} ledger entries ({report['challenge_entries']:,} for the "
        "challenge)",
        f"      {report['sizes']}",
        f"      {report['postgres']}",
        "generation: " + "; ".join(f"{k} {v:.1f} s" for k, v in report["generation"].items()),
        f"timings: median of {report['runs']} runs after one warm-up; speed-up = plain / "
        f"leaderboard; target <= {TARGET_MS:.0f} ms and >= {TARGET_SPEEDUP:.0f} x",
        "",
        f"{'query':<42} {'median':>11} {'speed-up':>10}  verdict",
    ]
    met = True
    for label, (seconds, rows) in results.items():
        if label == PLAIN:
            lines.append(
                f"{label:<42} {seconds * 1000:8.1f} ms {'x1':>10}  (baseline, {rows} rows)"
            )
            continue
        speedup = plain / seconds
        ok = seconds * 1000 <= TARGET_MS and speedup >= TARGET_SPEEDUP
        met &= ok
        lines.append(
            f"{label:<42} {seconds * 1000:8.2f} ms {f'x{speedup:,.0f}':>10}  "
            f"{'MET' if ok else 'NOT MET'} ({rows} rows)"
        )
    writes = report["writes"]
    count, seconds = writes["approvals"]
    lines += [
        "",
        f"writes through the engine: {count:,} sales approved by review() in {seconds:.1f} s "
        f"({count / seconds:,.0f}/s, totals kept in each entry's transaction)",
        "  {:,} manual adjustments (credit/debit) in {:.1f} s; expire_due: {:,} points in "
        "{:.2f} s; recompute x2 rules: {:,} sales re-scored, {:+,} points in {:.1f} s".format(
            *writes["adjustments"], *writes["expiry"], *writes["recompute"]
        ),
        "verify (totals.differences, ledger vs running totals): {:,} differences in "
        "{:.1f} s".format(*writes["verify"]),
        "",
        f"verdict: {'MET' if met and writes['verify'][0] == 0 else 'NOT MET'}; peak RSS "
        f"{report['rss_end']:.0f} MB; run {report['elapsed']:.0f} s, load average at the "
        f"start {report['load']:.2f}",
    ]
    for difference in writes["differences"]:
        lines.append(f"  difference: {difference}")
    return "\n".join(lines)


def render_plans(plans: list[tuple[str, str]]) -> str:
    parts = []
    for title, plan in plans:
        parts += [f"EXPLAIN (ANALYZE, BUFFERS), {title}:", "", "```", plan, "```", ""]
    return "\n".join(parts)


# -- main -----------------------------------------------------------------------------------


def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    from network_anim.challenges.leaderboard import take_snapshot
    from network_anim.challenges.upkeep import sync_challenges
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

    app = make_app(url)
    try:
        started = time.perf_counter()
        sync_challenges(app)  # builds the running totals, as the daemon's start does
        vacuum(url, "challengetotal", "companytotal", "challenge")
        generation["sync_challenges (running totals built from the ledger)"] = (
            time.perf_counter() - started
        )
        # A previous digest's ranks, so the movement join has real work to do.
        started = time.perf_counter()
        stored = take_snapshot(app, CHALLENGE, "individual", NOW - timedelta(days=7))
        generation[f"take_snapshot individual ({stored:,} rows)"] = time.perf_counter() - started
        take_snapshot(app, CHALLENGE, "team", NOW - timedelta(days=7))
        vacuum(url, "leaderboardsnapshot")
        with app.engine.connect() as conn:
            viewer = conn.exec_driver_sql(
                "SELECT external_id FROM contact ORDER BY id OFFSET %(n)s LIMIT 1",
                {"n": args.participants // 3},
            ).scalar_one()
            challenge_entries = conn.exec_driver_sql(
                "SELECT count(*) FROM ledgerentry WHERE challenge_key = %(k)s", {"k": CHALLENGE}
            ).scalar_one()
        postgres, sizes = pg_facts(url)
        print("leaderboards:", flush=True)
        results = measure(app, args.runs, viewer)
        plans = [
            ("individual top 50", explain(app, limit=50)),
            ("around me", explain(app, around=viewer)),
        ]
        print(f"writing ({args.writes:,} approvals, adjustments, expiry, recompute)...", flush=True)
        writes = write_and_verify(app, url, args.writes)
    finally:
        app.close()
    return {
        "participants": args.participants,
        "companies": max(1, args.participants // 50),
        "entries": args.entries,
        "challenge_entries": challenge_entries,
        "postgres": postgres,
        "sizes": sizes,
        "generation": generation,
        "runs": args.runs,
        "results": results,
        "plans": plans,
        "writes": writes,
        "rss_end": peak_rss_mb(),
        "elapsed": time.perf_counter() - began,
        "load": load,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with throwaway_postgres(args.pg) as url:
        print(f"throwaway database {url.rsplit('/', 1)[1]}", flush=True)
        report = run(args, url)
    figures = render(report)
    print(figures)
    if args.out == "log":
        append_benchmarks(
            "Challenge leaderboards on running totals",
            ["python", "bench/leaderboard.py", *(argv if argv is not None else sys.argv[1:])],
            figures,
            notes=render_plans(report["plans"]),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
