#!/usr/bin/env python3
"""Scale bench: several daemons on one PostgreSQL share the outbox; the scheduler role moves.

Issue requirement: "Three daemons on one PostgreSQL send 20,000 queued messages: each
received exactly once; killing the scheduler-holding daemon hands the role to another
within one tick plus the lock timeout. Report the timings."

Everything runs on 127.0.0.1, in a throwaway PostgreSQL database (created on the server of
``--db``, dropped afterwards) and a temporary folder. One network of N contacts is
imported once; each phase queues N operational reminder emails of its own (the planner,
as ``netanim broadcast`` would, without sending), starts its own SMTP sink
(``bench/smtp_sink.py``, counting by Message-ID) and its daemons
(``python -m network_anim daemon CONFIG`` with ``leader_check_seconds = 1``,
``dispatch_seconds = 0.2``), waits until every row is sent, then stops the daemons with
SIGTERM:

1. ``single``: 1 daemon: the reference throughput;
2. ``scale``: 3 daemons: throughput, each message received exactly once (no duplicate
   allowed), who holds the scheduler role (the log line "scheduler role taken by" and the
   advisory lock in ``pg_locks``);
3. ``takeover``: 3 daemons; once ``--kill-at`` of the messages arrived, the daemon holding
   the scheduler role is SIGKILLed. Measured by polling ``pg_locks`` every 10 ms: when
   PostgreSQL freed the lock (the killed session ended) and when another daemon took it,
   which must be within ``leader_check_seconds`` + ``--margin``. The killed daemon's
   claimed rows are taken back by the survivors (PostgresLiveness) and sent: every
   message arrives; duplicates are allowed only for the chunk the killed daemon had sent
   but not recorded (at most the SMTP concurrency), and are reported apart.

Exit status 0 when every check holds.

Example::

    python bench/multi_daemon.py
    python bench/multi_daemon.py --messages 5000 --no-record      # a quicker look
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchlib as lib

ROLE_TAKEN = re.compile(r"scheduler role taken by \S+?:(\d+):")
KILL_SLACK = 0.2  # seconds
SENT = re.compile(r"dispatch: .*?email sent (\d+)")


@dataclass
class Phase:
    name: str
    daemons: int
    rows: int = 0
    wall: float = 0.0  # daemons started -> every row recorded sent
    sending: float = 0.0  # first -> last message at the sink
    total: int = 0
    distinct: int = 0
    missing: int = 0
    unexpected: int = 0
    duplicates: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    attempts: dict[int, int] = field(default_factory=dict)
    sent_by: dict[int, int] = field(default_factory=dict)  # daemon pid -> sent (its logs)
    holder: int | None = None  # pid of the first scheduler-role holder
    exit_codes: list[int] = field(default_factory=list)
    takeover: dict[str, Any] = field(default_factory=dict)
    logs: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.rows / self.wall if self.wall else 0.0

    @property
    def sink_rate(self) -> float:
        return self.distinct / self.sending if self.sending else 0.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0],
        epilog="Example: python bench/multi_daemon.py "
        "--db postgresql://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument(
        "--db",
        metavar="ADMIN_URL",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="PostgreSQL server where a throwaway database is created and dropped "
        "(default: %(default)s)",
    )
    parser.add_argument("--messages", type=int, default=20000, help="emails per phase (20000)")
    parser.add_argument("--daemons", type=int, default=3, help="daemons in the scale phases (3)")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="[channels.email] concurrency (4)"
    )
    parser.add_argument(
        "--rate", type=float, default=5000.0, help="[channels.email] rate_per_second (5000)"
    )
    parser.add_argument(
        "--leader-check", type=float, default=1.0, help="[daemon] leader_check_seconds (1)"
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=0.5,
        help="allowed takeover beyond leader_check_seconds, s (0.5)",
    )
    parser.add_argument(
        "--kill-at",
        type=float,
        default=0.4,
        help="kill the role holder once this share of the messages arrived (0.4)",
    )
    parser.add_argument(
        "--timeout", type=float, default=480.0, help="give up after this many seconds (480)"
    )
    parser.add_argument(
        "--phases",
        default="single,scale,takeover",
        help="phases to run, comma-separated (default: %(default)s)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--no-record", action="store_true", help="do not append to docs/BENCHMARKS.md"
    )
    return parser.parse_args(argv)


# -- PostgreSQL: who holds the scheduler role -------------------------------------------------


class RoleWatch:
    """Polls pg_locks for the backend holding the scheduler advisory lock."""

    def __init__(self, db_url: str) -> None:
        import psycopg

        from network_anim.daemon.locks import SCHEDULER_LOCK_KEY

        key = SCHEDULER_LOCK_KEY & 0xFFFFFFFFFFFFFFFF
        # pg_advisory_lock(bigint): classid = high 32 bits, objid = low 32 bits, objsubid 1.
        self._params = (key >> 32, key & 0xFFFFFFFF)
        self._conn = psycopg.connect(db_url, autocommit=True, connect_timeout=5)

    def holder(self) -> int | None:
        row = self._conn.execute(
            # pg_locks lists every database's locks: advisory keys are per database.
            "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE d.datname = current_database() AND l.locktype = 'advisory' AND l.granted "
            "AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 1",
            self._params,
        ).fetchone()
        return int(row[0]) if row else None

    def close(self) -> None:
        self._conn.close()


def role_takers(logs: list[Path]) -> list[int]:
    """Daemon pids that logged "scheduler role taken by", in log order per file."""
    pids = []
    for log in logs:
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        pids += [int(m.group(1)) for m in ROLE_TAKEN.finditer(text)]
    return pids


def sent_per_daemon(procs: list[Any], logs: list[Path]) -> dict[int, int]:
    shares = {}
    for proc, log in zip(procs, logs, strict=True):
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        shares[proc.pid] = sum(int(m.group(1)) for m in SENT.finditer(text))
    return shares


# -- one phase ---------------------------------------------------------------------------------


def run_phase(
    name: str,
    daemons: int,
    args: argparse.Namespace,
    folder: Path,
    db_url: str,
    procs: lib.Processes,
    deadline: lib.Deadline,
    *,
    kill_holder: bool = False,
) -> Phase:
    phase = Phase(name, daemons)
    sink = lib.start_sink(procs, folder, f"sink-{name}")
    config = lib.write_config(
        folder,
        db_url,
        smtp_port=sink.port,
        concurrency=args.concurrency,
        rate_per_second=args.rate,
        daemon={
            "dispatch_seconds": 0.2,
            "leader_check_seconds": args.leader_check,
            "lease_minutes": 5,
        },
    )
    planned = lib.plan_emails(config, name)
    phase.rows = planned.rows
    print(f"[{name}] {planned.rows} emails queued ({planned.seconds:.1f} s); {daemons} daemon(s)")
    logs = [folder / f"{name}-daemon{i + 1}.log" for i in range(daemons)]
    watch = RoleWatch(db_url)
    try:
        started = time.time()
        running = [procs.start(lib.daemon_argv(config), log=log) for log in logs]
        if kill_holder:
            phase.takeover = take_over(args, phase, sink, watch, procs, running, logs, deadline)
        while True:
            statuses = lib.status_counts(db_url, planned.message_id)
            if not statuses.get("pending") and not statuses.get("claimed"):
                break
            for proc, log in zip(running, logs, strict=True):
                if proc.returncode is None and proc.poll() is not None:
                    raise SystemExit(f"a daemon exited ({proc.returncode}):\n{lib.log_tail(log)}")
            deadline.check(f"phase {name}: waiting for every row to be sent")
            time.sleep(0.2)
        phase.wall = time.time() - started
        if phase.holder is None:
            takers = role_takers(logs)
            phase.holder = takers[0] if takers else None
    finally:
        watch.close()
    phase.exit_codes = procs.terminate_all([p for p in running if p.returncode is None])
    phase.logs = lib.log_findings(logs)
    counts = sink.stop(procs)
    received = set(counts["counts"])
    phase.total, phase.distinct = int(counts["total"]), len(received)
    phase.missing = len(planned.expected_ids - received)
    phase.unexpected = len(received - planned.expected_ids)
    phase.duplicates = {k: n for k, n in counts["counts"].items() if n > 1}
    phase.sending = float(counts["last_at"] - counts["first_at"])
    phase.statuses = statuses
    phase.attempts = lib.attempts_histogram(db_url, planned.message_id)
    phase.sent_by = sent_per_daemon(running, logs)
    if phase.takeover:
        kill = phase.takeover["killed_at"]
        phase.takeover.update(reclaimed_timing(db_url, planned.message_id, kill))
        # Bytes the killed daemon wrote just before the SIGKILL reach the sink a few
        # milliseconds after it: a duplicate whose first copy arrived within KILL_SLACK of
        # the kill and whose second came later is the kill's.
        times = counts["duplicate_times"]
        phase.takeover["duplicates_first_sent_before_kill"] = sum(
            n - 1 for k, n in phase.duplicates.items() if times[k][0] <= kill + KILL_SLACK
        )
        phase.takeover["duplicate_receipts_after_kill"] = sorted(
            [round(t - kill, 3) for t in times[k]] for k in phase.duplicates
        )
    print(f"[{name}] {phase.distinct} distinct received in {phase.wall:.1f} s")
    return phase


def take_over(
    args: argparse.Namespace,
    phase: Phase,
    sink: lib.Sink,
    watch: RoleWatch,
    procs: lib.Processes,
    running: list[Any],
    logs: list[Path],
    deadline: lib.Deadline,
) -> dict[str, Any]:
    """Wait for a holder and for ``--kill-at`` of the messages, SIGKILL the holder, time
    the lock's release and its next holder."""
    while True:
        takers = role_takers(logs)
        backend = watch.holder()
        if takers and backend is not None:
            break
        deadline.check("waiting for a daemon to take the scheduler role")
        time.sleep(0.05)
    if len(takers) != 1:
        raise SystemExit(f"several daemons took the scheduler role: {takers}")
    phase.holder = takers[0]
    by_pid = {p.pid: p for p in running}
    holder = by_pid[phase.holder]
    while int(sink.read()["distinct"]) < args.kill_at * phase.rows:
        deadline.check("waiting to kill the role holder")
        time.sleep(0.02)
    at_kill = sink.read()
    killed_at = procs.kill(holder)
    released = taken = None
    new_backend = None
    while taken is None:
        now_holder = watch.holder()
        now = time.time()
        if now_holder != backend and released is None:
            released = now
        if now_holder is not None and now_holder != backend:
            taken, new_backend = now, now_holder
        if now - killed_at > 30:
            raise SystemExit("no daemon took the scheduler role within 30 s of the kill")
        time.sleep(0.01)
    time.sleep(0.3)  # the taker's log line
    takers = role_takers(logs)
    new_holder = [pid for pid in takers if pid != phase.holder]
    limit = args.leader_check + args.margin
    return {
        "killed_pid": phase.holder,
        "killed_at": killed_at,
        "received_at_kill": int(at_kill["distinct"]),
        "lock_freed_after": (released or taken) - killed_at,
        "taken_after": taken - killed_at,
        "new_holder_pid": new_holder[0] if new_holder else None,
        "new_backend": new_backend,
        "limit": limit,
        "ok": taken - killed_at <= limit and len(new_holder) == 1,
    }


def reclaimed_timing(db_url: str, message_id: int, killed_at: float) -> dict[str, Any]:
    """When the rows the killed daemon had claimed (claimed twice) were sent, after the
    kill, next to when the last row was sent."""
    rows = lib.sql_rows(
        db_url,
        "SELECT count(*) FILTER (WHERE attempts >= 2), "
        "min(sent_at) FILTER (WHERE attempts >= 2), max(sent_at) FILTER (WHERE attempts >= 2), "
        f"max(sent_at) FROM delivery WHERE message_id = {int(message_id)}",
    )
    count, first, last, end = rows[0]

    def after(moment: Any) -> float | None:
        return moment.timestamp() - killed_at if moment is not None else None

    return {
        "reclaimed_rows": int(count),
        "reclaimed_sent_from": after(first),
        "reclaimed_sent_to": after(last),
        "last_row_sent": after(end),
    }


# -- report ------------------------------------------------------------------------------------


def describe(phase: Phase) -> list[str]:
    dups = sum(n - 1 for n in phase.duplicates.values())
    lines = [
        f"{phase.name}: {phase.daemons} daemon(s), {phase.rows} messages: "
        f"{phase.wall:.1f} s wall ({phase.rate:.0f} msg/s), sink first->last "
        f"{phase.sending:.1f} s ({phase.sink_rate:.0f} msg/s)",
        f"  received {phase.total} total, {phase.distinct} distinct, {phase.missing} missing, "
        f"{phase.unexpected} unexpected, {dups} duplicate(s)",
        f"  outbox {phase.statuses}; rows by claims {phase.attempts}; sent per daemon pid "
        f"(logs) {phase.sent_by}; scheduler role holder pid {phase.holder}; exit codes "
        f"{phase.exit_codes}; daemon logs {phase.logs}",
    ]
    t = phase.takeover
    if t:
        lines.append(
            f"  takeover: killed pid {t['killed_pid']} (role holder) after "
            f"{t['received_at_kill']} messages; lock freed by PostgreSQL after "
            f"{t['lock_freed_after'] * 1000:.0f} ms; taken by pid {t['new_holder_pid']} after "
            f"{t['taken_after'] * 1000:.0f} ms (limit {t['limit'] * 1000:.0f} ms: "
            f"{'OK' if t['ok'] else 'EXCEEDED'}); duplicates from the kill: "
            f"{t['duplicates_first_sent_before_kill']} (first copy received before the kill + "
            f"{KILL_SLACK:g} s); receipts of each duplicate, s after the kill: "
            f"{t['duplicate_receipts_after_kill']}"
        )
        if t.get("reclaimed_rows"):
            lines.append(
                f"  the killed daemon's {t['reclaimed_rows']} claimed rows were sent by the "
                f"survivors {t['reclaimed_sent_from']:.1f}-{t['reclaimed_sent_to']:.1f} s after "
                f"the kill (last row of the phase: {t['last_row_sent']:.1f} s after)"
            )
    return lines


def verdict(phases: list[Phase], args: argparse.Namespace) -> list[str]:
    problems = []
    for p in phases:
        if p.missing or p.unexpected or p.statuses != {"sent": p.rows}:
            problems.append(f"{p.name}: not every message sent and received once")
        dups = sum(n - 1 for n in p.duplicates.values())
        if p.takeover:
            explained = p.takeover["duplicates_first_sent_before_kill"]
            if dups != explained or dups > args.concurrency:
                problems.append(f"{p.name}: {dups} duplicates, {explained} explained by the kill")
            if not p.takeover["ok"]:
                problems.append(f"{p.name}: takeover too slow or by several daemons")
        elif dups:
            problems.append(f"{p.name}: {dups} duplicates without any kill")
        if any(code != 0 for code in p.exit_codes):
            problems.append(f"{p.name}: daemon exit codes {p.exit_codes} on SIGTERM")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    lib.check_local_url(args.db)
    lib.interrupt_on_signals()
    procs = lib.Processes()
    started = time.monotonic()
    deadline = lib.Deadline(args.timeout)
    phases: list[Phase] = []
    try:
        with lib.workspace(args.keep) as folder, lib.throwaway_postgres(args.db) as db_url:
            try:
                placeholder = lib.write_config(
                    folder, db_url, smtp_port=25, concurrency=1, rate_per_second=1, daemon={}
                )
                setup = lib.import_network(placeholder, folder, args.messages)
                print(f"{args.messages} contacts imported in {setup:.1f} s")
                common = (args, folder, db_url, procs, deadline)
                wanted = set(args.phases.split(","))
                if "single" in wanted:
                    phases.append(run_phase("single", 1, *common))
                if "scale" in wanted:
                    phases.append(run_phase("scale", args.daemons, *common))
                if "takeover" in wanted:
                    phases.append(run_phase("takeover", args.daemons, *common, kill_holder=True))
            finally:
                procs.close()
    except KeyboardInterrupt:
        print("interrupted: every process it started is stopped", file=sys.stderr)
        return 130
    by_name = {p.name: p for p in phases}
    lines = [
        f"PostgreSQL; {args.messages} messages per phase; SMTP concurrency {args.concurrency}; "
        f"rate_per_second {args.rate:g}; leader_check_seconds {args.leader_check:g}; "
        f"dispatch_seconds 0.2; batch_size 200",
    ]
    for phase in phases:
        lines += describe(phase)
    if "single" in by_name and "scale" in by_name:
        single, scale = by_name["single"], by_name["scale"]
        lines.append(
            f"throughput {scale.daemons} daemons / 1 daemon: {scale.rate / single.rate:.2f}x "
            f"wall, {scale.sink_rate / single.sink_rate:.2f}x at the sink "
            f"({len(os.sched_getaffinity(0))} CPUs shared by the daemons, PostgreSQL and the sink)"
        )
    problems = verdict(phases, args)
    lines += [f"problem: {p}" for p in problems]
    lines.append(f"result: {'FAIL' if problems else 'PASS'}")
    lines.append(f"bench wall time: {time.monotonic() - started:.0f} s")
    text = "\n".join(lines)
    print(text)
    if not args.no_record:
        command = ["python", "bench/multi_daemon.py", *(argv or sys.argv[1:])]
        lib.append_benchmarks("Multi-daemon bench (PostgreSQL)", command, text)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
