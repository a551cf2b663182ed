#!/usr/bin/env python3
"""Tracking endpoints benchmark: requests/s of the open pixel and the click redirect, events
persisted, against a static 204 answered by the same uvicorn server.

It builds a throwaway project (SQLite file, or with ``--db`` a database created next to a
PostgreSQL admin URL on 127.0.0.1 and dropped at the end), imports ``--contacts`` contacts,
plans ``--occurrences`` email messages to all of them (``network_anim.planning.planner.plan_message``)
and marks every delivery sent an hour ago. It mints ``--tokens`` distinct pixel and click
tokens (one per delivery, round-robin), then serves the real app (``create_app``) with
uvicorn on 127.0.0.1 in a subprocess, plus a test-only ``GET /bench/static`` (204) added
by this script to the FastAPI app before serving (the engine's web app is not edited).

Each round runs, for ``--duration`` seconds each, an ``httpx.AsyncClient`` with
``--concurrency`` requests in flight on loopback against: the static 204, the pixel, the
click (redirects not followed). After a pixel or click run it waits for the batch writer and
counts the ``opened``/``clicked`` events the run added to the database: they must equal the
requests answered. Figures: median of ``--runs`` rounds, ratio to the static 204 of the
same round, peak RSS of the server and of this client.

Opens and clicks have no dedupe key (every request is an event), so when ``wrk`` is
installed it also runs it on the static URL and on one pixel and one click URL (a single
token repeated: fine for the throughput, the events are still all written).

Example::

    python bench/tracking.py                                  # SQLite, ~2 minutes
    python bench/tracking.py --db postgresql://postgres@127.0.0.1:5432/postgres
    python bench/tracking.py --duration 3 --runs 1 --out -    # quick look, no docs change
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import benchlib

STATIC = "/bench/static"
EXPECTED = {"static": 204, "pixel": 200, "click": 302}
EVENT_TYPE = {"pixel": "opened", "click": "clicked"}
TIME_BUDGET = 170.0  # seconds: wrk is skipped if the async runs leave no room


# -- server (this script again, in a subprocess) --------------------------------------------


def serve(config: Path, port: int) -> None:
    """Run the app of ``config`` on 127.0.0.1:``port`` with the static test route."""
    import uvicorn
    from fastapi import Response

    from network_anim.app import open_app
    from network_anim.web.app import create_app

    app = open_app(config)
    fastapi_app = create_app(app)

    @fastapi_app.get(STATIC, include_in_schema=False)
    def bench_static() -> Response:
        return Response(status_code=204)

    try:
        uvicorn.run(fastapi_app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    finally:
        app.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def server(config: Path, port: int, folder: Path) -> Iterator[subprocess.Popen[bytes]]:
    procs = benchlib.Processes()
    log = folder / "server.log"
    proc = procs.start(
        [sys.executable, __file__, "--serve", str(config), "--port", str(port)], log=log
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited:\n{benchlib.log_tail(log)}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not start:\n{benchlib.log_tail(log)}")
            time.sleep(0.1)
        yield proc
    finally:
        procs.terminate(proc)  # SIGTERM: the lifespan writes the queued events
        procs.close()


# -- project --------------------------------------------------------------------------------


@dataclass
class Project:
    config: Path
    db_url: str
    deliveries: int
    pixels: list[str]
    clicks: list[str]
    setup_seconds: float


def build_project(folder: Path, db_url: str, args: argparse.Namespace) -> Project:
    started = time.monotonic()
    config = benchlib.write_config(
        folder, db_url, smtp_port=2525, concurrency=1, rate_per_second=50.0, daemon={}
    )
    benchlib.import_network(config, folder, args.contacts)
    for n in range(args.occurrences):
        benchlib.plan_emails(config, f"bench-tracking-{n}")  # sets NETANIM_SECRET_KEY

    from sqlalchemy import select, update

    from network_anim.app import open_app
    from network_anim.db.models import Delivery

    app = open_app(config)
    try:
        sent_at = datetime.now(UTC) - timedelta(hours=1)
        with app.engine.begin() as conn:
            conn.execute(update(Delivery).values(status="sent", sent_at=sent_at))
            keys = list(conn.scalars(select(Delivery.idempotency_key).order_by(Delivery.id)))
        chosen = list(itertools.islice(itertools.cycle(keys), args.tokens))
        pixels = [f"/o/{app.signer.sign('open', [key])}.gif" for key in chosen]
        clicks = [
            f"/c/{app.signer.sign('click', [key, f'https://www.example.com/offre?n={n}'])}"
            for n, key in enumerate(chosen)
        ]
    finally:
        app.close()
    return Project(config, db_url, len(keys), pixels, clicks, time.monotonic() - started)


def event_count(db_url: str, type_: str) -> int:
    rows = benchlib.sql_rows(db_url, f"SELECT count(*) FROM event WHERE type = '{type_}'")
    return int(rows[0][0])


def wait_persisted(db_url: str, type_: str, target: int, timeout: float = 10.0) -> int:
    """The events of ``type_`` once the batch writer has caught up with ``target``."""
    deadline = time.monotonic() + timeout
    while True:
        count = event_count(db_url, type_)
        if count >= target or time.monotonic() > deadline:
            return count
        time.sleep(0.2)


# -- load -----------------------------------------------------------------------------------


@dataclass
class Run:
    answered: int  # expected status
    errors: int  # other status or transport error
    seconds: float
    persisted: int | None = None

    @property
    def rps(self) -> float:
        return self.answered / self.seconds


async def load(base: str, paths: list[str], expect: int, duration: float, conc: int) -> Run:
    """``conc`` workers, each with its own keep-alive connection (one ``AsyncClient`` per
    worker: a single client's shared pool costs more than the server it measures)."""
    import httpx

    urls = itertools.cycle(paths)
    answered = errors = 0
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=base, limits=httpx.Limits(max_connections=1), timeout=30)
            )
            for _ in range(conc)
        ]
        started = time.monotonic()
        stop = started + duration

        async def worker(client: httpx.AsyncClient) -> None:
            nonlocal answered, errors
            while time.monotonic() < stop:
                try:
                    response = await client.get(next(urls))
                except httpx.HTTPError:
                    errors += 1
                    continue
                if response.status_code == expect:
                    answered += 1
                else:
                    errors += 1

        await asyncio.gather(*(worker(client) for client in clients))
        seconds = time.monotonic() - started
    return Run(answered, errors, seconds)


def run_one(project: Project, base: str, kind: str, args: argparse.Namespace) -> Run:
    paths = {"static": [STATIC], "pixel": project.pixels, "click": project.clicks}[kind]
    before = event_count(project.db_url, EVENT_TYPE[kind]) if kind in EVENT_TYPE else 0
    run = asyncio.run(load(base, paths, EXPECTED[kind], args.duration, args.concurrency))
    if kind in EVENT_TYPE:
        after = wait_persisted(project.db_url, EVENT_TYPE[kind], before + run.answered)
        run.persisted = after - before
    return run


def run_wrk(url: str, args: argparse.Namespace) -> tuple[float, int, str]:
    """wrk's requests/s, requests completed and error line."""
    command = [
        "wrk",
        f"-t{min(2, os.cpu_count() or 1)}",
        f"-c{args.concurrency}",
        f"-d{args.wrk_duration}s",
        url,
    ]
    out = subprocess.run(command, capture_output=True, text=True, timeout=args.wrk_duration + 30)
    found = re.search(r"Requests/sec:\s*([\d.]+)", out.stdout)
    total = re.search(r"(\d+) requests in", out.stdout)
    errors = re.search(r"(Non-2xx or 3xx responses: \d+|Socket errors: [^\n]+)", out.stdout)
    rps = float(found.group(1)) if found else float("nan")
    return rps, int(total.group(1)) if total else 0, errors.group(1) if errors else ""


# -- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Requests/s of the open pixel and click redirect (events persisted) "
        "against a static 204 on the same uvicorn server; appends to docs/BENCHMARKS.md.",
    )
    parser.add_argument(
        "--db",
        default="sqlite",
        help="'sqlite' (a throwaway file, the default) or a PostgreSQL admin URL on "
        "127.0.0.1 next to which a throwaway database is created, then dropped "
        "(e.g. postgresql://postgres@127.0.0.1:5432/postgres)",
    )
    parser.add_argument("--contacts", type=int, default=1000, help="contacts imported")
    parser.add_argument(
        "--occurrences", type=int, default=3, help="emails planned to every contact, marked sent"
    )
    parser.add_argument("--tokens", type=int, default=2000, help="distinct pixel/click tokens")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--runs", type=int, default=3, help="rounds (the median is reported)")
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight")
    parser.add_argument("--wrk-duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--no-wrk", action="store_true", help="skip wrk even if installed")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--out",
        default=str(benchlib.BENCH_LOG),
        help="folder of the run logs to record in, or - (stdout only)",
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def fmt(rps: float) -> str:
    return f"{rps:,.0f} req/s"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.port)
        return 0
    started = time.monotonic()
    benchlib.interrupt_on_signals()
    os.environ["NETANIM_SECRET_KEY"] = benchlib.SECRET
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(benchlib.workspace(args.keep))
        if args.db == "sqlite":
            db_url, backend = f"sqlite:///{folder / 'netanim.db'}", "SQLite"
        else:
            db_url = stack.enter_context(benchlib.throwaway_postgres(args.db))
            backend = "PostgreSQL"
        project = build_project(folder, db_url, args)
        print(
            f"{backend}: {args.contacts} contacts, {project.deliveries} sent deliveries, "
            f"{len(project.pixels)} pixel and click tokens; setup {project.setup_seconds:.1f} s"
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        runs: dict[str, list[Run]] = {"static": [], "pixel": [], "click": []}
        wrk: dict[str, tuple[float, int, str, int | None]] = {}
        with server(project.config, port, folder) as proc:
            for n in range(args.runs):
                for kind in ("static", "pixel", "click"):
                    run = run_one(project, base, kind, args)
                    runs[kind].append(run)
                    extra = (
                        f", {run.persisted} events persisted" if run.persisted is not None else ""
                    )
                    print(
                        f"round {n + 1} {kind}: {fmt(run.rps)} ({run.answered} answered, "
                        f"{run.errors} errors{extra})",
                        flush=True,
                    )
            left = TIME_BUDGET - (time.monotonic() - started)
            if args.no_wrk or shutil.which("wrk") is None:
                print("wrk: not run (" + ("--no-wrk" if args.no_wrk else "not installed") + ")")
            elif left < 3 * (args.wrk_duration + 3):
                print(f"wrk: skipped ({left:.0f} s left of the {TIME_BUDGET:.0f} s budget)")
            else:
                targets = {
                    "static": STATIC,
                    "pixel": project.pixels[0],
                    "click": project.clicks[0],
                }
                for kind, path in targets.items():
                    type_ = EVENT_TYPE.get(kind)
                    before = event_count(db_url, type_) if type_ else 0
                    rps, total, errors = run_wrk(base + path, args)
                    persisted = None
                    if type_:
                        persisted = wait_persisted(db_url, type_, before + total) - before
                    wrk[kind] = (rps, total, errors, persisted)
                    print(f"wrk {kind}: {fmt(rps)} {errors}".rstrip(), flush=True)
            server_rss = peak_rss_mb(proc.pid)
        client_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        totals = {t: event_count(db_url, t) for t in ("opened", "clicked")}
    wall = time.monotonic() - started

    lines = [
        f"backend: {backend}; {args.contacts} contacts, {project.deliveries} sent email "
        f"deliveries; {len(project.pixels)} distinct pixel and click tokens (round-robin)",
        f"client: httpx.AsyncClient x{args.concurrency} (one connection each), "
        f"{args.duration:g} s per measurement, median of {args.runs} rounds; "
        "uvicorn, 1 worker, 127.0.0.1",
        "",
        "| endpoint | median | ratio to static 204 | rounds | events persisted / answered |",
        "|---|---:|---:|---|---|",
    ]
    static_by_round = [run.rps for run in runs["static"]]
    for kind, label in (
        ("static", "static 204 (baseline)"),
        ("pixel", "open pixel /o/{token}.gif"),
        ("click", "click /c/{token} (302)"),
    ):
        rates = [run.rps for run in runs[kind]]
        ratios = [rate / base_rate for rate, base_rate in zip(rates, static_by_round, strict=True)]
        persisted = (
            ", ".join(f"{run.persisted}/{run.answered}" for run in runs[kind])
            if kind in EVENT_TYPE
            else "-"
        )
        errors = sum(run.errors for run in runs[kind])
        lines.append(
            f"| {label} | {fmt(statistics.median(rates))} | x{statistics.median(ratios):.2f} | "
            f"{', '.join(f'{rate:,.0f}' for rate in rates)}"
            f"{f' ({errors} errors)' if errors else ''} | {persisted} |"
        )
    if wrk:
        lines += [
            "",
            f"wrk ({args.wrk_duration} s, {args.concurrency} connections, one URL each; events "
            "persisted / requests wrk counted: wrk leaves those in flight at the end uncounted):",
        ]
        static_wrk = wrk["static"][0]
        for kind, (rps, total, errors, persisted) in wrk.items():
            extra = f", ratio x{rps / static_wrk:.2f}" if kind != "static" else ""
            extra += f", {persisted}/{total} events persisted" if persisted is not None else ""
            extra += f", {errors}" if errors else ""
            lines.append(f"  {kind}: {fmt(rps)}{extra}")
    lines += [
        "",
        f"events in the database at the end: {totals['opened']} opened, "
        f"{totals['clicked']} clicked",
        f"peak RSS: server {server_rss:.0f} MB, bench client {client_rss:.0f} MB",
        f"bench wall time: {wall:.0f} s (setup {project.setup_seconds:.0f} s)",
    ]
    figures = "\n".join(lines)
    print()
    print(figures)
    if args.out != "-":
        benchlib.BENCH_LOG = Path(args.out)
        benchlib.append_benchmarks(
            f"Tracking endpoints ({backend})",
            ["python", "bench/tracking.py", *sys.argv[1:]],
            figures,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
