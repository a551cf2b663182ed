#!/usr/bin/env python3
"""Email dispatch bench: the engine's whole send path against Postfix's ``smtp-sink``.

Issue 7, benchmark 2. N queued 5 KB emails (one outbox row each, planned by the real
planner, then their HTML part padded to the size) are sent by the dispatcher exactly as
the daemon does it (``network_anim.outbox.sending.send_due``: claim, MIME assembly, SMTP, result
recorded row by row), into ``smtp-sink -u nobody 127.0.0.1:PORT 1024`` on loopback. In
the same run, on the same sink and machine:

* ``smtp-source -d -s 10 -m N -l 5120``: Postfix's C load generator (the machine's limit);
* a bare aiosmtplib loop: the same concurrency, one long-lived session per worker,
  ``SMTP.sendmail`` of the same messages serialised beforehand (the Python limit);
* a naive ``smtplib`` loop: an ``email.message.EmailMessage`` built per row and a new
  connection per message (``--naive-messages``), what a first version would do.

Each figure is the median of ``--runs`` runs; every contender runs in its own fresh
Python process (so no one inherits another's warm caches or memory), alternating per
round. Between engine runs the outbox rows go back to ``pending`` and their events are
deleted. Throughput = messages / wall time of the send loop (the process start-up and
the preparation are outside the timing). Every engine run must end with N rows ``sent``,
each claimed once (``attempts = 1``): a row sent twice would have needed a second claim.

Postfix: Debian's ``postfix`` package, installed with ``main_mailer_type`` preset to
"No configuration" (``echo "postfix postfix/main_mailer_type select No configuration" |
debconf-set-selections; apt-get install -y postfix``); only ``smtp-sink`` and
``smtp-source`` are run, never a Postfix daemon.

Example::

    python bench/email_dispatch.py                          # 20,000 emails, SQLite, 3 runs
    python bench/email_dispatch.py --db postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    python bench/email_dispatch.py --messages 5000 --runs 1 --no-record   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import benchlib as lib

SENDER = "Animation réseau <animation@bench.example>"
ENVELOPE = "animation@bench.example"
PADDING_PARAGRAPH = (
    "<p>Les résultats du trimestre sont en ligne sur le portail partenaires : chiffre "
    "d'affaires par famille, classement du challenge, fiches produits mises à jour et "
    "calendrier des formations régionales. Retrouvez aussi les argumentaires et les "
    "conditions de la promotion en cours.</p>\n"
)


# -- helpers ------------------------------------------------------------------------------


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def database(url: str | None, folder: Path) -> Iterator[str]:
    if url is None:
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    with lib.throwaway_postgres(url) as throwaway:
        yield throwaway.replace("postgresql://", "postgresql+psycopg://", 1)


def run_child(args: list[str]) -> dict[str, Any]:
    """This script in a fresh Python process; its last stdout line is a JSON result."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        capture_output=True,
        text=True,
        env=lib.bench_env(),
        cwd=str(lib.REPO),
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# -- the contenders (each runs in its own process) ----------------------------------------


def engine_run(config: Path) -> dict[str, Any]:
    os.environ["NETANIM_SECRET_KEY"] = lib.SECRET
    from network_anim.app import open_app
    from network_anim.outbox.sending import send_due

    app = open_app(config)
    try:
        started, cpu = time.perf_counter(), cpu_seconds()
        stats = asyncio.run(send_due(app))
        seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    finally:
        app.close()
    return {
        "seconds": seconds,
        "cpu": cpu,
        "messages": stats.total,
        "outcomes": {f"{c}/{o}": n for (c, o), n in stats.outcomes.items()},
        "peak_rss_mb": peak_rss_mb(),
    }


def queued_items(config: Path) -> list[Any]:
    """Every queued row as the dispatcher hands it to a transport (an ``Outbound``): the
    engine's own claim of the whole outbox, put back to pending before and after."""
    os.environ["NETANIM_SECRET_KEY"] = lib.SECRET
    from datetime import timedelta

    from network_anim.app import open_app
    from network_anim.outbox.leases import Claimer
    from network_anim.outbox.raw import RawSql

    app = open_app(config)
    try:
        lib.reset_outbox(str(app.engine.url))
        items = Claimer(RawSql(app.engine), "bench").claim(
            now=app.clock.now() + timedelta(days=3650), lease=timedelta(hours=1), limit=10**9
        )
        lib.reset_outbox(str(app.engine.url))
    finally:
        app.close()
    return sorted(items, key=lambda item: item.delivery_id)


def serialised_messages(config: Path) -> list[tuple[str, bytes]]:
    """(recipient, wire bytes) of every queued row, built by the engine's own builder."""
    from datetime import UTC, datetime

    from network_anim.channels.email_mime import build_email

    # One fixed Date for every message: what the engine's clock would stamp at the send.
    sent_at = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    return [
        (str(item.recipient.email), build_email(item, sender=SENDER, date=sent_at))
        for item in queued_items(config)
    ]


def aiosmtplib_run(config: Path, port: int, concurrency: int) -> dict[str, Any]:
    import aiosmtplib

    messages = serialised_messages(config)

    async def main() -> int:
        queue = iter(messages)
        sent = 0

        async def worker() -> None:
            nonlocal sent
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
            await client.connect()
            for recipient, data in queue:
                await client.sendmail(ENVELOPE, [recipient], data)
                sent += 1
            await client.quit()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return sent

    started, cpu = time.perf_counter(), cpu_seconds()
    sent = asyncio.run(main())
    return {
        "seconds": time.perf_counter() - started,
        "cpu": cpu_seconds() - cpu,
        "messages": sent,
        "peak_rss_mb": peak_rss_mb(),
    }


def smtplib_run(config: Path, port: int, count: int) -> dict[str, Any]:
    """What a first version would do: an ``EmailMessage`` built per row, then a new SMTP
    connection per message."""
    import smtplib
    from email.message import EmailMessage

    items = queued_items(config)[:count]
    started = time.perf_counter()
    for item in items:
        message = EmailMessage()
        message["From"] = SENDER
        message["To"] = str(item.recipient.email)
        message["Subject"] = item.subject
        for name, value in item.headers.items():
            message[name] = value
        message.set_content(item.text)
        if item.html:
            message.add_alternative(item.html, subtype="html")
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.send_message(message)
    return {"seconds": time.perf_counter() - started, "messages": len(items)}


def smtp_source_run(port: int, count: int, size: int) -> dict[str, Any]:
    argv = [
        "smtp-source", "-d", "-s", "10", "-m", str(count), "-l", str(size),
        "-f", ENVELOPE, "-t", "sink@bench.example", f"127.0.0.1:{port}",
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, timeout=600)
    return {"seconds": time.perf_counter() - started, "messages": count}


# -- preparation --------------------------------------------------------------------------


def pad_bodies(db_url: str, size: int) -> float:
    """Grow each queued row's HTML part so the built message weighs about ``size`` bytes;
    returns the mean built size in bytes."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.begin() as conn:
        row = conn.execute(
            text("SELECT length(body_text) + length(body_html) FROM delivery LIMIT 1")
        )
        current = int(row.scalar() or 0)
        # quoted-printable grows accented text by about 10 %, the headers weigh about 700 B.
        wanted = max(0, int((size - 700) / 1.1) - current)
        padding = (PADDING_PARAGRAPH * (wanted // len(PADDING_PARAGRAPH) + 1))[:wanted]
        conn.execute(text("UPDATE delivery SET body_html = body_html || :p"), {"p": padding})
    engine.dispose()
    return float(size)


def with_max_unrecorded(config: Path, value: int) -> Path:
    """A copy of the bench config with ``[channels.email] max_unrecorded = value``."""
    text = config.read_text(encoding="utf-8")
    if "\nmax_unrecorded = 1\n" not in text:
        raise SystemExit("config.example.toml changed: no 'max_unrecorded = 1' line")
    path = config.with_name(f"netanim-unrecorded-{value}.toml")
    path.write_text(text.replace("\nmax_unrecorded = 1\n", f"\nmax_unrecorded = {value}\n", 1))
    return path


def check_engine_run(db_url: str, messages: int) -> str:
    statuses = lib.status_counts(db_url)
    attempts = dict(lib.sql_rows(db_url, "SELECT attempts, count(*) FROM delivery GROUP BY 1"))
    ok = statuses == {"sent": messages} and attempts == {1: messages}
    return f"{'OK' if ok else 'FAILED'} statuses {statuses} attempts {attempts}"


def median_rate(results: list[dict[str, Any]]) -> float:
    return statistics.median(r["messages"] / r["seconds"] for r in results)


def cpu_per_message(results: list[dict[str, Any]]) -> str:
    """Median CPU milliseconds per message (all threads of the contender's process)."""
    return f"{statistics.median(1000 * r['cpu'] / r['messages'] for r in results):.2f}"


def rates(results: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['messages'] / r['seconds']:,.0f}" for r in results)


# -- main -----------------------------------------------------------------------------------


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Example: python bench/email_dispatch.py --messages 5000 --runs 1 --no-record",
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=5120, help="bytes per message (5 KB)")
    parser.add_argument(
        "--concurrency", type=int, default=8, help="SMTP sessions (engine, aiosmtplib)"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--max-unrecorded",
        default="1,32",
        help="engine runs, one per [channels.email] max_unrecorded value (comma-separated)",
    )
    parser.add_argument("--naive-messages", type=int, default=2000)
    parser.add_argument("--db", default=None, help="PostgreSQL admin URL (default: SQLite)")
    parser.add_argument("--no-record", action="store_true", help="do not append to BENCHMARKS.md")
    parser.add_argument("--keep", action="store_true")
    # Internal: one contender in a child process.
    parser.add_argument(
        "--child", choices=["engine", "aiosmtplib", "smtplib"], help=argparse.SUPPRESS
    )
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


def child(args: argparse.Namespace) -> None:
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "engine": lambda: engine_run(args.config),
        "aiosmtplib": lambda: aiosmtplib_run(args.config, args.port, args.concurrency),
        "smtplib": lambda: smtplib_run(args.config, args.port, args.naive_messages),
    }
    print(json.dumps(runners[args.child]()))


def main() -> None:
    args = parse()
    if args.child:
        child(args)
        return
    lib.interrupt_on_signals()
    procs = lib.Processes()
    bench_started = time.monotonic()
    try:
        with lib.workspace(args.keep) as folder, database(args.db, folder) as db_url:
            port = lib.start_postfix_sink(procs).port
            config = lib.write_config(
                folder,
                db_url,
                smtp_port=port,
                concurrency=args.concurrency,
                rate_per_second=1_000_000,
                daemon={},
            )
            setup = lib.import_network(config, folder, args.messages)
            planned = lib.plan_emails(config, "email-dispatch-bench")
            pad_bodies(db_url, args.size)
            print(
                f"setup: network {setup:.1f} s, planned {planned.rows} rows in {planned.seconds:.1f} s"
            )
            modes = [int(v) for v in args.max_unrecorded.split(",")]
            configs = {mode: with_max_unrecorded(config, mode) for mode in modes}
            common = ["--port", str(port), "--concurrency", str(args.concurrency),
                      "--naive-messages", str(args.naive_messages)]  # fmt: skip
            engine: dict[int, list[dict[str, Any]]] = {mode: [] for mode in modes}
            bare: list[dict[str, Any]] = []
            naive: list[dict[str, Any]] = []
            source: list[dict[str, Any]] = []
            checks: list[str] = []
            for n in range(args.runs):
                line = [f"round {n + 1}:"]
                for mode in modes:
                    lib.reset_outbox(db_url)
                    result = run_child(
                        ["--child", "engine", "--config", str(configs[mode]), *common]
                    )
                    engine[mode].append(result)
                    checks.append(
                        f"max_unrecorded {mode}: {check_engine_run(db_url, planned.rows)}"
                    )
                    line.append(
                        f"engine[{mode}] {result['messages'] / result['seconds']:,.0f} msg/s ({checks[-1]}),"
                    )
                bare.append(run_child(["--child", "aiosmtplib", "--config", str(config), *common]))
                naive.append(run_child(["--child", "smtplib", "--config", str(config), *common]))
                source.append(smtp_source_run(port, args.messages, args.size))
                line.append(
                    f"aiosmtplib {bare[-1]['messages'] / bare[-1]['seconds']:,.0f},"
                    f" smtplib {naive[-1]['messages'] / naive[-1]['seconds']:,.0f},"
                    f" smtp-source {source[-1]['messages'] / source[-1]['seconds']:,.0f}"
                )
                print(" ".join(line))
    finally:
        procs.close()
    b, s, src = median_rate(bare), median_rate(naive), median_rate(source)
    backend = "PostgreSQL" if args.db else "SQLite"
    rows, verdicts = [], []
    for mode, results in engine.items():
        e = median_rate(results)
        rows.append(
            f"| engine, max_unrecorded = {mode} (claim, MIME, SMTP, record) | {e:,.0f} | "
            f"{rates(results)} | {cpu_per_message(results)} | x{e / b:.2f} | x{e / s:.2f} | "
            f"x{e / src:.2f} |"
        )
        verdicts.append(
            f"max_unrecorded {mode}: >= 0.6 x aiosmtplib {'OK' if e >= 0.6 * b else 'NOT MET'}, "
            f">= 4 x smtplib {'OK' if e >= 4 * s else 'NOT MET'}"
        )
    figures = "\n".join(
        [
            f"backend: {backend}; {args.messages} emails of ~{args.size} B; SMTP sessions: "
            f"{args.concurrency}; sink: smtp-sink -u nobody 127.0.0.1:PORT 1024; {args.runs} rounds",
            "",
            "| contender | median msg/s | runs | CPU ms/msg | / aiosmtplib | / smtplib | / smtp-source |",
            "|---|---:|---|---:|---:|---:|---:|",
            *rows,
            f"| bare aiosmtplib loop, pre-serialised | {b:,.0f} | {rates(bare)} | "
            f"{cpu_per_message(bare)} | x1.00 | | |",
            f"| naive smtplib, EmailMessage + connection per message | {s:,.0f} | {rates(naive)} | | | x1.00 | |",
            f"| smtp-source -d -s 10 | {src:,.0f} | {rates(source)} | | | | x1.00 |",
            "",
            f"engine checks: {'; '.join(checks)}",
            f"engine peak RSS: {max(r['peak_rss_mb'] for rs in engine.values() for r in rs):.0f} MB; "
            f"aiosmtplib loop peak RSS: {max(r['peak_rss_mb'] for r in bare):.0f} MB",
            f"targets: {'; '.join(verdicts)}",
            f"bench wall time: {time.monotonic() - bench_started:.0f} s",
        ]
    )
    print(figures)
    if not args.no_record:
        lib.append_benchmarks(f"Email dispatch ({backend})", ["python", *sys.argv], figures)


if __name__ == "__main__":
    main()
