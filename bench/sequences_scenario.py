"""The sequences benchmark's scenario (see bench/sequences.py): the nurture campaign, the
population of contacts and enrolments with their history, its fast loading (PostgreSQL
COPY, SQLite executemany: no ORM) and the reset of the due set between ticks.

Not a benchmark itself: bench/sequences.py imports it (it runs as a script, so this folder
is on ``sys.path``).
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import benchlib

# A Tuesday, 11:00 in Paris: inside every step window of the campaign.
NOW = datetime(2027, 3, 16, 10, 0, tzinfo=UTC)
CAMPAIGN = "bench-nurture"
STEPS = ("welcome", "portal-tour", "first-steps", "check-in")
HISTORY_OCCURRENCE = "2027-02-01"
PER_COMPANY = 10

CAMPAIGN_TOML = f"""
[[audiences]]
name = "all"
description = "Every active contact"

# Modelled on config.example.toml's "onboarding", exiting on every condition.
[[campaigns]]
id = "{CAMPAIGN}"
name = "Bench onboarding"
kind = "nurture"
audience = "all"
enrol = {{ on = ["imported", "manual"] }}
exit_on = ["converted", "replied", "unsubscribed", "left_audience"]

[[campaigns.steps]]
name = "welcome"
template = "welcome"
urgency = "info"
kind = "marketing"
delay = "0d"

[[campaigns.steps]]
name = "portal-tour"
template = "portal-tour"
urgency = "reminder"
delay = "3bd"
window = {{ days = ["mon", "tue", "wed", "thu", "fri"], start = "09:00", end = "12:00" }}

[[campaigns.steps]]
name = "first-steps"
template = "first-steps"
urgency = "reminder"
delay = "7bd"
window = {{ days = ["tue", "wed", "thu"], start = "09:00", end = "17:00" }}
unopened = {{ after_days = 5, urgency = "important" }}

[[campaigns.steps]]
name = "check-in"
template = "check-in"
urgency = "reminder"
delay = "20bd"
"""


# -- the population -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    """One contact and its enrolment. ``rank`` is its place within its group (due or not):
    every trait keys on it, so the due set is the same mix whatever the size."""

    contact_id: int
    due: bool
    rank: int

    @property
    def company_id(self) -> int:
        return (self.contact_id - 1) // PER_COMPANY + 1

    @property
    def step(self) -> int:
        return self.rank % 4

    @property
    def web_access(self) -> bool:
        return (self.rank // 4) % 2 == 0

    @property
    def mobile(self) -> bool:
        return self.rank % 5 == 0

    @property
    def inactive(self) -> bool:
        return self.rank % 200 == 7

    @property
    def opted_out(self) -> bool:
        return self.rank % 200 == 11

    @property
    def replied(self) -> bool:
        return self.rank % 200 == 13

    @property
    def converted(self) -> bool:
        return self.rank % 100 == 17

    @property
    def sale_before_enrolment(self) -> bool:
        return self.rank % 100 == 18

    @property
    def opened_previous(self) -> bool:
        return (self.rank // 4) % 3 != 0

    @property
    def previous_sent(self) -> datetime:
        return NOW - timedelta(days=1 + (self.rank // 12) % 9)

    @property
    def enrolled_at(self) -> datetime:
        return NOW - timedelta(days=20 + 12 * self.step)

    @property
    def next_due_at(self) -> datetime:
        if self.due and (self.rank // 8) % 2 == 0:
            # An import wave: every contact enrolled at once has the same first due time.
            return NOW - timedelta(hours=1)
        if self.due:  # the others within the last day
            return NOW - timedelta(minutes=(self.rank * 7) % 1440)
        return NOW + timedelta(minutes=60 + (self.rank * 13) % (60 * 24 * 60))


def people(total: int, due: int) -> Iterator[Person]:
    """``total`` people of whom exactly ``due`` are due, spread evenly over the ids."""
    ranks = [0, 0]
    for contact_id in range(1, total + 1):
        is_due = (contact_id * due) // total > ((contact_id - 1) * due) // total
        yield Person(contact_id, is_due, ranks[is_due])
        ranks[is_due] += 1


def naive(moment: datetime) -> datetime:
    """UTCDateTime columns store naive UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None)


LONG_AGO = naive(NOW - timedelta(days=400))


def company_rows(total: int) -> Iterator[dict[str, Any]]:
    for company in range(1, (total - 1) // PER_COMPANY + 2):
        yield {
            "id": company,
            "external_id": f"B{company:07d}",
            "name": f"Bench Distribution {company:07d}",
            "sector": "telecom",
            "size": "PME",
            "tier": "silver",
            "region": "Auvergne-Rhône-Alpes",
            "street": f"{company % 200 + 1} rue de la République",
            "postcode": "69002",
            "city": "Lyon",
            "country": "FR",
            "created_at": LONG_AGO,
            "updated_at": LONG_AGO,
        }


def contact_rows(total: int, due: int) -> Iterator[dict[str, Any]]:
    for p in people(total, due):
        yield {
            "id": p.contact_id,
            "external_id": f"K{p.contact_id:07d}",
            "company_id": p.company_id,
            "civility": "Mme" if p.contact_id % 2 else "M.",
            "first_name": "Camille",
            "last_name": f"Contact{p.contact_id:07d}",
            "role": "commercial",
            "level": "seller",
            "email": f"contact{p.contact_id:07d}@bench.example",
            "email_kind": "personal",
            "mobile": f"+3361{p.contact_id:07d}" if p.mobile else None,
            "web_access": p.web_access,
            "timezone": "Europe/Paris",
            "language": "fr",
            "active": not p.inactive,
            "created_at": LONG_AGO,
            "updated_at": LONG_AGO,
        }


def consent_rows(total: int, due: int) -> Iterator[dict[str, Any]]:
    for p in people(total, due):
        bases = {"email": "consent", "print": "legitimate_interest"}
        if p.mobile:
            bases["sms"] = "consent"
        if p.opted_out:
            bases = dict.fromkeys(("email", "sms", "print"), "opted_out")
        for channel, basis in bases.items():
            yield {
                "contact_id": p.contact_id,
                "channel": channel,
                "basis": basis,
                "source": "bench",
                "updated_at": LONG_AGO,
            }


def enrolment_rows(total: int, due: int) -> Iterator[dict[str, Any]]:
    for p in people(total, due):
        enrolled = naive(p.enrolled_at)
        yield {
            "id": p.contact_id,
            "campaign_key": CAMPAIGN,
            "contact_id": p.contact_id,
            "status": "active",
            "cycle": 0,
            "step_index": p.step,
            "next_due_at": naive(p.next_due_at),
            "trigger": "imported",
            "exit_reason": "",
            "enrolled_at": enrolled,
            "updated_at": enrolled,
        }


def campaign_rows() -> Iterator[dict[str, Any]]:
    yield {"id": 1, "key": CAMPAIGN, "name": "Bench onboarding", "kind": "nurture"} | {
        "created_at": LONG_AGO
    }


def message_rows() -> Iterator[dict[str, Any]]:
    """One past message per step (ids 1-4): the emails the history rows belong to."""
    for number, step in enumerate(STEPS, start=1):
        yield {
            "id": number,
            "campaign_id": 1,
            "step": step,
            "occurrence": HISTORY_OCCURRENCE,
            "urgency": "info" if number == 1 else "reminder",
            "kind": "marketing",
            "template": step,
            "level": "seller",
            "variables": "{}",
            "created_at": LONG_AGO,
        }


def history(total: int, due: int) -> Iterator[tuple[int, Person]]:
    """(delivery id, person) of each previous-step email: one per contact past step one."""
    delivery_id = 0
    for p in people(total, due):
        if p.step > 0:
            delivery_id += 1
            yield delivery_id, p


def delivery_rows(total: int, due: int) -> Iterator[dict[str, Any]]:
    for delivery_id, p in history(total, due):
        previous = STEPS[p.step - 1]
        sent = naive(p.previous_sent)
        yield {
            "id": delivery_id,
            "idempotency_key": f"{CAMPAIGN}:{previous}:{HISTORY_OCCURRENCE}:{p.contact_id}:email",
            "message_id": p.step,  # the message of the previous step
            "contact_id": p.contact_id,
            "channel": "email",
            "status": "sent",
            "marketing": True,
            "due_at": sent,
            "reason": "reminder: email",
            "fallback": "[]",
            "attempts": 1,
            "last_error": "",
            "subject": f"Bench {previous}",
            "body_text": f"Bonjour Camille, {previous}.",
            "extra": "{}",
            "cost_estimate": 0.0,
            "cost": 0.0,
            "created_at": sent,
            "updated_at": sent,
            "sent_at": sent,
        }


def event_rows(total: int, due: int) -> Iterator[dict[str, Any]]:
    for delivery_id, p in history(total, due):
        if p.opened_previous:
            yield {
                "occurred_at": naive(p.previous_sent + timedelta(hours=3)),
                "type": "opened",
                "channel": "email",
                "contact_id": p.contact_id,
                "delivery_id": delivery_id,
                "message_id": p.step,
                "machine": False,
                "data": "{}",
            }
    for p in people(total, due):
        if p.replied:
            yield {
                "occurred_at": naive(NOW - timedelta(days=1)),
                "type": "replied",
                "channel": "sms",
                "contact_id": p.contact_id,
                "machine": False,
                "data": "{}",
            }


def sale_rows(total: int, due: int) -> Iterator[dict[str, Any]]:
    base = {"product": "", "quantity": 1.0, "amount": 1200.0, "status": "approved"}
    base |= {"declared_by": "", "review_reason": "", "source": "bench"}
    for p in people(total, due):
        if p.converted or p.sale_before_enrolment:
            sold = naive(NOW - timedelta(days=1 if p.converted else 400))
            yield base | {
                "company_id": p.company_id,
                "contact_id": p.contact_id,
                "invoice_ref": f"F{p.contact_id}",
                "sold_at": sold,
                "created_at": sold,
            }
    # Company-wide sales (no contact named), all before any enrolment: no exit, but the
    # conversion check has to look at them.
    for company in range(3, (total - 1) // PER_COMPANY + 2, 50):
        yield base | {
            "company_id": company,
            "contact_id": None,
            "invoice_ref": f"G{company}",
            "sold_at": naive(NOW - timedelta(days=500)),
            "created_at": naive(NOW - timedelta(days=500)),
        }


# -- loading --------------------------------------------------------------------------------


def _columns(table: Any, sample: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The table's columns (``id`` only if the rows give it) and their scalar defaults."""
    columns = [c for c in table.columns if c.name != "id" or "id" in sample]
    defaults = {
        c.name: c.default.arg for c in columns if c.default is not None and c.default.is_scalar
    }
    return [c.name for c in columns], defaults


def _first(
    rows: Iterable[dict[str, Any]],
) -> tuple[dict[str, Any] | None, Iterator[dict[str, Any]]]:
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return None, iterator
    return first, _chain(first, iterator)


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


class PostgresLoader:
    """COPY into the throwaway database; sequences moved past the ids given."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        self.conn.execute("SET synchronous_commit = off")

    def load(self, table: Any, rows: Iterable[dict[str, Any]]) -> int:
        first, stream = _first(rows)
        if first is None:
            return 0
        names, defaults = _columns(table, first)
        count = 0
        with (
            self.conn.cursor() as cursor,
            cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy,
        ):
            for row in stream:
                copy.write_row([row.get(n, defaults.get(n)) for n in names])
                count += 1
        if "id" in names:
            self.conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"(SELECT max(id) FROM {table.name}))"
            )
        return count

    def finish(self) -> None:
        self.conn.commit()
        self.conn.close()


SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime in SQLite


def sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime(SQLITE_TIME)
    if isinstance(value, bool):
        return int(value)
    return value


class SqliteLoader:
    """executemany in one transaction, straight through the sqlite3 module."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA synchronous = OFF")
        self.conn.execute("BEGIN")

    def load(self, table: Any, rows: Iterable[dict[str, Any]]) -> int:
        first, stream = _first(rows)
        if first is None:
            return 0
        names, defaults = _columns(table, first)
        counter = Counter[str]()

        def values() -> Iterator[list[Any]]:
            for row in stream:
                counter["rows"] += 1
                yield [sqlite_value(row.get(n, defaults.get(n))) for n in names]

        marks = ", ".join("?" * len(names))
        self.conn.executemany(
            f'INSERT INTO "{table.name}" ({", ".join(names)}) VALUES ({marks})', values()
        )
        return counter["rows"]

    def finish(self) -> None:
        self.conn.execute("COMMIT")
        self.conn.close()


@dataclass(frozen=True)
class Dataset:
    """What the generation left: the highest ids a tick's rows are told apart by."""

    max_delivery: int
    max_message: int
    rows: dict[str, int]
    seconds: dict[str, float]


def generate(backend: str, url: str, total: int, due: int) -> Dataset:
    from network_anim.db.models import (
        Campaign,
        Company,
        Consent,
        Contact,
        Delivery,
        Enrolment,
        Event,
        Message,
        Sale,
    )

    loader: PostgresLoader | SqliteLoader = (
        PostgresLoader(url) if backend == "postgresql" else SqliteLoader(sqlite_path(url))
    )
    tables: list[tuple[Any, Iterable[dict[str, Any]]]] = [
        (Company, company_rows(total)),
        (Contact, contact_rows(total, due)),
        (Consent, consent_rows(total, due)),
        (Enrolment, enrolment_rows(total, due)),
        (Campaign, campaign_rows()),
        (Message, message_rows()),
        (Delivery, delivery_rows(total, due)),
        (Event, event_rows(total, due)),
        (Sale, sale_rows(total, due)),
    ]
    counts: dict[str, int] = {}
    seconds: dict[str, float] = {}
    began = time.perf_counter()
    try:
        for model, rows in tables:
            table = model.__table__  # type: ignore[attr-defined]
            counts[table.name] = loader.load(table, rows)
    finally:
        loader.finish()
    seconds["load (COPY)" if backend == "postgresql" else "load (executemany)"] = (
        time.perf_counter() - began
    )
    began = time.perf_counter()
    due_at = naive(NOW)
    statements = [
        # The due set as generated: each reset puts it back from this copy.
        "CREATE TABLE bench_due AS SELECT id, step_index, next_due_at, updated_at "
        f"FROM enrolment WHERE status = 'active' AND next_due_at <= {_sql_time(backend, due_at)}",
    ]
    run_sql(backend, url, statements)
    if backend == "postgresql":
        # What autovacuum would have done by the time a real tick runs.
        run_sql(backend, url, ["VACUUM ANALYZE"], autocommit=True)
        seconds["VACUUM ANALYZE"] = time.perf_counter() - began
    found = sql_one(backend, url, "SELECT count(*) FROM bench_due")
    if found != due:
        raise SystemExit(f"generated {found} due enrolments instead of {due}")
    return Dataset(
        max_delivery=int(sql_one(backend, url, "SELECT coalesce(max(id), 0) FROM delivery")),
        max_message=int(sql_one(backend, url, "SELECT max(id) FROM message")),
        rows=counts,
        seconds=seconds,
    )


def _sql_time(backend: str, moment: datetime) -> str:
    if backend == "postgresql":
        return f"TIMESTAMP '{moment.isoformat(sep=' ')}'"
    return f"'{moment.strftime(SQLITE_TIME)}'"


def sqlite_path(url: str) -> Path:
    return Path(url[len("sqlite:///") :])


def run_sql(backend: str, url: str, statements: list[str], *, autocommit: bool = False) -> None:
    if backend == "sqlite":
        conn = sqlite3.connect(sqlite_path(url), isolation_level=None)
        try:
            conn.execute("BEGIN")
            for statement in statements:
                conn.execute(statement)
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # a WAL that keeps growing skews
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(
        url.replace("postgresql+psycopg://", "postgresql://"), autocommit=autocommit
    ) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def sql_one(backend: str, url: str, query: str) -> Any:
    return benchlib.sql_rows(url, query)[0][0]


def reset(backend: str, url: str, data: Dataset) -> None:
    """Put the due set back as generated and drop whatever a tick created."""
    # PostgreSQL checks delivery.parent_id (not indexed) for every deleted row: a scan of
    # the outbox each. Nothing references the rows a tick created, so the bench (superuser
    # on its own throwaway database) skips the foreign-key triggers for this transaction.
    skip_foreign_keys = ["SET LOCAL session_replication_role = replica"]
    run_sql(
        backend,
        url,
        [
            *(skip_foreign_keys if backend == "postgresql" else []),
            "UPDATE enrolment SET status = 'active', step_index = bench_due.step_index, "
            "next_due_at = bench_due.next_due_at, exit_reason = '', "
            "updated_at = bench_due.updated_at FROM bench_due WHERE enrolment.id = bench_due.id",
            f"DELETE FROM delivery WHERE id > {data.max_delivery}",
            f"DELETE FROM post WHERE message_id > {data.max_message}",
            f"DELETE FROM message WHERE id > {data.max_message}",
        ],
    )
    if backend == "postgresql":
        # The dead rows of the last tick would otherwise tax the next one.
        run_sql(
            backend, url, ["VACUUM ANALYZE enrolment, delivery, message, post"], autocommit=True
        )
