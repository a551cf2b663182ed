#!/usr/bin/env python3
"""CLI start-up bench: how long ``netanim --help`` takes next to a bare Python.

Issue requirement: "``netanim --help`` wall time vs ``python -c pass`` (imports kept
lazy)". Done when ``netanim --help`` takes at most 0.5 s or at most 5 x ``python -c pass``.

Each command runs ``--runs`` times (at least 10), the commands taking turns so that a
change in the machine's load touches them all alike, after one untimed warm-up run
each (file cache). Wall time of the whole process (``subprocess.run``, output to
/dev/null). Figures: median and minimum, the ratio of the medians to ``python -c pass``
measured in the same run. Commands:

* ``python -c pass``: the interpreter and its site imports, the baseline;
* ``python -c "import click"``: the CLI framework, the least ``--help`` can cost;
* ``python -m network_anim --help``;
* ``netanim --help``: the console script next to the interpreter, and, when the one
  found on PATH is another file (a pyenv shim...), that one too.

Then the imports of ``python -m network_anim --help`` (``python -X importtime``): their
number, the slowest top-level ones, and whether any heavy package is among them.

Example::

    python bench/cli_startup.py
    python bench/cli_startup.py --runs 20 --no-record
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import benchlib as lib

TARGET_SECONDS = 0.5
TARGET_RATIO = 5.0
# What --help must not need: storage, templates, configuration, transports, web.
HEAVY = (
    "sqlalchemy",
    "sqlmodel",
    "pydantic",
    "jinja2",
    "rich",
    "twilio",
    "aiohttp",
    "apscheduler",
    "fastapi",
    "uvicorn",
    "phonenumbers",
    "psycopg",
)


@dataclass
class Timed:
    label: str
    argv: list[str]
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return float(statistics.median(self.seconds))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0],
        epilog="Example: python bench/cli_startup.py --runs 20",
    )
    parser.add_argument("--runs", type=int, default=15, help="timed runs per command (15)")
    parser.add_argument("--top", type=int, default=12, help="slowest imports listed (12)")
    parser.add_argument(
        "--no-record", action="store_true", help="do not append to docs/BENCHMARKS.md"
    )
    args = parser.parse_args(argv)
    if args.runs < 10:
        parser.error("--runs: at least 10")
    return args


def environment() -> dict[str, str]:
    env = lib.bench_env()
    env.pop("PYTHONUNBUFFERED", None)  # as a user would run it
    return env


def run_once(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=environment(),
        cwd=str(lib.REPO),
        timeout=60,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-500:]!r}")
    return elapsed


def commands() -> list[Timed]:
    python = sys.executable
    timed = [
        Timed("python -c pass", [python, "-c", "pass"]),
        Timed('python -c "import click"', [python, "-c", "import click"]),
        Timed("python -m network_anim --help", [python, "-m", "network_anim", "--help"]),
    ]
    script = Path(python).parent / "netanim"
    if script.exists():
        timed.append(Timed(f"netanim --help ({script})", [str(script), "--help"]))
    on_path = shutil.which("netanim")
    if on_path and Path(on_path).resolve() != script.resolve():
        timed.append(Timed(f"netanim --help (on PATH: {on_path})", [on_path, "--help"]))
    return timed


def measure(timed: list[Timed], runs: int) -> None:
    for command in timed:
        run_once(command.argv)  # warm-up, untimed
    for _ in range(runs):
        for command in timed:
            command.seconds.append(run_once(command.argv))


@dataclass
class Imports:
    count: int
    top: list[tuple[str, float]]  # top-level modules and their cumulative ms
    heavy: list[str]  # heavy top-level packages imported


def imports_of_help(top: int) -> Imports:
    """What ``python -m network_anim --help`` imports, from ``-X importtime``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "network_anim", "--help"],
        capture_output=True,
        text=True,
        env=environment(),
        cwd=str(lib.REPO),
        timeout=60,
        check=False,
    )
    outermost: dict[str, float] = {}
    names: set[str] = set()
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        _, cumulative, name = line.split("|")
        if not cumulative.strip().isdigit():
            continue  # the header
        names.add(name.strip())
        # Modules imported by nobody else in the listing (no indentation): what the
        # interpreter start-up and network_anim ask for directly.
        if name.startswith(" ") and not name.startswith("  "):
            outermost[name.strip()] = int(cumulative) / 1000
    heavy = sorted({n.split(".")[0] for n in names} & set(HEAVY))
    ranked = sorted(outermost.items(), key=lambda item: -item[1])[:top]
    return Imports(len(names), ranked, heavy)


def report(timed: list[Timed], imports: Imports, runs: int) -> tuple[list[str], list[str]]:
    base = timed[0].median
    lines = [
        f"{runs} timed runs per command (taking turns, after one warm-up run each); "
        "wall time of the whole process; ratio = median / median of python -c pass",
        "",
        "| command | median | min | ratio |",
        "|---|---:|---:|---:|",
    ]
    for command in timed:
        lines.append(
            f"| {command.label} | {command.median * 1000:.0f} ms | "
            f"{min(command.seconds) * 1000:.0f} ms | x{command.median / base:.2f} |"
        )
    lines += [
        "",
        f"python -m network_anim --help imports {imports.count} modules; slowest top-level "
        "imports (cumulative ms, -X importtime, one run):",
        "  " + ", ".join(f"{name} {ms:.1f}" for name, ms in imports.top),
        f"heavy packages imported: {', '.join(imports.heavy) or 'none'} (checked: "
        f"{', '.join(HEAVY)})",
    ]
    problems = []
    for command in timed[2:]:
        if "on PATH" in command.label:
            continue  # a version manager's shim is the user's setup, not the package's
        ratio = command.median / base
        if command.median > TARGET_SECONDS and ratio > TARGET_RATIO:
            problems.append(
                f"{command.label}: {command.median * 1000:.0f} ms, x{ratio:.2f} "
                f"(target: <= {TARGET_SECONDS * 1000:.0f} ms or <= x{TARGET_RATIO:g})"
            )
    return lines, problems


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    lib.interrupt_on_signals()
    started = time.monotonic()
    timed = commands()
    try:
        measure(timed, args.runs)
        imports = imports_of_help(args.top)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    lines, problems = report(timed, imports, args.runs)
    lines += [f"problem: {p}" for p in problems]
    lines.append(
        f"result: {'FAIL' if problems else 'PASS'} (target: netanim --help <= "
        f"{TARGET_SECONDS * 1000:.0f} ms or <= x{TARGET_RATIO:g} python -c pass)"
    )
    lines.append(f"bench wall time: {time.monotonic() - started:.0f} s; cpus {os.cpu_count()}")
    text = "\n".join(lines)
    print(text)
    if not args.no_record:
        command = ["python", "bench/cli_startup.py", *(argv if argv is not None else sys.argv[1:])]
        lib.append_benchmarks("CLI start-up", command, text)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
