"""Every example printed by `--help` runs as written (the README's rule), so none can rot.

The examples of every command and sub-command, found by walking the click tree from
``network_anim.cli`` (a new command is picked up with nothing to add here), are run
against the project `netanim new` writes, with its sample data brought in by the
commands a user types (SETUP). Each example gets a fresh copy of that project and runs
after the examples printed above it in the same help, as a reader types them in order;
it must exit 0 without a traceback. Commands that run until stopped (daemon, serve) are
started as processes, waited for, stopped with SIGTERM and must exit 0.

Example lines are the lines under a heading starting with "Example" and ending with ":"
up to the next blank line; each is `netanim ...` (a trailing backslash continues it), or
such commands and `cd DIR` joined by `&&`, optionally `> FILE`; anything else fails here.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import pytest
from click.testing import CliRunner

import network_anim.app as app_module
from network_anim.clock import SimulatedClock

# The examples read ./netanim.toml and its database: a config or database named in the
# environment the tests run in must not redirect them (None: unset).
ENV = {"NETANIM_SECRET_KEY": "k" * 40, "COLUMNS": "200", "NETANIM_CONFIG": None, "NETANIM_DB": None}
# The sample challenge runs from January to April 2027 and its sales are dated January to
# March: the examples are run on a Wednesday morning at the end of March 2027 (inside
# every send window, after the last sample sale), not on the day the tests run, which
# would make the same example pass or fail by the calendar.
MOMENT = datetime(2027, 3, 31, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))
# Who declared the sales of examples/sales.csv (sale ids 1-18, in the file's order).
SELLERS = ("C0001", "C0002", "C0003", "C0004", "C0005", "C0007", "C0008", "C0010", "C0011")
SELLERS += ("C0012", "C0014", "C0015")
# The sample project: `netanim new`, then what a user types to have what the examples
# use: the network and sales imported, the sellers who made them registered to the
# challenge, their declarations approved, a gift ordered (redemption 1), the companies'
# RFM segments computed, the welcome message sent.
SETUP = (
    "netanim init",
    "netanim import network examples/network.csv",
    "netanim import sales examples/sales.csv --challenge pbx-2027",
    "netanim challenge register pbx-2027 " + " ".join(f"--contact {c}" for c in SELLERS),
    "netanim challenge claims pbx-2027 " + " ".join(f"--approve {n}" for n in range(1, 19)),
    "netanim points redeem C0008 coffret-gourmand",
    "netanim segment rfm",
    "netanim broadcast --audience all --urgency info --template welcome --id welcome-2027",
    "netanim dispatch",
)
# What an example names that the test machine does not have as such, replaced in the
# arguments only: init's PostgreSQL example gets this run's throwaway database (a
# database named "netanim" on the server may be someone's), serve's port a free one.
PG_EXAMPLE = "postgresql://postgres@127.0.0.1:5432/netanim"
SERVE_PORT = "8080"
# Commands that run until stopped, and the log line that says they are up.
RUN_UNTIL_STOPPED = {"daemon": "scheduler role taken", "serve": "Uvicorn running on"}
# Commands that talk to a running daemon: they run while one runs in the project.
NEED_A_DAEMON = {"reload": "config reloaded"}


@dataclass(frozen=True)
class Example:
    command: tuple[str, ...]  # the help it is printed in: ("challenge", "claims")
    index: int  # its place in that help, from 0
    text: str  # as printed, continuation lines joined

    @property
    def id(self) -> str:
        return f"{' '.join(('netanim', *self.command))} #{self.index + 1}: {self.text}"


def _commands(
    group: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, group
    if isinstance(group, click.Group):
        ctx = click.Context(group, info_name="netanim")
        for name in group.list_commands(ctx):
            sub = group.get_command(ctx, name)
            assert sub is not None, name
            yield from _commands(sub, (*path, name))


def _help(path: tuple[str, ...]) -> str:
    from network_anim.cli import main

    with CliRunner().isolation(env=ENV) as (out, _err, _both):
        try:
            main([*path, "--help"])
        except SystemExit as exc:
            assert not exc.code, (path, exc.code)
        return out.getvalue().decode()


def examples_of(help_text: str) -> list[str]:
    """The example lines of one help text, continuation lines joined."""
    found: list[str] = []
    lines = help_text.splitlines()
    for number, line in enumerate(lines):
        heading = line.strip()
        if not (heading.startswith("Example") and heading.endswith(":")):
            continue
        pending = ""
        for item in lines[number + 1 :]:
            if not item.strip():
                break
            pending += item.strip()
            if pending.endswith("\\"):
                pending = pending[:-1].rstrip() + " "
                continue
            found.append(pending)
            pending = ""
    return found


def _all_examples() -> list[Example]:
    from network_anim.cli import cli

    found = []
    for path, _command in _commands(cli):
        found.extend(Example(path, n, text) for n, text in enumerate(examples_of(_help(path))))
    return found


EXAMPLES = _all_examples()


def test_every_command_has_examples_in_the_uniform_shape() -> None:
    from network_anim.cli import cli

    # A leaf command without an example is one this test would quietly not run.
    leaves = [p for p, c in _commands(cli) if p and not isinstance(c, click.Group)]
    with_examples = {e.command for e in EXAMPLES}
    assert [p for p in leaves if p not in with_examples] == []
    for example in EXAMPLES:
        for command in _split(example):
            assert command[0] in ("netanim", "cd"), example.id


def _split(example: Example) -> list[list[str]]:
    """`a && b > f` -> [[a...], [b..., >, f]]; shell syntax we do not run is refused."""
    words = shlex.split(example.text, comments=True)
    for word in words:
        bad = [s for s in ("|", ";", "$", "`", "<", "2>", "&") if s in word and word != "&&"]
        assert not bad, f"{example.id}: shell syntax {bad} is not run by this test"
    commands: list[list[str]] = [[]]
    for word in words:
        if word == "&&":
            commands.append([])
        else:
            commands[-1].append(word)
    return commands


@dataclass
class Ran:
    code: int
    out: str
    err: str
    error: str  # the traceback of an exception that escaped main(), if any

    def __str__(self) -> str:
        return (
            f"exit {self.code}\nstdout:\n{self.out[-3000:]}\nstderr:\n{self.err[-3000:]}"
            f"{self.error}"
        )


def run_in_process(args: list[str]) -> Ran:
    """`netanim ARGS` through its real entry point (user errors -> exit 1), on MOMENT."""
    from network_anim.cli import main

    original = app_module.open_app

    def at_moment(*a, **kw):  # type: ignore[no-untyped-def]
        kw.setdefault("clock", SimulatedClock(MOMENT))
        return original(*a, **kw)

    app_module.open_app = at_moment
    code, error = 0, ""
    try:
        with CliRunner().isolation(env=ENV) as (out, err, _both):
            try:
                main(args)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                code, error = 1, "\n" + traceback.format_exc()
            return Ran(code, out.getvalue().decode(), err.getvalue().decode(), error)
    finally:
        app_module.open_app = original


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Process:
    """`netanim ARGS` as a process in the current folder, its output in a log file. On the
    real clock: the daemon's first ticks are due at its app clock's now on a real-time
    scheduler, so a clock stopped at MOMENT (in the future) would never tick."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.log = Path(f"netanim-{args[0]}-{os.getpid()}-{time.monotonic_ns()}.log")
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "network_anim", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={
                    **{k: v for k, v in os.environ.items() if k not in ENV},
                    **{k: v for k, v in ENV.items() if v is not None},
                    **env,
                },
            )

    def wait_for(self, line: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while line not in self.text() and time.monotonic() < deadline:
            assert self.process.poll() is None, f"exited {self.process.returncode}:\n{self.text()}"
            time.sleep(0.05)
        assert line in self.text(), f"no {line!r} within {timeout} s:\n{self.text()}"

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        finally:
            if self.process.poll() is None:
                self.process.kill()

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def run_until_stopped(args: list[str], ready: str) -> None:
    env = {"NETANIM_SERVE_PORT": str(_free_port())}  # the default port may be taken
    process = Process(args, env)
    try:
        process.wait_for(ready)
    finally:
        code = process.stop()
    assert code == 0, f"exit {code} on SIGTERM:\n{process.text()}"
    assert "Traceback" not in process.text(), process.text()


def run_with_a_daemon(args: list[str], effect: str) -> None:
    daemon = Process(["daemon"], {})
    try:
        daemon.wait_for(RUN_UNTIL_STOPPED["daemon"])
        ran = run_in_process(args)
        assert ran.code == 0 and not ran.error, str(ran)
        daemon.wait_for(effect)
    finally:
        code = daemon.stop()
    assert code == 0, daemon.text()


def run_line(text: str, substitute: Callable[[list[str]], list[str]] = lambda a: a) -> None:
    """One example line, in the current folder: every command of it must succeed."""
    for words in _split(Example((), 0, text)):
        if words[0] == "cd":
            os.chdir(words[1])
            continue
        args, target = words[1:], None
        if ">" in args:
            args, target = args[: args.index(">")], args[args.index(">") + 1]
        args = substitute(args)
        if args and args[0] in RUN_UNTIL_STOPPED:
            run_until_stopped(args, RUN_UNTIL_STOPPED[args[0]])
            continue
        if args and args[0] in NEED_A_DAEMON:
            run_with_a_daemon(args, NEED_A_DAEMON[args[0]])
            continue
        ran = run_in_process(args)
        assert ran.code == 0 and not ran.error, f"{' '.join(words)}\n{ran}"
        assert "Traceback" not in ran.out + ran.err, str(ran)
        if target is not None:
            Path(target).write_text(ran.out, encoding="utf-8")


def _setup_command(line: str) -> tuple[str, ...]:
    """The command a SETUP line runs: ("challenge", "claims") for its arguments."""
    words = shlex.split(line)[1:]
    from network_anim.cli import cli

    path: list[str] = []
    command: click.Command = cli
    while isinstance(command, click.Group) and words:
        sub = command.get_command(click.Context(command), words[0])
        if sub is None:
            break
        path.append(words.pop(0))
        command = sub
    return tuple(path)


@pytest.fixture(scope="module")
def sample_stages(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, ...], Path]:
    """The sample project before each SETUP command (the key), and complete (key ())."""
    folder = tmp_path_factory.mktemp("sample")
    stages: dict[tuple[str, ...], Path] = {}
    here = Path.cwd()
    os.chdir(folder)
    try:
        run_line("netanim new project")
        os.chdir("project")
        for number, line in enumerate(SETUP):
            command = _setup_command(line)
            if command not in stages:
                stages[command] = folder / f"before-{number}"
                shutil.copytree(folder / "project", stages[command])
            run_line(line)
    finally:
        os.chdir(here)
    stages[()] = folder / "project"
    return stages


@pytest.fixture(scope="module")
def after_example(tmp_path_factory: pytest.TempPathFactory) -> dict[Example, tuple[Path, Path]]:
    """The project as each example left it and the folder it left the reader in (`cd`),
    relative to the project, for the next example of the same help: so a full run runs
    every example once (one selected alone runs those above it first)."""
    return {}


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_example_runs_as_written(
    example: Example,
    sample_stages: dict[tuple[str, ...], Path],
    after_example: dict[Example, tuple[Path, Path]],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    def substitute(args: list[str]) -> list[str]:
        if PG_EXAMPLE in args:
            url = request.getfixturevalue("postgres_url")
            args = [url if a == PG_EXAMPLE else a for a in args]
        if args[:1] == ["serve"] and SERVE_PORT in args:
            args = [str(_free_port()) if a == SERVE_PORT else a for a in args]
        return args

    project = tmp_path / "project"
    above = [e for e in EXAMPLES if e.command == example.command and e.index < example.index]
    if above and above[-1] in after_example:
        kept, folder = after_example[above[-1]]
        shutil.copytree(kept, project, symlinks=True)
        monkeypatch.chdir(project / folder)
    else:
        # An example of a command SETUP runs sees the project as it was before that
        # command first ran (no sales yet for `import sales`...); any other, all of it.
        shutil.copytree(sample_stages.get(example.command, sample_stages[()]), project)
        monkeypatch.chdir(project)
        for earlier in above:
            if _split(earlier)[0][1] in RUN_UNTIL_STOPPED:
                continue  # it ran until stopped: nothing in it is for the next ones
            run_line(earlier.text, substitute)
    run_line(example.text, substitute)
    if not any(e.command == example.command and e.index > example.index for e in EXAMPLES):
        return
    kept = tmp_path_factory.mktemp("after")
    shutil.copytree(project, kept / "project", symlinks=True)
    after_example[example] = (kept / "project", Path.cwd().relative_to(project))


def test_plan_reads_the_project_config_like_every_command(
    sample_stages: dict[tuple[str, ...], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """plan required a positional CONFIG_FILE, so its example failed in a project (no -c,
    ./netanim.toml); -c and the positional alias now work too, and two files are refused."""
    project = tmp_path / "project"
    shutil.copytree(sample_stages[()], project)
    monkeypatch.chdir(project)
    days = ["--from", "2026-12-01", "--to", "2026-12-08", "--json"]
    implicit = run_in_process(["plan", *days])
    assert implicit.code == 0, str(implicit)
    assert '"campaign": "restock"' in implicit.out  # the project's campaigns were planned
    for named in (["-c", "netanim.toml"], ["netanim.toml"]):
        ran = run_in_process(["plan", *named, *days])
        assert ran.code == 0 and ran.out == implicit.out, str(ran)
    (project / "other.toml").write_text("", encoding="utf-8")
    both = run_in_process(["plan", "other.toml", "-c", "netanim.toml", *days])
    assert both.code == 1 and "two config files given" in both.err, str(both)
