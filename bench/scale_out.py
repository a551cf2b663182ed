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

Issue 18, point 3: scale-out where the relay is the limit. ``--relay-delay-ms D``
(default 20) puts a relay's latency where a relay spends it: the sink
(``bench/smtp_sink.py --delay-ms D --pipelining``, asyncio, each session waiting on its
own) answers each message's final ``.`` with ``250 queued`` D ms later. One session then
sends at most 1000 / D messages a second, so one daemon sends at most
min(concurrency, max_unrecorded) × 1000 / D: the transport holds one of its
``max_unrecorded`` permits from a message's final ``.`` until its result is recorded,
which covers the relay's delay (the bench prints that prediction). Without ``--messages``,
the outbox holds about 25 s of one daemon at that pace. The sink also checks that every
queued Message-ID arrived. ``--relay-delay-ms 0`` is the earlier bench: Postfix's
``smtp-sink`` answering at once, 30,000 emails (``--sink python`` takes ours instead).

Example::

    python bench/scale_out.py                           # relay delay 20 ms, 3 rounds
    python bench/scale_out.py --max-unrecorded 8        # 8 sessions overlap the delay
    python bench/scale_out.py --relay-delay-ms 0        # smtp-sink, 30,000 emails
    python bench/scale_out.py --messages 5000 --runs 1 --no-record
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import benchlib as lib
import psycopg

DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
# Without --messages and with a relay delay: this long for one daemon at its predicted pace,
# and at least this many times the rows all daemons hold at once (each holds the batch it
# sends and the one it claimed ahead: the last one may still send two batches when the
# others find nothing left, a tail of 2 x batch_size / its pace).
_ONE_DAEMON_SECONDS = 25.0
_HELD_TIMES = 5


@dataclass
class Round:
    daemons: int
    seconds: float
    received: int
    attempts: dict[int, int]
    exit_codes: list[int]
    cpu: lib.CpuSample  # from the first message at the sink to the last row recorded
    missing: int = 0  # queued Message-IDs the sink never saw (our sink only)
    middle: float = 0.0  # msg/s from the 10% to the 90% of the messages at the sink

    @property
    def rate(self) -> float:
        return self.received / self.seconds if self.seconds else 0.0


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Example: python bench/scale_out.py --messages 5000 --runs 1 --no-record",
    )
    parser.add_argument(
        "--messages",
        type=int,
        help="emails queued (default: 30,000 without relay delay, else about "
        f"{_ONE_DAEMON_SECONDS:.0f} s of one daemon at the pace the delay allows, and "
        f"{_HELD_TIMES} x the rows the daemons hold at once)",
    )
    parser.add_argument("--daemons", default="1,2,3", help="daemon counts (1,2,3)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8, help="SMTP sessions per daemon")
    parser.add_argument("--max-unrecorded", type=int, default=1)
    parser.add_argument(
        "--batch-size", type=int, default=200, help="[daemon] batch_size (200, the default)"
    )
    parser.add_argument(
        "--relay-delay-ms",
        type=float,
        default=20.0,
        help="ms the sink waits after each message's final '.' before its 250 (20; 0: none)",
    )
    parser.add_argument(
        "--sink",
        choices=["auto", "postfix", "python"],
        default="auto",
        help="auto: Postfix's smtp-sink without relay delay, bench/smtp_sink.py with one",
    )
    parser.add_argument("--db", default=DEFAULT_DB, help="PostgreSQL admin URL")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per round")
    parser.add_argument("--no-record", action="store_true", help="do not append to the run log")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if args.relay_delay_ms < 0:
        parser.error("--relay-delay-ms must be 0 or more")
    if args.sink == "auto":
        args.sink = "python" if args.relay_delay_ms else "postfix"
    if args.sink == "postfix" and args.relay_delay_ms:
        parser.error("smtp-sink cannot wait milliseconds (its -w takes seconds): --sink python")
    return args


def per_daemon_ceiling(args: argparse.Namespace) -> float | None:
    """What the relay's delay allows one daemon, msg/s: its sessions each wait the delay
    per message, and no more than max_unrecorded of them wait at once."""
    if not args.relay_delay_ms:
        return None
    return min(args.concurrency, args.max_unrecorded) * 1000 / args.relay_delay_ms


def message_count(args: argparse.Namespace) -> int:
    if args.messages is not None:
        return int(args.messages)
    ceiling = per_daemon_ceiling(args)
    if ceiling is None:
        return 30_000
    held = _HELD_TIMES * max(int(v) for v in args.daemons.split(",")) * 2 * args.batch_size
    return max(held, math.ceil(ceiling * _ONE_DAEMON_SECONDS / 500) * 500)


@dataclass
class PythonSink:
    """``bench/smtp_sink.py`` with the relay's delay: counts by Message-ID, written to a
    JSON file every 50 ms and when it stops."""

    proc: Any
    port: int
    out: Path

    def read(self) -> dict[str, Any]:
        for _ in range(50):
            try:
                return dict(json.loads(self.out.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                time.sleep(0.02)
        raise RuntimeError(f"cannot read {self.out}")

    def messages(self) -> int:
        return int(self.read()["total"])


def start_python_sink(procs: lib.Processes, out: Path, delay_ms: float) -> PythonSink:
    argv = [sys.executable, str(lib.SINK), "--port", "0", "--out", str(out), "--interval"]
    argv += ["0.05", "--delay-ms", str(delay_ms), "--pipelining"]
    proc = procs.start(argv, stdout_pipe=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()  # "READY <port>"
    if not line.startswith("READY "):
        raise SystemExit(f"the SMTP sink did not start: {line!r}")
    return PythonSink(proc, int(line.split()[1]), out)


def sink_description(args: argparse.Namespace) -> str:
    if args.sink == "postfix":
        return "smtp-sink -c -u nobody 127.0.0.1:PORT 1024"
    return (
        f"bench/smtp_sink.py --delay-ms {args.relay_delay_ms:g} --pipelining (relay delay "
        f"{args.relay_delay_ms:g} ms per message, after its final '.', before its 250)"
    )


def one_round(
    n: int,
    args: argparse.Namespace,
    config: Path,
    folder: Path,
    db_url: str,
    planned: lib.Planned,
) -> Round:
    rows = planned.rows
    lib.reset_outbox(db_url)
    procs = lib.Processes()
    try:
        sink: lib.PostfixSink | PythonSink
        if args.sink == "postfix":
            sink = lib.start_postfix_sink(procs, folder / f"sink-{n}-{time.monotonic_ns()}.txt")
        else:
            out = folder / f"sink-{n}-{time.monotonic_ns()}.json"
            sink = start_python_sink(procs, out, args.relay_delay_ms)
        round_config = folder / f"netanim-{n}.toml"
        round_config.write_text(config.read_text(encoding="utf-8"), encoding="utf-8")
        _set_email_key(round_config, "port", sink.port)
        logs = [folder / f"daemon-{n}-{i}.log" for i in range(n)]
        daemons = [procs.start(lib.daemon_argv(round_config), log=log) for log in logs]
        deadline = lib.Deadline(args.timeout)
        first_at: float | None = None
        # When the sink had 10% and 90% of the messages: the pace once every daemon is up
        # and before the last ones run dry.
        marks: dict[float, tuple[float, int]] = {}
        groups = {"daemons": {proc.pid for proc in daemons}, "sink": {sink.proc.pid}}
        # One connection and an index-only question: the polling must not take CPU from
        # what it measures (a new connection and a count by status of the whole outbox
        # every 50 ms cost a tenth of a core).
        with psycopg.connect(db_url.replace("+psycopg", ""), autocommit=True) as watch:
            while True:
                now = time.monotonic()
                if first_at is None and sink.messages() > 0:
                    first_at, cpu_at_first = now, lib.cpu_sample(groups)
                if first_at is not None and len(marks) < 2:
                    received = sink.messages()
                    for share in (0.1, 0.9):
                        if share not in marks and received >= share * rows:
                            marks[share] = (now, received)
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
        attempts = dict(lib.sql_rows(db_url, "SELECT attempts, count(*) FROM delivery GROUP BY 1"))
        if isinstance(sink, PythonSink):
            # Its final counts: every Message-ID it received (the daemons are gone).
            procs.terminate(sink.proc, timeout=10.0)
            final = sink.read()
            if not final.get("final"):
                raise SystemExit("the SMTP sink did not write its final counts")
            missing = len(planned.expected_ids - set(final["counts"]))
            received = int(final["total"])
        else:
            time.sleep(0.3)  # the counter file is written when sessions end
            missing, received = 0, sink.messages()
        (t10, c10), (t90, c90) = marks.get(0.1, (0.0, 0)), marks.get(0.9, (0.0, 0))
        middle = (c90 - c10) / (t90 - t10) if t90 > t10 else 0.0
        return Round(n, done_at - first_at, received, attempts, exit_codes, cpu, missing, middle)
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


def _set_email_key(config: Path, key: str, value: int) -> None:
    """``key = value`` in the config's [channels.email] (the line's comment dropped);
    SystemExit if the key is not there. (The replace of ``"\nmax_unrecorded = 1\n"`` this
    bench did before missed the line once it had a comment: --max-unrecorded did nothing.)"""
    lines = config.read_text(encoding="utf-8").splitlines(keepends=True)
    in_email = found = False
    for i, line in enumerate(lines):
        if line.startswith("["):
            in_email = line.strip() == "[channels.email]"
        elif in_email and line.split("=", 1)[0].strip() == key:
            lines[i], found = f"{key} = {value}\n", True
    if not found:
        raise SystemExit(f"{config}: no {key} in [channels.email]")
    config.write_text("".join(lines), encoding="utf-8")


def main() -> None:
    args = parse()
    lib.check_local_url(args.db)
    lib.interrupt_on_signals()
    counts = [int(v) for v in args.daemons.split(",")]
    messages = message_count(args)
    ceiling = per_daemon_ceiling(args)
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
            daemon={
                "dispatch_seconds": 0.2,
                "leader_check_seconds": 1,
                "batch_size": args.batch_size,
            },
        )
        _set_email_key(config, "max_unrecorded", args.max_unrecorded)
        setup = lib.import_network(config, folder, messages)
        planned = lib.plan_emails(config, "scale-out")
        print(
            f"setup: network {setup:.1f} s, {planned.rows} emails queued in {planned.seconds:.1f} s"
        )
        for run in range(args.runs):
            for n in counts:
                result = one_round(n, args, config, folder, db_url, planned)
                rounds.append(result)
                print(
                    f"round {run + 1}, {n} daemon(s): {result.rate:,.0f} msg/s "
                    f"({result.seconds:.1f} s), sink received {result.received}, "
                    f"claims {result.attempts}, exit codes {result.exit_codes}"
                    + (f", missing at the sink {result.missing}" if args.sink == "python" else ""),
                    flush=True,
                )
    medians = {n: statistics.median(r.rate for r in rounds if r.daemons == n) for n in counts}
    base = medians[counts[0]]
    duplicates = {n: [r.received - planned.rows for r in rounds if r.daemons == n] for n in counts}
    # Rows claimed more than once: attempts > 1 (each claim adds one; none is handed back
    # in a round that ends with every row sent).
    reclaimed = {
        n: [sum(k for a, k in r.attempts.items() if a != 1) for r in rounds if r.daemons == n]
        for n in counts
    }
    once = all(r.attempts == {1: planned.rows} for r in rounds)
    all_received = all(r.missing == 0 for r in rounds)
    no_duplicates = not any(any(d) for d in duplicates.values())
    middles = {n: statistics.median(r.middle for r in rounds if r.daemons == n) for n in counts}
    table = [
        "| daemons | median msg/s | runs | ratio to 1 | 10%-90% msg/s (ratio) | duplicates "
        "per run | rows claimed more than once |",
        "|---:|---:|---|---:|---:|---|---|",
        *(
            f"| {n} | {medians[n]:,.0f} | "
            + ", ".join(f"{r.rate:,.0f}" for r in rounds if r.daemons == n)
            + f" | x{medians[n] / base:.2f} | {middles[n]:,.0f} "
            f"(x{middles[n] / middles[counts[0]]:.2f}) | {duplicates[n]} | {reclaimed[n]} |"
            for n in counts
        ),
    ]
    top = counts[-1]
    factor = 2.5 if args.relay_delay_ms else 2.0
    met = medians[top] >= factor * base and no_duplicates and once and all_received
    lines = [
        f"backend: PostgreSQL (one server, 127.0.0.1); {planned.rows} emails; SMTP sessions "
        f"per daemon: {args.concurrency}; max_unrecorded: {args.max_unrecorded}; sink: "
        f"{sink_description(args)}; [daemon] batch_size: {args.batch_size}; "
        f"{args.runs} rounds",
        "msg/s = emails / (last row recorded - first email at the sink); 10%-90%: between "
        "the sink's 10% and 90% of them (all daemons up, none run dry yet)",
    ]
    if ceiling is not None:
        lines.append(
            f"the delay allows one daemon min(sessions {args.concurrency}, max_unrecorded "
            f"{args.max_unrecorded}) x 1000 / {args.relay_delay_ms:g} ms = {ceiling:,.0f} "
            f"msg/s; measured {base:,.0f} ({base / ceiling:.0%} of it)"
        )
    lines += ["", *table, "", *cpu_table(rounds, counts, planned.rows), ""]
    lines.append(f"every row claimed exactly once in every round: {'yes' if once else 'NO'}")
    if args.sink == "python":
        lines.append(
            "every queued Message-ID received by the sink in every round: "
            + ("yes" if all_received else f"NO (missing: {[r.missing for r in rounds]})")
        )
    lines += [
        f"target {top} daemons >= {factor:g} x one, 0 duplicates, every row claimed once: "
        f"{'OK' if met else 'NOT MET'} (x{medians[top] / base:.2f}; duplicates: "
        f"{'0' if no_duplicates else 'SOME'})",
        f"bench wall time: {time.monotonic() - started:.0f} s",
    ]
    figures = "\n".join(lines)
    print(figures)
    if not args.no_record:
        title = "Scale-out on PostgreSQL"
        if args.relay_delay_ms:
            title += f", relay delay {args.relay_delay_ms:g} ms"
        lib.append_benchmarks(title, ["python", *sys.argv], figures)


if __name__ == "__main__":
    main()
