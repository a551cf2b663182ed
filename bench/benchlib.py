"""What the benchmarks share: a throwaway project (config, network, queued emails), the
SMTP sink and daemon subprocesses, their clean-up, and the runs' log (docs/bench-log/).

Not a benchmark itself: ``bench/crash.py`` and ``bench/multi_daemon.py`` import it (they
run as scripts, so this folder is on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import datetime as dt
import json
import os
import platform
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
BENCH_LOG = REPO / "docs" / "bench-log"
SINK = Path(__file__).resolve().parent / "smtp_sink.py"
SECRET = "bench-secret-key-" + "k" * 32
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


# -- processes ------------------------------------------------------------------------


def _die_with_parent() -> None:  # pragma: no cover (runs in the child before exec)
    """Linux: the child gets SIGKILL if the bench itself dies (even by SIGKILL)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Processes:
    """Every subprocess the bench starts, each in its own session (a Ctrl-C in the terminal
    reaches the bench only, which then stops them); ``close`` stops whatever is left."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, argv: Sequence[str], *, log: Path | None = None, stdout_pipe: bool = False
    ) -> subprocess.Popen[bytes]:
        out: Any
        if stdout_pipe:
            out = subprocess.PIPE
        elif log is not None:
            out = open(log, "ab")  # noqa: SIM115 (closed when the process is reaped)
        else:
            out = subprocess.DEVNULL
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT if log is not None or stdout_pipe else subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env=bench_env(),
            cwd=str(REPO),
            start_new_session=True,
            preexec_fn=_die_with_parent,  # the benches start no threads
        )
        if log is not None and not stdout_pipe:
            out.close()  # the child holds its own copy
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> float:
        """SIGKILL; returns the time just before the signal."""
        at = time.time()
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return at

    def terminate(
        self, proc: subprocess.Popen[bytes], timeout: float = 20.0, *, signalled: bool = False
    ) -> int:
        """SIGTERM (unless already ``signalled``: a second SIGTERM landing after the
        daemon's event loop closed would kill it by the default action), then SIGKILL if
        it is still there after ``timeout``."""
        if proc.poll() is None:
            if not signalled:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(proc)
        return int(proc.returncode)

    def terminate_all(
        self, procs: Sequence[subprocess.Popen[bytes]], timeout: float = 20.0
    ) -> list[int]:
        """SIGTERM to every one at once (none of them sees the others leave), then wait."""
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        return [self.terminate(proc, timeout, signalled=True) for proc in procs]

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.terminate(proc, timeout=5.0)
            if proc.stdout is not None:
                proc.stdout.close()
        self.procs.clear()


class Deadline:
    """The bench's time bound: ``check`` ends it once the bound is past."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def check(self, what: str) -> None:
        if time.monotonic() > self.end:
            raise SystemExit(f"timed out while {what}")


def interrupt_on_signals() -> None:
    """SIGTERM and SIGHUP end the bench like Ctrl-C does: through the clean-up."""

    def handler(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)
    # Ctrl-C too, even when started in the background (SIGINT ignored by the shell).
    signal.signal(signal.SIGINT, signal.default_int_handler)


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    env["NETANIM_SECRET_KEY"] = SECRET
    env["COLUMNS"] = "400"  # rich logs one record per line
    env.pop("NETANIM_CONFIG", None)
    env.pop("NETANIM_DB", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def netanim(*args: str, timeout: float = 300.0) -> str:
    """Run ``python -m network_anim ARGS``; its stdout, or SystemExit with its output."""
    argv = [sys.executable, "-m", "network_anim", *args]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=bench_env(),
        cwd=str(REPO),
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"{shlex.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


def daemon_argv(config: Path) -> list[str]:
    return [sys.executable, "-m", "network_anim", "daemon", str(config)]


# -- the SMTP sink ----------------------------------------------------------------------


@dataclass
class Sink:
    proc: subprocess.Popen[bytes]
    port: int
    out: Path

    def read(self) -> dict[str, Any]:
        for _ in range(20):
            try:
                return dict(json.loads(self.out.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                time.sleep(0.02)
        raise RuntimeError(f"cannot read {self.out}")

    def stop(self, procs: Processes) -> dict[str, Any]:
        procs.terminate(self.proc, timeout=10.0)
        data = self.read()
        if not data.get("final"):
            raise RuntimeError("the SMTP sink did not write its final counts")
        return data


def start_sink(
    procs: Processes, folder: Path, name: str = "sink", *, interval: float = 0.05
) -> Sink:
    out = folder / f"{name}.json"
    argv = [sys.executable, str(SINK), "--port", "0", "--out", str(out)]
    proc = procs.start([*argv, "--interval", str(interval)], stdout_pipe=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()  # "READY <port>"
    if not line.startswith("READY "):
        raise SystemExit(f"the SMTP sink did not start: {line!r}")
    return Sink(proc, int(line.split()[1]), out)


# -- databases ----------------------------------------------------------------------------


def check_local_url(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in LOCAL_HOSTS:
        raise SystemExit(f"{url}: the benches only talk to 127.0.0.1 (got host {host!r})")


@contextlib.contextmanager
def throwaway_postgres(admin_url: str) -> Iterator[str]:
    """A database created on the server of ``admin_url``, dropped afterwards."""
    import psycopg

    check_local_url(admin_url)
    admin = admin_url.replace("postgresql+psycopg://", "postgresql://")
    name = f"netanim_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sql_rows(db_url: str, query: str) -> list[tuple[Any, ...]]:
    """Run a read-only query; on SQLite without taking the write lock (the engine's
    connections begin with BEGIN IMMEDIATE, which would queue behind the daemon)."""
    if db_url.startswith("sqlite:///"):
        path = db_url[len("sqlite:///") :]
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return list(conn.execute(query))
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(db_url.replace("+psycopg", ""), connect_timeout=5) as conn:
        return list(conn.execute(query))  # type: ignore[arg-type]


def reset_outbox(db_url: str) -> None:
    """Every outbox row back to pending, never attempted, and no event: the next round
    starts from the same outbox. PostgreSQL: TRUNCATE, not DELETE, and VACUUM ANALYZE,
    so no round inherits the dead rows of the one before (with DELETE, one daemon went
    557 -> 411 -> 359 msg/s over three rounds)."""
    reset = (
        "UPDATE delivery SET status = 'pending', attempts = 0, sent_at = NULL, "
        "lease_owner = NULL, lease_until = NULL, provider_id = NULL, cost = NULL"
    )
    if db_url.startswith("sqlite:///"):
        conn = sqlite3.connect(db_url[len("sqlite:///") :], timeout=30, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM event")
            conn.execute(reset)
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(db_url.replace("+psycopg", ""), autocommit=True) as pg:
        pg.execute("TRUNCATE event")
        pg.execute(reset)
        pg.execute("VACUUM ANALYZE delivery, event")


def status_counts(db_url: str, message_id: int | None = None) -> dict[str, int]:
    """Outbox rows per status (of one message)."""
    where = f" WHERE message_id = {int(message_id)}" if message_id is not None else ""
    rows = sql_rows(db_url, f"SELECT status, count(*) FROM delivery{where} GROUP BY status")
    return {str(status): int(n) for status, n in rows}


def attempts_histogram(db_url: str, message_id: int) -> dict[int, int]:
    """Rows per number of claims (a row claimed by a killed daemon shows 2 or more)."""
    rows = sql_rows(
        db_url,
        "SELECT attempts, count(*) FROM delivery "
        f"WHERE message_id = {int(message_id)} GROUP BY attempts ORDER BY attempts",
    )
    return {int(a): int(n) for a, n in rows}


# -- the project --------------------------------------------------------------------------


def _replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) < 1:
        raise SystemExit(f"config.example.toml changed: {old!r} not found")
    return text.replace(old, new, 1)


KEPT_TABLES = ("[engine]", "[channels.", "[routing.")


def _kept_tables(body: str) -> str:
    """The example's [engine], [channels.*] and [routing.*] tables; everything else
    (daemon settings, audiences, campaigns, challenges...) is left out."""
    kept, keep = [], True
    for line in body.splitlines(keepends=True):
        if line.startswith("["):
            keep = line.startswith(KEPT_TABLES)
        if keep:
            kept.append(line)
    return "".join(kept)


def example_settings(database_url: str) -> str:
    """config.example.toml's [engine], [channels.*] and [routing.*] tables on
    ``database_url``, with this repository's templates and channel definitions; the other
    paths stay relative (to the folder the config is written in)."""
    body = _kept_tables((REPO / "config.example.toml").read_text(encoding="utf-8"))
    body = _replace_once(
        body, 'database = "sqlite:///var/netanim.db"', f'database = "{database_url}"'
    )
    body = _replace_once(
        body, 'templates_dir = "templates"', f'templates_dir = "{REPO / "templates"}"'
    )
    return _replace_once(body, 'channels_dir = "channels"', f'channels_dir = "{REPO / "channels"}"')


def write_config(
    folder: Path,
    database_url: str,
    *,
    smtp_port: int,
    concurrency: int,
    rate_per_second: float,
    daemon: dict[str, float],
) -> Path:
    """config.example.toml's engine, channel and routing settings, with SMTP to the sink
    and the given [daemon] keys (no audiences nor campaigns: the benches plan their own
    message), every output under ``folder``."""
    body = _kept_tables((REPO / "config.example.toml").read_text(encoding="utf-8"))
    body = _replace_once(
        body, 'database = "sqlite:///var/netanim.db"', f'database = "{database_url}"'
    )
    body = _replace_once(
        body, 'templates_dir = "templates"', f'templates_dir = "{REPO / "templates"}"'
    )
    body = _replace_once(body, 'channels_dir = "channels"', f'channels_dir = "{REPO / "channels"}"')
    body = _replace_once(
        body, 'transport = "file"\ndirectory = "var/outbox/email"', 'transport = "smtp"'
    )
    body = _replace_once(body, 'host = "localhost"', 'host = "127.0.0.1"')
    body = _replace_once(body, "port = 25\n", f"port = {smtp_port}\n")
    body = _replace_once(body, "# concurrency = 4 ", f"concurrency = {concurrency} ")
    body = _replace_once(
        body, "# rate_per_second = 50.0 ", f"rate_per_second = {float(rate_per_second)} "
    )
    table = "\n[daemon]\n" + "".join(f"{k} = {v}\n" for k, v in daemon.items())
    path = folder / "netanim.toml"
    path.write_text(body + table, encoding="utf-8")
    return path


CSV_COLUMNS = [
    "company_id",
    "company_name",
    "sector",
    "size",
    "tier",
    "region",
    "street",
    "postcode",
    "city",
    "country",
    "contact_id",
    "civility",
    "first_name",
    "last_name",
    "role",
    "level",
    "email",
    "email_kind",
    "web_access",
    "consent_email",
    "timezone",
    "language",
]


def write_network_csv(path: Path, contacts: int, per_company: int = 10) -> None:
    """``contacts`` contacts with distinct personal emails, ``per_company`` per company
    (valid French address), email consent, no web access (nothing goes to the portal)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(CSV_COLUMNS)
        for n in range(contacts):
            company = n // per_company
            writer.writerow(
                [
                    f"B{company:06d}",
                    f"Bench Distribution {company:06d}",
                    "telecom",
                    "PME",
                    "silver",
                    "Auvergne-Rhône-Alpes",
                    f"{company % 200 + 1} rue de la République",
                    "69002",
                    "Lyon",
                    "FR",
                    f"P{n:07d}",
                    "Mme" if n % 2 else "M.",
                    "Camille",
                    f"Contact{n:07d}",
                    "commercial",
                    "seller",
                    f"contact{n:07d}@bench.example",
                    "personal",
                    "no",
                    "consent",
                    "Europe/Paris",
                    "fr",
                ]
            )


def import_network(config: Path, folder: Path, contacts: int) -> float:
    """``netanim init`` then ``netanim import network``; returns the seconds taken."""
    started = time.monotonic()
    netanim("init", "-c", str(config))
    csv_path = folder / "network.csv"
    write_network_csv(csv_path, contacts)
    netanim("import", "network", str(csv_path), "-c", str(config), "--json", timeout=600)
    return time.monotonic() - started


@dataclass
class Planned:
    message_id: int
    rows: int
    expected_ids: set[str] = field(repr=False)
    seconds: float


def plan_emails(config: Path, occurrence: str) -> Planned:
    """Queue one operational reminder email per contact (what ``netanim broadcast
    --audience all --urgency reminder --template welcome --kind operational --id
    OCCURRENCE`` plans) without sending any: the daemons do the sending.

    Returns the Message-IDs the sink must see (derived from each row's idempotency key).
    """
    os.environ["NETANIM_SECRET_KEY"] = SECRET
    from sqlalchemy import select

    from network_anim.app import open_app
    from network_anim.channels.email_mime import message_id_for
    from network_anim.config.settings import Audience
    from network_anim.db.models import Delivery
    from network_anim.domain import Level, MessageKind, Urgency
    from network_anim.planning.planner import MessageRequest, plan_message

    started = time.monotonic()
    app = open_app(config)
    try:
        request = MessageRequest(
            campaign_key="broadcast",
            campaign_name="One-off broadcasts",
            campaign_kind="broadcast",
            step="welcome",
            occurrence=occurrence,
            audience=Audience(name="all", description="every active contact"),
            urgency=Urgency.REMINDER,
            template="welcome",
            kind=MessageKind.OPERATIONAL,
            level=Level.SELLER,
        )
        plan = plan_message(app, request)
        assert plan.message_id is not None
        if set(plan.new_rows) != {"email"} or plan.unreachable:
            raise SystemExit(f"unexpected plan: {dict(plan.new_rows)}, {plan.unreachable[:3]}")
        sender = app.config.channels.email.sender
        with app.engine.connect() as conn:
            keys = list(
                conn.scalars(
                    select(Delivery.idempotency_key).where(Delivery.message_id == plan.message_id)
                )
            )
        expected = {message_id_for(key, sender=sender) for key in keys}
    finally:
        app.close()
    return Planned(plan.message_id, len(keys), expected, time.monotonic() - started)


@contextlib.contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="netanim-bench-"))
    try:
        yield folder
    finally:
        if keep:
            print(f"(kept {folder})")
        else:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


_EXCEPTION_LINE = re.compile(r"^\s*((?:\w+\.)*\w*(?:Error|Exception)\b.*)$")


_RECOVERED_LINE = re.compile(r"(\d+) recorded sent from their journals")


def log_findings(logs: Sequence[Path]) -> dict[str, Any]:
    """ERROR records in daemon logs (with the exception each ends on), APScheduler's
    "skipped: maximum number of running instances" warnings (a dispatch tick due while
    the previous drain still runs), and the sends of killed daemons recorded from their
    sent journals."""
    errors: list[str] = []
    skipped = recovered = 0
    for log in logs:
        with contextlib.suppress(OSError):
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
            for n, line in enumerate(lines):
                if " ERROR " in line:
                    text = " ".join(line.split(" ERROR ", 1)[1].split())[:160]
                    for follow in lines[n + 1 : n + 60]:
                        found = _EXCEPTION_LINE.match(follow)
                        if found:
                            text += " -> " + " ".join(found.group(1).split())[:120]
                            break
                    errors.append(text)
                elif "maximum number of running instances reached" in line:
                    skipped += 1
                elif found := _RECOVERED_LINE.search(line):
                    recovered += int(found.group(1))
    return {
        "error_records": len(errors),
        "errors": errors[:3],
        "skipped_tick_warnings": skipped,
        "recorded_from_journals": recovered,
    }


# -- docs/bench-log/ ---------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"nproc {len(os.sched_getaffinity(0))}, {model}, {ram} RAM, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}; load "
        f"average at the end {load} (other work on the machine skews the figures)"
    )


def append_benchmarks(title: str, command: Sequence[str], figures: str, *, notes: str = "") -> None:
    """Record a run in the bench's log, docs/bench-log/<script>.md, newest first; the
    summary table of docs/BENCHMARKS.md (the current figure of each bench) is edited by
    hand from it, since its target and ratio columns are a reading of the issue."""
    script = next((Path(word).stem for word in command if word.endswith(".py")), "other")
    log = BENCH_LOG / f"{script}.md"
    when = dt.datetime.now(dt.UTC).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    section = (
        f"## {title} — {when}\n\n"
        f"- command: `{shlex.join(command)}`\n"
        f"- machine: {machine()}\n\n"
        f"```\n{figures.rstrip()}\n```\n"
    )
    if notes:  # Markdown after the figures (links stay links there)
        section += f"\n{notes.rstrip()}\n"
    text = log.read_text(encoding="utf-8") if log.exists() else _log_header(script)
    first_run = text.find("\n## ")
    if first_run < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        text = text[: first_run + 1] + section + "\n" + text[first_run + 1 :]
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(text, encoding="utf-8")
    print(f"recorded in {log.relative_to(REPO)}; update its row in docs/BENCHMARKS.md")


def _log_header(script: str) -> str:
    return (
        f"# Run log: `bench/{script}.py`\n\n"
        "Dated runs, newest first; [BENCHMARKS.md](../BENCHMARKS.md) keeps the current "
        "figures.\n"
    )


# -- Postfix's smtp-sink (issue 7: the sink that is never the limit) ------------------------


SMTP_SINK = Path("/usr/sbin/smtp-sink")
SMTP_SINK_INSTALL = (
    'echo "postfix postfix/main_mailer_type select No configuration" | '
    "debconf-set-selections && apt-get install -y postfix"
)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"smtp-sink did not listen on 127.0.0.1:{port}")


@dataclass
class PostfixSink:
    """``smtp-sink -c -u nobody 127.0.0.1:PORT 1024``: accepts everything, stores nothing;
    with ``counter`` its running counters (``mesg=N``) go to that file."""

    proc: subprocess.Popen[bytes]
    port: int
    counter: Path | None

    def messages(self) -> int:
        """Messages received so far (the last ``mesg=`` of the counter file)."""
        if self.counter is None:
            raise RuntimeError("started without a counter")
        tail = self.counter.read_bytes()[-200:].decode("ascii", "replace")
        found = re.findall(r"mesg=(\d+)", tail)
        return int(found[-1]) if found else 0


def start_postfix_sink(procs: Processes, counter: Path | None = None) -> PostfixSink:
    if not SMTP_SINK.exists():
        raise SystemExit(f"{SMTP_SINK} not found: install Debian's postfix ({SMTP_SINK_INSTALL})")
    port = free_port()
    argv = [str(SMTP_SINK), *(["-c"] if counter else []), "-u", "nobody", f"127.0.0.1:{port}"]
    proc = procs.start([*argv, "1024"], log=counter)
    wait_port(port)
    return PostfixSink(proc, port, counter)


# -- where the CPU goes (Linux /proc) -------------------------------------------------------


@dataclass(frozen=True)
class CpuSample:
    """The machine's CPU seconds (busy, all cores) and those of process groups, at one
    moment: two samples give what a window of a bench cost, and who spent it."""

    busy: float
    total: float
    groups: dict[str, float]

    def since(self, before: CpuSample) -> CpuSample:
        return CpuSample(
            self.busy - before.busy,
            self.total - before.total,
            {k: v - before.groups.get(k, 0.0) for k, v in self.groups.items()},
        )


def cpu_sample(groups: dict[str, set[int]]) -> CpuSample:
    """``groups`` name sets of pids; every process named ``postgres`` counts as
    ``postgresql`` (its backends come and go)."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    total = sum(fields[:8]) / tick  # guest time is already in user
    idle = (fields[3] + fields[4]) / tick
    spent = dict.fromkeys([*groups, "postgresql"], 0.0)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                head, _, rest = f.read().rpartition(")")
        except OSError:
            continue  # the process ended
        values = rest.split()
        seconds = (int(values[11]) + int(values[12])) / tick
        pid = int(entry.name)
        name = next((g for g, pids in groups.items() if pid in pids), None)
        if name is None and head.endswith("(postgres"):
            name = "postgresql"
        if name is not None:
            spent[name] += seconds
    return CpuSample(total - idle, total, spent)
