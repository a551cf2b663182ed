#!/usr/bin/env python3
"""A 20,000-contact broadcast on the embedded default, as a new user runs it.

Issue 14, point 7: "a 20,000-contact broadcast on the embedded default (file transports)
finishes in well under a minute here (figure in docs/BENCHMARKS.md)". Baseline named in
the issue: 6 min 26 s (386 s) for the same broadcast when the file transport was held to
the email channel's 50 messages/s.

Each run, in a fresh folder: ``netanim new proj`` (SQLite, file transports, no
credentials), ``netanim init``, ``netanim import network`` of the demo generator's
20,000-contact network (2,000 companies: personal and shared mailboxes, mobiles, web
access, consents and opt-outs as the demo draws them), then the timed command, exactly as
a channel manager types it:

    netanim broadcast --audience all --urgency info --template welcome --id w1

(planning, rendering, the outbox, and sending every row through the file transports:
.eml files, the SMS JSON lines, portal posts, letters). The import is timed too. The
figures are the medians of ``--runs`` runs, the ratio to the baseline, and what was
written (files per channel), appended to docs/BENCHMARKS.md.

Example::

    python bench/broadcast_default.py                     # 3 runs of 20,000 contacts
    python bench/broadcast_default.py --contacts 2000 --runs 1 --no-record
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import SECRET, append_benchmarks, workspace

from network_anim.demo.network import generate_network_csv

BASELINE_SECONDS = 386.0  # issue 14: 6 min 26 s, file transport throttled to 50/s
BROADCAST = ("broadcast", "--audience", "all", "--urgency", "info", "--template", "welcome")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETANIM_")}
    env["NETANIM_SECRET_KEY"] = SECRET
    env["COLUMNS"] = "200"
    return env


def _netanim(cwd: Path, *args: str) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "network_anim", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"netanim {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout


def _written(project: Path) -> dict[str, int]:
    var = project / "var"
    sms = var / "outbox" / "sms" / "sms.jsonl"
    return {
        "email files": len(list((var / "outbox" / "email").glob("*.eml"))),
        "sms lines": len(sms.read_text(encoding="utf-8").splitlines()) if sms.exists() else 0,
        "letter PDFs": len(list((var / "exports" / "print").glob("letters-*.pdf"))),
    }


def run_once(folder: Path, contacts: int, csv_text: str) -> dict[str, object]:
    _netanim(folder, "new", "proj")
    project = folder / "proj"
    (project / "network.csv").write_text(csv_text, encoding="utf-8")
    _netanim(project, "init")
    import_seconds, _ = _netanim(project, "import", "network", "network.csv", "--json")
    seconds, out = _netanim(project, *BROADCAST, "--id", "w1", "--json")
    summary = json.loads(out)
    return {
        "import": import_seconds,
        "broadcast": seconds,
        "outcomes": summary.get("outcomes"),
        "written": _written(project),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-record", action="store_true", help="do not append to BENCHMARKS")
    args = parser.parse_args()

    csv_text = generate_network_csv(companies=max(1, args.contacts // 10), contacts=args.contacts)
    results = []
    for n in range(args.runs):
        with workspace(keep=False) as folder:
            result = run_once(folder, args.contacts, csv_text)
        print(
            f"run {n + 1}: import {result['import']:.1f} s, broadcast {result['broadcast']:.1f} s"
        )
        results.append(result)

    broadcast = statistics.median(r["broadcast"] for r in results)  # type: ignore[misc]
    imported = statistics.median(r["import"] for r in results)  # type: ignore[misc]
    last = results[-1]
    figures = "\n".join(
        [
            f"contacts: {args.contacts:,}, runs: {args.runs}",
            "broadcast (plan + send through the file transports), seconds per run: "
            + ", ".join(f"{r['broadcast']:.1f}" for r in results),
            f"broadcast median: {broadcast:.1f} s = x{BASELINE_SECONDS / broadcast:.1f} faster "
            f"than the issue's baseline ({BASELINE_SECONDS:.0f} s, x{broadcast / BASELINE_SECONDS:.3f})",
            "import network, seconds per run: " + ", ".join(f"{r['import']:.1f}" for r in results),
            f"import median: {imported:.1f} s",
            f"outcomes (last run): {json.dumps(last['outcomes'], sort_keys=True)}",
            f"written (last run): {json.dumps(last['written'])}",
        ]
    )
    print(figures)
    if not args.no_record:
        append_benchmarks(
            "Broadcast on the embedded default (SQLite, file transports)",
            ["python", "bench/broadcast_default.py", *sys.argv[1:]],
            figures,
        )


if __name__ == "__main__":
    main()
