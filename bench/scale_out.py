#!/usr/bin/env python3
"""Scale-out bench: 1, 2 and 3 daemons on one PostgreSQL drain the same outbox.

Issue 7, benchmark 5: "1, 2 and 3 daemons on one PostgreSQL draining the same
30,000-message outbox into smtp-sink: throughput ratio 2/1 and 3/1, duplicates (must be
0)." Postfix's ``smtp-sink`` (C, never the limit here: see ``bench/email_dispatch.py``)
counts what it receives (``-c``).

A throwaway PostgreSQL database gets a network of N contacts and N queued operational
emails (the planner, as ``netanim broadcast`` would). For each daemon count, each round:
the outbox goes back to ``pending`` (events deleted), a fresh counting sink starts, the
daemons start (``python -m network_anim daemon CONFIG``, ``dispatch_seconds = 0.2``), and
the bench polls the outbox until every row is ``sent``; then SIGTERM. Throughput = N /
(last row recorded − first message at the sink), so the daemons' start-up is outside it.
Duplicates = messages the sink received − N; each row must have been claimed once.
Rounds alternate the daemon counts (1, 2, 3, 1, 2, 3...) so load drifts hit each alike.
``--max-unrecorded`` sets ``[channels.email] max_unrecorded`` (default 1: a crash resends
at most one email per daemon).

Example::

    python bench/scale_out.py                           # 30,000 emails, 3 rounds
    python bench/scale_out.py --messages 5000 --runs 1 --no-record
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import benchlib as lib
import psycopg

DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass
class Round:
    daemons: int
    seconds: float
    received: int
    attempts: dict[int, int]
    exit_codes: list[int]
    cpu: lib.CpuSample  # from the first message at the sink to the last row recorded

    @property
    def rate(self) -> float:
        return self.received / self.seconds if self.seconds else 0.0


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Example: python bench/scale_out.py --messages 5000 --runs 1 --no-record",
    )
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--daemons", default="1,2,3", help="daemon counts (1,2,3)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8, help="SMTP sessions per daemon")
    parser.add_argument("--max-unrecorded", type=int, default=1)
    parser.add_argument("--db", default=DEFAULT_DB, help="PostgreSQL admin URL")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per round")
    parser.add_argument("--no-record", action="store_true", help="do not append to BENCHMARKS.md")
    parser.add_argument("--keep", action="store_true")
    return parser.parse_args()


def one_round(
    n: int, args: argparse.Namespace, config: Path, folder: Path, db_url: str, rows: int
) -> Round:
    lib.reset_outbox(db_url)
    procs = lib.Processes()
    try:
        sink = lib.start_postfix_sink(procs, folder / f"sink-{n}-{time.monotonic_ns()}.txt")
        round_config = folder / f"netanim-{n}.toml"
        round_config.write_text(config.read_text(encoding="utf-8"), encoding="utf-8")
        _point_at(round_config, sink.port)
        logs = [folder / f"daemon-{n}-{i}.log" for i in range(n)]
        daemons = [procs.start(lib.daemon_argv(round_config), log=log) for log in logs]
        deadline = lib.Deadline(args.timeout)
        first_at: float | None = None
        groups = {"daemons": {proc.pid for proc in daemons}, "sink": {sink.proc.pid}}
        # One connection and an index-only question: the polling must not take CPU from
        # what it measures (a new connection and a count by status of the whole outbox
        # every 50 ms cost a tenth of a core).
        with psycopg.connect(db_url.replace("+psycopg", ""), autocommit=True) as watch:
            while True:
                now = time.monotonic()
                if first_at is None and sink.messages() > 0:
                    first_at, cpu_at_first = now, lib.cpu_sample(groups)
                if first_at is not None and not _unsent(watch):
                    done_at, cpu = now, lib.cpu_sample(groups).since(cpu_at_first)
                    break
                for proc, log in zip(daemons, logs, strict=True):
                    if proc.poll() is not None:
                        raise SystemExit(
                            f"a daemon exited ({proc.returncode}):\n{lib.log_tail(log)}"
                        )
                deadline.check(f"{n} daemon(s) draining the outbox")
                time.sleep(0.05)
        if (statuses := lib.status_counts(db_url)) != {"sent": rows}:
            raise SystemExit(f"the outbox is not all sent: {statuses}")
        exit_codes = procs.terminate_all(daemons)
        time.sleep(0.3)  # the counter file is written when sessions end
        attempts = dict(lib.sql_rows(db_url, "SELECT attempts, count(*) FROM delivery GROUP BY 1"))
        return Round(n, done_at - first_at, sink.messages(), attempts, exit_codes, cpu)
    finally:
        procs.close()


def _unsent(conn: psycopg.Connection[tuple[int]]) -> bool:
    # (status, due_at) index: only the pending and claimed rows are visited.
    query = "SELECT EXISTS (SELECT 1 FROM delivery WHERE status IN ('pending', 'claimed'))"
    row = conn.execute(query).fetchone()
    return bool(row and row[0])


def cpu_table(rounds: list[Round], counts: list[int], rows: int) -> list[str]:
    """Where the CPU went, per daemon count (medians over the rounds), and what that
    allows: at one daemon's cost per message, the whole machine would send at most
    rate / busy share; more daemons cannot go beyond it (their cost per message only
    grows with contention)."""
    lines = [
        "| daemons | machine busy | CPU ms/msg: daemons | PostgreSQL | sink | rest (kernel, "
        "bench) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    share: dict[int, float] = {}
    for n in counts:
        mine = [r.cpu for r in rounds if r.daemons == n]
        share[n] = statistics.median(c.busy / c.total for c in mine)

        def per_message(group: str, samples: list[lib.CpuSample] = mine) -> float:
            return statistics.median(c.groups[group] for c in samples) / rows * 1000

        rest = statistics.median(c.busy - sum(c.groups.values()) for c in mine) / rows * 1000
        lines.append(
            f"| {n} | {share[n]:.0%} | {per_message('daemons'):.2f} | "
            f"{per_message('postgresql'):.2f} | {per_message('sink'):.2f} | {rest:.2f} |"
        )
    one = counts[0]
    rate = statistics.median(r.rate for r in rounds if r.daemons == one)
    lines += [
        "",
        f"ceiling: {one} daemon(s) kept {share[one]:.0%} of the machine busy, so at that cost "
        f"per message the whole machine sends at most {rate / share[one]:,.0f} msg/s, "
        f"x{1 / share[one]:.2f} of {one} daemon(s), whatever the number of daemons",
    ]
    return lines


def _point_at(config: Path, port: int) -> None:
    """The config's SMTP port becomes ``port`` (the round's own sink)."""
    lines = config.read_text(encoding="utf-8").splitlines(keepends=True)
    in_email = False
    for i, line in enumerate(lines):
        if line.startswith("["):
            in_email = line.strip() == "[channels.email]"
        elif in_email and line.startswith("port = "):
            lines[i] = f"port = {port}\n"
    config.write_text("".join(lines), encoding="utf-8")


def main() -> None:
    args = parse()
    lib.check_local_url(args.db)
    lib.interrupt_on_signals()
    counts = [int(v) for v in args.daemons.split(",")]
    started = time.monotonic()
    rounds: list[Round] = []
    with lib.workspace(args.keep) as folder, lib.throwaway_postgres(args.db) as plain_url:
        db_url = plain_url.replace("postgresql://", "postgresql+psycopg://", 1)
        config = lib.write_config(
            folder,
            db_url,
            smtp_port=25,
            concurrency=args.concurrency,
            rate_per_second=1_000_000,
            daemon={"dispatch_seconds": 0.2, "leader_check_seconds": 1},
        )
        text = config.read_text(encoding="utf-8")
        config.write_text(
            text.replace("\nmax_unrecorded = 1\n", f"\nmax_unrecorded = {args.max_unrecorded}\n"),
            encoding="utf-8",
        )
        setup = lib.import_network(config, folder, args.messages)
        planned = lib.plan_emails(config, "scale-out")
        print(
            f"setup: network {setup:.1f} s, {planned.rows} emails queued in {planned.seconds:.1f} s"
        )
        for run in range(args.runs):
            for n in counts:
                result = one_round(n, args, config, folder, db_url, planned.rows)
                rounds.append(result)
                print(
                    f"round {run + 1}, {n} daemon(s): {result.rate:,.0f} msg/s "
                    f"({result.seconds:.1f} s), sink received {result.received}, "
                    f"claims {result.attempts}, exit codes {result.exit_codes}"
                )
    medians = {n: statistics.median(r.rate for r in rounds if r.daemons == n) for n in counts}
    base = medians[counts[0]]
    duplicates = {n: [r.received - planned.rows for r in rounds if r.daemons == n] for n in counts}
    once = all(r.attempts == {1: planned.rows} for r in rounds)
    table = [
        "| daemons | median msg/s | runs | ratio to 1 | duplicates per run |",
        "|---:|---:|---|---:|---|",
        *(
            f"| {n} | {medians[n]:,.0f} | "
            + ", ".join(f"{r.rate:,.0f}" for r in rounds if r.daemons == n)
            + f" | x{medians[n] / base:.2f} | {duplicates[n]} |"
            for n in counts
        ),
    ]
    top = counts[-1]
    figures = "\n".join(
        [
            f"backend: PostgreSQL (one server, 127.0.0.1); {planned.rows} emails; SMTP sessions "
            f"per daemon: {args.concurrency}; max_unrecorded: {args.max_unrecorded}; sink: "
            f"smtp-sink -c -u nobody 127.0.0.1:PORT 1024; {args.runs} rounds",
            "",
            *table,
            "",
            *cpu_table(rounds, counts, planned.rows),
            "",
            f"every row claimed exactly once in every round: {'yes' if once else 'NO'}",
            f"target {top} daemons >= 2 x one: "
            f"{'OK' if medians[top] >= 2 * base else 'NOT MET'} (x{medians[top] / base:.2f}); "
            f"duplicates: {'0' if not any(any(d) for d in duplicates.values()) else 'SOME'}",
            f"bench wall time: {time.monotonic() - started:.0f} s",
        ]
    )
    print(figures)
    if not args.no_record:
        lib.append_benchmarks("Scale-out on PostgreSQL", ["python", *sys.argv], figures)


if __name__ == "__main__":
    main()
