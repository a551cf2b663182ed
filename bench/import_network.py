#!/usr/bin/env python3
"""`netanim import network` of 100,000 contacts (20,000 companies) on SQLite.

Issue 18, point 2: "Imports at database speed". Done when, on this 2-core machine:
``import network`` of 100,000 contacts on SQLite >= 20,000 contacts/s and within 3 x a
bare ``csv.reader`` + Core ``executemany`` of the same rows measured in the same run;
peak RSS < 300 MB; the same file again (all updates) within the same bound; one bad line
among 100,000 -> exit 1, nothing changed, the line named.

Each run, in a fresh folder: ``netanim new proj`` and ``netanim init`` (SQLite), then

(a) ``netanim import network network.csv --json``: seconds, contacts/s, the process's
    peak RSS (``RUSAGE_CHILDREN`` ru_maxrss of that child alone);
(b) the same file again (every row compared, nothing to write);
(b') a file where every contact's last name differs (every row an update);
(c) the baseline: ``csv.reader`` over the same file + Core ``executemany`` inserts of
    the same companies, contacts and consents into an empty database of the same schema,
    no validation, no diff;
(d) the ratios (a)/(c), (b)/(c), (b')/(c);
(e) the file with one bad line (line 50,001): exit code, the line named, row counts
    unchanged.

The demo generator's file is cached under /tmp. Figures are medians of ``--runs`` runs,
recorded in docs/bench-log/import_network.md.

Example::

    python bench/import_network.py                       # 3 runs of 100,000 contacts
    python bench/import_network.py --contacts 10000 --runs 1 --no-record
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import REPO, append_benchmarks, bench_env, workspace

TARGET_RATE = 20_000  # contacts/s
TARGET_RATIO = 3.0
TARGET_RSS_MB = 300
CACHE = Path("/tmp/netanim-bench-import")
BAD_LINE = 50_001


def _network_file(companies: int, contacts: int) -> Path:
    from network_anim.demo.network import generate_network_csv

    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"network-{companies}-{contacts}-2026.csv"
    if not path.exists():
        text = generate_network_csv(companies=companies, contacts=contacts, seed=2026)
        path.write_text(text, encoding="utf-8")
    return path


def _variant(source: Path, name: str, edit) -> Path:  # type: ignore[no-untyped-def]
    path = CACHE / f"{source.stem}-{name}.csv"
    if not path.exists():
        header, *lines = source.read_text(encoding="utf-8").splitlines()
        columns = header.split(";")
        out = [header]
        for number, line in enumerate(lines, start=2):
            cells = line.split(";")
            edit(columns, cells, number)
            out.append(";".join(cells))
        path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def _renamed(columns: list[str], cells: list[str], number: int) -> None:
    cells[columns.index("last_name")] += "-Neuf"


def _one_bad(columns: list[str], cells: list[str], number: int) -> None:
    if number == BAD_LINE:
        cells[columns.index("level")] = "boss"


def _netanim(
    project: Path, *args: str, ok: bool = True
) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(seconds, peak RSS in MB of that process alone, the process), the RSS as GNU time
    reports it (RUSAGE_CHILDREN would give the largest child so far)."""
    env = {k: v for k, v in bench_env().items() if not k.startswith("NETANIM_DB")}
    rss_file = project / ".rss"
    started = time.monotonic()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", "-o", str(rss_file),
         sys.executable, "-m", "network_anim", *args],
        cwd=project, env=env, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    if ok and done.returncode != 0:
        raise SystemExit(f"netanim {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    rss_kb = int(rss_file.read_text().split()[-1])
    return seconds, rss_kb / 1024, done


def _counts(db: Path) -> tuple[int, int, int]:
    with sqlite3.connect(db) as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("company", "contact", "consent")
        )


def baseline(path: Path, empty_db: Path, folder: Path) -> float:
    """csv.reader + Core executemany of the same rows, no checks: the floor."""
    from sqlalchemy import insert, select

    from network_anim.db.engine import make_engine
    from network_anim.db.models import Company, Consent, Contact
    from network_anim.domain import CHANNEL_NAMES

    db = folder / "baseline.db"
    shutil.copy(empty_db, db)
    engine = make_engine(f"sqlite:///{db}")
    now = datetime.now(UTC)
    started = time.monotonic()
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=";")
        header = next(reader)
        at = {name: i for i, name in enumerate(header)}
        rows = list(reader)
    company_cols = ("name", "sector", "size", "tier", "region", "delivery_point", "building",
                    "street", "locality", "postcode", "city", "country")  # fmt: skip
    companies: dict[str, dict[str, object]] = {}
    for row in rows:
        if row[at["company_id"]] not in companies:
            companies[row[at["company_id"]]] = {
                "external_id": row[at["company_id"]],
                **{c: row[at["company_name" if c == "name" else c]] for c in company_cols},
                "created_at": now,
                "updated_at": now,
            }
    contact_cols = ("civility", "first_name", "last_name", "role", "level", "email",
                    "email_kind", "mobile", "phone", "timezone", "language")  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(Company), list(companies.values()))
        company_ids = dict(conn.execute(select(Company.external_id, Company.id)).all())  # type: ignore[call-overload]
        conn.execute(
            insert(Contact),
            [
                {
                    "external_id": row[at["contact_id"]],
                    "company_id": company_ids[row[at["company_id"]]],
                    **{c: row[at[c]] for c in contact_cols},
                    **{c: row[at[c]] or None for c in ("email", "mobile", "phone")},
                    "email_kind": row[at["email_kind"]] or "none",
                    "web_access": row[at["web_access"]] == "yes",
                    "active": True,
                    "email_invalid_reason": "",
                    "created_at": now,
                    "updated_at": now,
                }
                for row in rows
            ],
        )
        contact_ids = dict(conn.execute(select(Contact.external_id, Contact.id)).all())  # type: ignore[call-overload]
        conn.execute(
            insert(Consent),
            [
                {
                    "contact_id": contact_ids[row[at["contact_id"]]],
                    "channel": channel,
                    "basis": row[at[f"consent_{channel}"]],
                    "source": "baseline",
                    "updated_at": now,
                }
                for row in rows
                for channel in CHANNEL_NAMES
                if row[at[f"consent_{channel}"]]
            ],
        )
    seconds = time.monotonic() - started
    engine.dispose()
    return seconds


def run_once(
    folder: Path, source: Path, renamed: Path, bad: Path, contacts: int
) -> dict[str, object]:
    subprocess.run(
        [sys.executable, "-m", "network_anim", "new", "proj"],
        cwd=folder, env=bench_env(), capture_output=True, check=True,
    )  # fmt: skip
    project = folder / "proj"
    _netanim(project, "init")
    db = project / "var" / "netanim.db"
    empty = folder / "empty.db"
    shutil.copy(db, empty)
    first, first_rss, _ = _netanim(project, "import", "network", str(source), "--json")
    counts = _counts(db)
    again, again_rss, _ = _netanim(project, "import", "network", str(source), "--json")
    updates, updates_rss, done = _netanim(project, "import", "network", str(renamed), "--json")
    before_bad = _counts(db)
    bad_seconds, bad_rss, bad_run = _netanim(project, "import", "network", str(bad), ok=False)
    floor = baseline(source, empty, folder)
    return {
        "first": first,
        "again": again,
        "updates": updates,
        "baseline": floor,
        "rss": max(first_rss, again_rss, updates_rss),
        "counts": counts,
        "updates_summary": done.stdout.strip(),
        "bad_code": bad_run.returncode,
        "bad_named": f"line {BAD_LINE}:" in bad_run.stderr,
        "bad_unchanged": _counts(db) == before_bad,
        "bad_seconds": bad_seconds,
        "bad_rss": bad_rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-record", action="store_true", help="do not append to the log")
    args = parser.parse_args()
    if args.contacts < BAD_LINE:
        raise SystemExit(f"--contacts must be at least {BAD_LINE} (the bad line's number)")

    source = _network_file(args.contacts // 5, args.contacts)
    renamed = _variant(source, "renamed", _renamed)
    bad = _variant(source, "bad-line", _one_bad)
    results = []
    for n in range(args.runs):
        with workspace(keep=False) as folder:
            result = run_once(folder, source, renamed, bad, args.contacts)
        print(
            f"run {n + 1}: import {result['first']:.2f} s, again {result['again']:.2f} s, "
            f"all updates {result['updates']:.2f} s, baseline {result['baseline']:.2f} s, "
            f"peak RSS {result['rss']:.0f} MB"
        )
        results.append(result)

    def median(key: str) -> float:
        return statistics.median(float(r[key]) for r in results)  # type: ignore[arg-type]

    first, again, updates, floor = (median(k) for k in ("first", "again", "updates", "baseline"))
    rss = max(float(r["rss"]) for r in results)  # type: ignore[arg-type]
    n = args.contacts
    last = results[-1]

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    figures = "\n".join(
        [
            f"contacts: {n:,} ({n // 5:,} companies), runs: {args.runs}; rows written "
            f"(company, contact, consent): {last['counts']}",
            "import, s per run: " + ", ".join(f"{r['first']:.2f}" for r in results),
            f"(a) import median: {first:.2f} s = {n / first:,.0f} contacts/s "
            f"(target >= {TARGET_RATE:,}: {verdict(n / first >= TARGET_RATE)})",
            f"(b) same file again median: {again:.2f} s = {n / again:,.0f} contacts/s",
            f"(b') every contact updated median: {updates:.2f} s = {n / updates:,.0f} contacts/s "
            f"({last['updates_summary']})",
            f"(c) baseline csv.reader + Core executemany median: {floor:.2f} s = "
            f"{n / floor:,.0f} contacts/s",
            f"(d) ratios to the baseline: import x{first / floor:.2f}, again x{again / floor:.2f}, "
            f"updates x{updates / floor:.2f} (target <= x{TARGET_RATIO:g}: "
            f"{verdict(max(first, again, updates) / floor <= TARGET_RATIO)})",
            f"peak RSS of the import processes: {rss:.0f} MB (target < {TARGET_RSS_MB}: "
            f"{verdict(rss < TARGET_RSS_MB)})",
            f"(e) one bad line (line {BAD_LINE:,}): exit {last['bad_code']}, line named: "
            f"{last['bad_named']}, row counts unchanged: {last['bad_unchanged']} "
            f"({last['bad_seconds']:.1f} s, peak RSS {last['bad_rss']:.0f} MB)",
        ]
    )
    print(figures)
    if not args.no_record:
        append_benchmarks(
            "import network of 100,000 contacts on SQLite",
            ["python", "bench/import_network.py", *sys.argv[1:]],
            figures,
        )


if __name__ == "__main__":
    os.chdir(REPO)
    main()
