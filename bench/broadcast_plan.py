#!/usr/bin/env python3
"""Broadcast planning bench: plan, render and insert one broadcast to 100,000 contacts.

Issue 7, benchmark 1: "plan + render + insert a broadcast to 100,000 generated contacts
over the four channels (SQLite and PostgreSQL). Baseline in the same run: a bare Jinja2
render loop of the same templates plus one Core executemany insert of the same rows. Also
peak RSS." Done when the engine takes at most 2 x the baseline and its peak RSS stays
under 300 MB.

For each backend (a SQLite file in a temporary folder; a throwaway PostgreSQL database
created next to ``--pg`` and dropped at the end) the bench:

1. migrates the schema (``netanim init``) and generates the network straight into the
   tables with Core ``executemany`` (not ``netanim import network``: that takes about 75 s
   for 100,000 contacts, longer than the whole measurement). Proportions follow the
   habits of ``network_anim.demo.network`` (DESIGN.md §1): white-collar partners (62 % of
   the contacts) mostly have a personal email and web access; electrical wholesalers
   (20 %) share more mailboxes; installers (18 %) often share a mailbox or have no email,
   40 % of them have no web access, and 15 % of installer companies have no postal
   address on record (their contacts without email nor web are reachable by SMS only).
   Overseas (Guadeloupe, La Réunion) and Belgian partners bring other time zones,
   holidays and a Dutch-speaking audience; consents follow the demo's shares (opt-outs
   and blanks on every channel);
2. runs, ``--runs`` times, in a fresh subprocess each (so neither the other runs nor the
   baseline pollute its peak RSS), the engine's broadcast planning path as ``netanim
   broadcast`` runs it before dispatching: count the audience, then ``plan_message``
   (audience in batches, consents and frequency caps, routing, rendering of email text +
   HTML with signed links and open pixel, SMS with its segments, the portal post and the
   intranet rows, print letters with their NF Z10-011 address block, outbox insert, one
   commit). The message is the marketing ``monthly-news`` at urgency ``info`` on the
   default routing plus SMS as the last fallback (``[routing.urgencies.info] fallback =
   ["print", "sms"]``), so all four channels get rows;
3. right after each engine run, the baseline in another fresh subprocess: it reads what
   the engine planned (untimed), empties the outbox, then times a bare Jinja2
   ``Environment`` (same loader and options, each template compiled once) rendering the
   same templates for the same rows with the same variables (URLs already signed), plus
   one Core ``executemany`` insert of rows of the same size into the same ``delivery``
   table, in one transaction;
4. empties the outbox (and the run's message and posts) before the next run.

Figures: medians of the runs, the ratio engine / baseline of the same run, rows per
channel, peak RSS (VmHWM of the child), appended to docs/BENCHMARKS.md.

Example::

    python bench/broadcast_plan.py                        # both backends, 100,000 contacts
    python bench/broadcast_plan.py --contacts 10000 --runs 1 --backend sqlite --no-record
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import benchlib as lib

# A Wednesday morning (11:00 in Paris): inside the legal SMS window, outside quiet hours.
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
TEMPLATE = "monthly-news"
VARIABLES = {"headline": "Les nouvelles du réseau de novembre"}
TARGET_RATIO = 2.0
TARGET_RSS_MB = 300.0
INSERT_CHUNK = 5000  # rows per executemany while generating the network

# -- the network --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Habits:
    """One kind of partner: its share of the contacts and its contacts' equipment."""

    share: float
    personal: float  # personal email; then shared mailbox; the rest has no email
    shared: float
    no_web: float
    mobile: float
    headcount: tuple[int, int]
    no_address: float  # companies with no postal address on record
    trade: str


# demo_network's _HABITS, by share of the contacts rather than of the companies.
GROUPS = {
    "white": Habits(0.62, 0.94, 0.04, 0.015, 0.92, (4, 20), 0.0, "Télécom Services"),
    "electrical": Habits(0.20, 0.72, 0.20, 0.06, 0.93, (6, 20), 0.0, "Comptoir Électrique"),
    "installer": Habits(0.18, 0.20, 0.55, 0.40, 0.97, (2, 8), 0.15, "Électricité Générale"),
}


@dataclass(frozen=True, slots=True)
class Place:
    city: str
    postcode: str
    region: str
    country: str
    timezone: str
    mobile_prefix: str
    weight: float


PLACES = (
    Place("Paris", "75011", "Île-de-France", "FR", "Europe/Paris", "+336", 0.20),
    Place("Lyon", "69003", "Auvergne-Rhône-Alpes", "FR", "Europe/Paris", "+336", 0.12),
    Place("Marseille", "13008", "Provence-Alpes-Côte d'Azur", "FR", "Europe/Paris", "+336", 0.10),
    Place("Toulouse", "31000", "Occitanie", "FR", "Europe/Paris", "+336", 0.09),
    Place("Lille", "59000", "Hauts-de-France", "FR", "Europe/Paris", "+336", 0.09),
    Place("Nantes", "44000", "Pays de la Loire", "FR", "Europe/Paris", "+336", 0.08),
    Place("Strasbourg", "67000", "Grand Est", "FR", "Europe/Paris", "+336", 0.08),
    Place("Bordeaux", "33000", "Nouvelle-Aquitaine", "FR", "Europe/Paris", "+336", 0.08),
    Place("Saint-Étienne", "42000", "Auvergne-Rhône-Alpes", "FR", "Europe/Paris", "+337", 0.04),
    Place("Rennes", "35000", "Bretagne", "FR", "Europe/Paris", "+337", 0.04),
    Place("Pointe-à-Pitre", "97110", "Guadeloupe", "FR", "America/Guadeloupe", "+590690", 0.02),
    Place("Saint-Denis", "97400", "La Réunion", "FR", "Indian/Reunion", "+262692", 0.02),
    Place("Bruxelles", "1000", "Belgique", "BE", "Europe/Brussels", "+32470", 0.02),
    Place("Liège", "4000", "Belgique", "BE", "Europe/Brussels", "+32471", 0.02),
)
STREETS = (
    "rue de la République", "avenue Jean Jaurès", "boulevard Gambetta", "rue Victor Hugo",
    "avenue du Général Leclerc", "rue des Artisans", "chemin des Prés", "allée des Tilleuls",
)  # fmt: skip
FIRST_NAMES = (
    "Camille", "Nicolas", "Julie", "Thomas", "Sophie", "Pierre", "Marie", "Antoine", "Léa",
    "Julien", "Chloé", "Mathieu", "Émilie", "Sébastien", "Inès", "François", "Anaïs", "Yannick",
)  # fmt: skip
LAST_NAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
    "Vincent", "Fournier", "Morel", "Girard", "André", "Mercier", "Dupont", "Lambert",
)  # fmt: skip
# Network-wide shares (demo_network): opt-outs and blanks (no basis recorded) per channel.
CONSENT_SHARES = {
    "email": (0.02, 0.015),
    "sms": (0.03, 0.015),
    "print": (0.005, 0.01),
}
EMAIL_LEGITIMATE = 0.05  # of personal mailboxes; a shared box is legitimate interest


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in folded if ch.isalnum() and ch.isascii()).lower()


def _companies(
    rng: random.Random, contacts: int
) -> Iterator[tuple[dict[str, Any], int, str, Place]]:
    """(company row, headcount, group, place) until each group has its share of the
    contacts."""
    number = 0
    weights = [p.weight for p in PLACES]
    for group, habits in GROUPS.items():
        quota = round(contacts * habits.share) if group != "installer" else None
        if quota is None:  # the last group takes what rounding left
            quota = contacts - sum(round(contacts * h.share) for h in list(GROUPS.values())[:-1])
        while quota > 0:
            number += 1
            headcount = min(quota, rng.randint(*habits.headcount))
            quota -= headcount
            place = rng.choices(PLACES, weights)[0]
            addressed = rng.random() >= habits.no_address
            yield (
                {
                    "external_id": f"B{number:06d}",
                    "name": f"{habits.trade} {number:06d}",
                    "sector": group,
                    "size": "TPE" if headcount < 6 else "PME",
                    "tier": rng.choice(("bronze", "silver", "gold")),
                    "region": place.region,
                    "delivery_point": "Service achats" if rng.random() < 0.1 else "",
                    "building": "Bâtiment B" if rng.random() < 0.2 else "",
                    "street": f"{rng.randint(1, 180)} {rng.choice(STREETS)}" if addressed else "",
                    "locality": "",
                    "postcode": place.postcode if addressed else "",
                    "city": place.city if addressed else "",
                    "country": place.country,
                    "created_at": NOW,
                    "updated_at": NOW,
                },
                headcount,
                group,
                place,
            )


def _contact(
    rng: random.Random,
    number: int,
    company: dict[str, Any],
    place: Place,
    rank: int,
    habits: Habits,
) -> dict[str, Any]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    level = "director" if rank == 0 else "correspondent" if rank == 1 else "seller"
    draw = rng.random()
    domain = f"{company['external_id'].lower()}.example"
    if draw < habits.personal:
        email, kind = f"{_ascii(first)}.{_ascii(last)}.{number}@{domain}", "personal"
    elif draw < habits.personal + habits.shared:
        email, kind = f"contact@{domain}", "shared"
    else:
        email, kind = None, "none"
    has_mobile = email is None or rng.random() < habits.mobile
    dutch = place.country == "BE" and place.city == "Bruxelles" and rng.random() < 0.4
    return {
        "external_id": f"P{number:07d}",
        "civility": rng.choice(("M.", "Mme")),
        "first_name": first,
        "last_name": last,
        "role": {"director": "gérant", "correspondent": "responsable commercial"}.get(
            level, "commercial"
        ),
        "level": level,
        "email": email,
        "email_kind": kind,
        "mobile": f"{place.mobile_prefix}{number:08d}"[:16] if has_mobile else None,
        "phone": None,
        "web_access": rng.random() >= habits.no_web,
        "timezone": place.timezone,
        "language": "nl" if dutch else "fr",
        "active": True,
        "created_at": NOW,
        "updated_at": NOW,
    }


def _consents(rng: random.Random, contacts: list[tuple[int, dict[str, Any]]]) -> list[dict]:
    """The usual bases, then exact numbers of opt-outs and blanks per channel."""
    bases: dict[tuple[int, str], str] = {}
    for contact_id, row in contacts:
        if row["email"]:
            personal = row["email_kind"] == "personal"
            consent = personal and rng.random() >= EMAIL_LEGITIMATE
            bases[contact_id, "email"] = "consent" if consent else "legitimate_interest"
        if row["mobile"]:
            bases[contact_id, "sms"] = "consent"
        bases[contact_id, "print"] = "legitimate_interest"
    total = len(contacts)
    for channel, (opted_out, blank) in CONSENT_SHARES.items():
        pool = sorted(key for key in bases if key[1] == channel)
        n_out = min(len(pool), round(total * opted_out))
        n_blank = min(len(pool) - n_out, round(total * blank))
        picked = rng.sample(pool, n_out + n_blank)
        for key in picked[:n_out]:
            bases[key] = "opted_out"
        for key in picked[n_out:]:
            del bases[key]
    return [
        {
            "contact_id": contact_id,
            "channel": channel,
            "basis": basis,
            "source": "bench",
            "updated_at": NOW,
        }
        for (contact_id, channel), basis in sorted(bases.items())
    ]


def _check_addresses(companies: list[dict[str, Any]]) -> None:
    """Every letter must print: check each company's block with a long recipient."""
    from network_anim.channels.postal import address_block_problems, company_address

    longest = max(FIRST_NAMES, key=len), max(LAST_NAMES, key=len)
    for company in companies:
        if not company["street"]:
            continue
        record = argparse.Namespace(**company)
        problems = address_block_problems(
            company_address(record, civility="Mme", first_name=longest[0], last_name=longest[1])
        )
        if problems:
            raise SystemExit(f"generated address of {company['name']} cannot print: {problems}")


def generate_network(db_url: str, contacts: int, seed: int) -> dict[str, Any]:
    """Insert the companies, contacts and consents; returns what was made."""
    from sqlalchemy import insert, select

    from network_anim.db.engine import make_engine
    from network_anim.db.models import Company, Consent, Contact

    rng = random.Random(seed)
    made = list(_companies(rng, contacts))
    companies = [row for row, _, _, _ in made]
    _check_addresses(companies)
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            _insert_chunks(conn, insert(Company.__table__), companies)  # type: ignore[attr-defined]
            ids = dict(conn.execute(select(Company.external_id, Company.id)).all())  # type: ignore[call-overload]
            rows: list[dict[str, Any]] = []
            number = 0
            for company, headcount, group, place in made:
                for rank in range(headcount):
                    number += 1
                    row = _contact(rng, number, company, place, rank, GROUPS[group])
                    row["company_id"] = ids[company["external_id"]]
                    rows.append(row)
            _insert_chunks(conn, insert(Contact.__table__), rows)  # type: ignore[attr-defined]
            contact_ids = dict(conn.execute(select(Contact.external_id, Contact.id)).all())  # type: ignore[call-overload]
            consents = _consents(rng, [(contact_ids[r["external_id"]], r) for r in rows])
            _insert_chunks(conn, insert(Consent.__table__), consents)  # type: ignore[attr-defined]
    finally:
        engine.dispose()
    kinds = Counter(r["email_kind"] for r in rows)
    return {
        "companies": len(companies),
        "contacts": len(rows),
        "consents": len(consents),
        "email_kinds": dict(kinds),
        "no_web": sum(not r["web_access"] for r in rows),
        "with_mobile": sum(bool(r["mobile"]) for r in rows),
        "companies_without_address": sum(not c["street"] for c in companies),
        "languages": dict(Counter(r["language"] for r in rows)),
    }


def _insert_chunks(conn: Any, statement: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), INSERT_CHUNK):
        conn.execute(statement, rows[start : start + INSERT_CHUNK])


# -- the project ----------------------------------------------------------------------------


def write_config(folder: Path, db_url: str) -> Path:
    """Defaults everywhere (they are config.example.toml's), SMS as info's last fallback."""
    path = folder / "netanim.toml"
    path.write_text(
        "[engine]\n"
        f'database = "{db_url}"\n'
        f'templates_dir = "{lib.REPO / "templates"}"\n'
        f'channels_dir = "{lib.REPO / "channels"}"\n'
        'data_dir = "var"\n'
        "\n[routing.urgencies.info]\n"
        'send = ["intranet", "email"]\n'
        'fallback = ["print", "sms"]\n',
        encoding="utf-8",
    )
    return path


def request_for(occurrence: str) -> Any:
    """The request ``netanim broadcast --audience all --urgency info --template
    monthly-news --var headline=... --id OCCURRENCE`` builds."""
    from network_anim.config.settings import Audience
    from network_anim.domain import Level, MessageKind, Urgency
    from network_anim.planning.planner import MessageRequest

    return MessageRequest(
        campaign_key="broadcast",
        campaign_name="One-off broadcasts",
        campaign_kind="broadcast",
        step=TEMPLATE,
        occurrence=occurrence,
        audience=Audience(name="all", description="every active contact"),
        urgency=Urgency.INFO,
        template=TEMPLATE,
        kind=MessageKind.MARKETING,
        level=Level.SELLER,
        variables=dict(VARIABLES),
    )


def peak_rss_mb() -> float:
    """This process's high-water mark of resident memory (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


# -- child: the engine ------------------------------------------------------------------------


def engine_child(config: Path, occurrence: str) -> dict[str, Any]:
    from sqlmodel import Session

    from network_anim.app import open_app
    from network_anim.clock import SimulatedClock
    from network_anim.network.audience import count_audience
    from network_anim.planning.planner import plan_message

    request = request_for(occurrence)
    started = time.perf_counter()
    app = open_app(config, clock=SimulatedClock(NOW))
    try:
        with Session(app.engine) as session:  # what the command counts for its progress bar
            total = count_audience(
                session, request.audience, now=app.clock.now(), min_level=request.level
            )
        plan = plan_message(app, request)
    finally:
        app.close()
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "message_id": plan.message_id,
        "audience": plan.audience_size,
        "counted": total,
        "rows": dict(plan.new_rows),
        "deferred": dict(plan.deferred),
        "unreachable": len(plan.unreachable),
        "peak_rss_mb": peak_rss_mb(),
    }


# -- child: the baseline ----------------------------------------------------------------------


@dataclass(slots=True)
class _Planned:
    """One engine row: what the baseline renders and inserts again."""

    row: dict[str, Any]
    context: dict[str, Any]
    language: str


def _read_plan(app: Any, message_id: int) -> list[_Planned]:
    """The engine's rows with each one's template variables, signed URLs included."""
    from sqlalchemy import select
    from sqlmodel import Session

    from network_anim.compose.composer import contact_context, message_context
    from network_anim.db.models import Campaign, Company, Contact, Delivery, Message

    copied = [
        c
        for c in Delivery.__table__.columns  # type: ignore[attr-defined]
        if c.name not in {"id", "body_text", "body_html"}
    ]
    with Session(app.engine) as session:
        message = session.get(Message, message_id)
        assert message is not None
        campaign = session.get(Campaign, message.campaign_id)
        assert campaign is not None
        base = message_context(app.config, campaign, message, NOW.date())
        people = {
            contact.id: (contact, company)
            for contact, company in session.execute(
                select(Contact, Company).join(Company, Company.id == Contact.company_id)  # type: ignore[arg-type]
            ).all()
        }
        planned = []
        for row in session.execute(select(*copied).where(Delivery.message_id == message_id)):
            values = dict(row._mapping)
            contact, company = people[values["contact_id"]]
            context = {
                **base,
                **contact_context(contact, company),
                "post_url": app.signer.post_url(values["extra"]["post_id"], contact.id),
                "unsubscribe_url": app.signer.unsubscribe_url(contact.id, values["channel"]),
            }
            values["idempotency_key"] += ":baseline"
            planned.append(_Planned(values, context, contact.language))
    return planned


def _reset(db_url: str, message_id: int | None = None) -> None:
    """Empty the outbox (and drop the run's message and posts when given).

    Not a plain ``DELETE`` with foreign keys enforced: ``delivery.parent_id`` has no
    index, so each deleted row would scan the whole table for children (quadratic: hours
    for 200,000 rows). The bench's database holds nothing else that refers to them.
    """
    if db_url.startswith("sqlite:///"):
        conn = sqlite3.connect(db_url[len("sqlite:///") :], timeout=60)
        try:
            conn.execute("PRAGMA foreign_keys=OFF")
            with conn:
                conn.execute("DELETE FROM delivery")
                if message_id is not None:
                    conn.execute("DELETE FROM post WHERE message_id = ?", (message_id,))
                    conn.execute("DELETE FROM message WHERE id = ?", (message_id,))
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(db_url.replace("+psycopg", ""), autocommit=True) as conn:
        with conn.transaction():
            conn.execute("TRUNCATE delivery CASCADE")  # with the (empty) event table
            if message_id is not None:
                conn.execute("DELETE FROM post WHERE message_id = %s", (message_id,))
                conn.execute("DELETE FROM message WHERE id = %s", (message_id,))
        conn.execute("VACUUM ANALYZE delivery")  # as autovacuum would, but now, not mid-run


def baseline_child(config: Path, message_id: int) -> dict[str, Any]:
    from jinja2 import Environment, FileSystemLoader
    from sqlalchemy import insert

    from network_anim.app import open_app
    from network_anim.clock import SimulatedClock
    from network_anim.compose.rendering import TEMPLATE_OPTIONS
    from network_anim.db.models import Delivery

    app = open_app(config, clock=SimulatedClock(NOW))
    try:
        planned = _read_plan(app, message_id)
        _reset(app.database_url)
        directory = app.templates.directory
        started = time.perf_counter()
        # The engine's options, without its sandbox.
        env = Environment(loader=FileSystemLoader(str(directory)), **TEMPLATE_OPTIONS)
        compiled: dict[tuple[str, str, str], Any] = {}

        def template(channel: str, language: str, ext: str) -> Any:
            key = (channel, language, ext)
            if key not in compiled:
                path = f"{channel}/{TEMPLATE}.{language}.{ext}"
                if not (directory / path).is_file():
                    path = f"{channel}/{TEMPLATE}.{app.config.engine.language}.{ext}"
                compiled[key] = env.get_template(path)
            return compiled[key]

        rows = []
        for item in planned:
            channel = item.row["channel"]
            row = dict(item.row)
            row["body_text"] = template(channel, item.language, "txt").render(item.context)
            row["body_html"] = (
                template(channel, item.language, "html").render(item.context)
                if channel == "email"
                else None
            )
            rows.append(row)
        rendered = time.perf_counter()
        with app.engine.begin() as conn:
            conn.execute(insert(Delivery.__table__), rows)  # type: ignore[attr-defined]
        finished = time.perf_counter()
    finally:
        app.close()
    return {
        "seconds": finished - started,
        "render_seconds": rendered - started,
        "insert_seconds": finished - rendered,
        "rows": len(rows),
        "text_bytes": sum(len(r["body_text"]) + len(r["body_html"] or "") for r in rows),
        "peak_rss_mb": peak_rss_mb(),
    }


def run_child(kind: str, config: Path, argument: str) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", kind, "--config", str(config), "--arg", argument]
    done = subprocess.run(
        argv, capture_output=True, text=True, env=lib.bench_env(), cwd=str(lib.REPO), check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# -- the parent -------------------------------------------------------------------------------


@dataclass
class BackendResult:
    backend: str
    network: dict[str, Any]
    generate_seconds: float
    engine: list[dict[str, Any]]
    baseline: list[dict[str, Any]]

    def median(self, runs: list[dict[str, Any]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    @property
    def ratio(self) -> float:
        """The median of each run's engine / baseline (both measured in the same run)."""
        return statistics.median(
            e["seconds"] / b["seconds"] for e, b in zip(self.engine, self.baseline, strict=True)
        )


@contextmanager
def database(backend: str, folder: Path, pg_url: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    with lib.throwaway_postgres(pg_url) as url:
        yield url


def measure_backend(args: argparse.Namespace, backend: str) -> BackendResult:
    with lib.workspace(args.keep) as folder, database(backend, folder, args.pg) as db_url:
        config = write_config(folder, db_url)
        lib.netanim("init", "-c", str(config))
        began = time.perf_counter()
        network = generate_network(db_url, args.contacts, args.seed)
        generated = time.perf_counter() - began
        print(f"[{backend}] network: {network} in {generated:.1f} s", flush=True)
        if backend == "postgresql":  # statistics, as autovacuum gives a network imported earlier
            import psycopg

            with psycopg.connect(db_url.replace("+psycopg", ""), autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
        engine_runs, baseline_runs = [], []
        for run in range(1, args.runs + 1):
            engine = run_child("engine", config, f"bench-{run}")
            if engine["audience"] != network["contacts"]:
                raise SystemExit(f"planned {engine['audience']} of {network['contacts']} contacts")
            baseline = run_child("baseline", config, str(engine["message_id"]))
            if baseline["rows"] != sum(engine["rows"].values()):
                raise SystemExit(f"baseline rows {baseline['rows']} != engine {engine['rows']}")
            _reset(db_url, engine["message_id"])
            engine_runs.append(engine)
            baseline_runs.append(baseline)
            print(
                f"[{backend}] run {run}: engine {engine['seconds']:.2f} s "
                f"({engine['peak_rss_mb']:.0f} MB), baseline {baseline['seconds']:.2f} s "
                f"(render {baseline['render_seconds']:.2f} + insert "
                f"{baseline['insert_seconds']:.2f}), rows {engine['rows']}",
                flush=True,
            )
    return BackendResult(backend, network, generated, engine_runs, baseline_runs)


def _each(runs: list[dict[str, Any]], key: str, fmt: str = "{:.2f}") -> str:
    return ", ".join(fmt.format(run[key]) for run in runs)


def render(results: list[BackendResult], args: argparse.Namespace) -> str:
    lines = [
        f"label: {args.label or '-'}",
        f"{args.contacts} contacts (seed {args.seed}); message {TEMPLATE!r}, urgency info, "
        "marketing; routing info = intranet + email, fallback print then sms; "
        f"{args.runs} run(s) per backend, median; clock {NOW.isoformat()}",
    ]
    for r in results:
        first = r.engine[0]
        rows = sum(first["rows"].values())
        engine_s = r.median(r.engine, "seconds")
        base_s = r.median(r.baseline, "seconds")
        rss = max(e["peak_rss_mb"] for e in r.engine)
        ratios = ", ".join(
            f"{e['seconds'] / b['seconds']:.2f}" for e, b in zip(r.engine, r.baseline, strict=True)
        )
        verdict = "MET" if r.ratio <= TARGET_RATIO and rss < TARGET_RSS_MB else "NOT MET"
        net = r.network
        lines += [
            "",
            f"{r.backend}: {net['companies']} companies, {net['contacts']} contacts, "
            f"{net['consents']} consents (Core executemany: {r.generate_seconds:.1f} s)",
            f"  email kinds {net['email_kinds']}, no web access {net['no_web']}, with mobile "
            f"{net['with_mobile']}, companies without address "
            f"{net['companies_without_address']}, languages {net['languages']}",
            f"  rows planned: {rows} {first['rows']}; deferred {first['deferred']}; "
            f"unreachable {first['unreachable']}",
            "",
            "  | measure | median | runs |",
            "  |---|---:|---|",
            f"  | engine: count + plan_message | {engine_s:.2f} s ({rows / engine_s:,.0f} rows/s) "
            f"| {_each(r.engine, 'seconds')} |",
            f"  | baseline: Jinja2 render + Core executemany | {base_s:.2f} s "
            f"({rows / base_s:,.0f} rows/s) | {_each(r.baseline, 'seconds')} |",
            f"  | - of which render | {r.median(r.baseline, 'render_seconds'):.2f} s "
            f"| {_each(r.baseline, 'render_seconds')} |",
            f"  | - of which insert | {r.median(r.baseline, 'insert_seconds'):.2f} s "
            f"| {_each(r.baseline, 'insert_seconds')} |",
            f"  | ratio engine / baseline (each run's) | x{r.ratio:.2f} | {ratios} |",
            f"  | engine peak RSS (VmHWM, fresh process) | {rss:.0f} MB "
            f"| {_each(r.engine, 'peak_rss_mb', '{:.0f}')} |",
            f"  target (ratio <= {TARGET_RATIO:g}, RSS < {TARGET_RSS_MB:g} MB): {verdict}",
        ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("Example::")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--contacts", type=int, default=100_000, help="default %(default)s")
    parser.add_argument("--runs", type=int, default=3, help="runs per backend (median)")
    parser.add_argument(
        "--backend", choices=("sqlite", "postgresql", "both"), default="both", help="default both"
    )
    parser.add_argument(
        "--pg",
        default=os.environ.get("NETANIM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"),
        help="an existing PostgreSQL database; the bench creates and drops its own next to it "
        "(default: $NETANIM_TEST_PG or %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=2026, help="network generator seed")
    parser.add_argument("--label", default="", help="a word for the section (before, after...)")
    parser.add_argument(
        "--no-record", action="store_true", help="print only, do not append to docs/BENCHMARKS.md"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--child", choices=("engine", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--arg", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.contacts < 100 or args.runs < 1:
        parser.error("at least 100 contacts and 1 run")
    if args.child is None and args.backend != "sqlite":
        lib.check_local_url(args.pg)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["NETANIM_SECRET_KEY"] = lib.SECRET
    if args.child == "engine":
        print(json.dumps(engine_child(args.config, args.arg)))
        return 0
    if args.child == "baseline":
        print(json.dumps(baseline_child(args.config, int(args.arg))))
        return 0
    lib.interrupt_on_signals()
    started = time.monotonic()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results = [measure_backend(args, backend) for backend in backends]
    figures = render(results, args) + f"\nbench wall time: {time.monotonic() - started:.0f} s"
    print(figures)
    if not args.no_record:
        names = " and ".join("PostgreSQL" if b == "postgresql" else "SQLite" for b in backends)
        lib.append_benchmarks(
            f"Broadcast planning, {args.contacts:,} contacts ({names})",
            ["python", "bench/broadcast_plan.py", *(argv if argv is not None else sys.argv[1:])],
            figures,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
