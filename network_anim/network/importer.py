"""Write a validated network file into the database: upsert by external id, one transaction.

Batch by batch: one Core select of the batch's existing rows (the columns the file sets),
a diff in Python (what is new, what changed, what is the same: the summary's counts),
then one ``INSERT ... ON CONFLICT DO UPDATE`` executemany of the new and changed rows
only. No ORM instances: building 120,000 of them cost more than the writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any, TypeVar

from sqlalchemy import Boolean, Connection, Dialect, Engine, Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from network_anim.db.models import Company, Consent, Contact
from network_anim.gc_pause import collector_paused
from network_anim.network.network_csv import CompanyRecord, ContactRecord, NetworkFile

_BATCH = 500
# 32 MiB: the write of 100,000 contacts runs a quarter faster than with SQLite's default
# 2 MB, and the import's peak memory (the parse's) stays where it was; 64 MiB added 22 MB.
_IMPORT_CACHE_KIB = 32 * 1024
# Called with a stage name ("companies", "contacts", "consents") and the rows just done;
# the three stages add up to companies + 2 x contacts.
Progress = Callable[[str, int], None]
T = TypeVar("T")

_COMPANY: Table = Company.__table__  # type: ignore[attr-defined]
_CONTACT: Table = Contact.__table__  # type: ignore[attr-defined]
_CONSENT: Table = Consent.__table__  # type: ignore[attr-defined]
_COMPANY_FIELDS = tuple(n for n in CompanyRecord.__slots__ if n != "external_id")
# What the file says of a contact, as ContactRecord holds it (its company by id here).
_RECORD_CONTACT_FIELDS = tuple(
    n
    for n in ContactRecord.__slots__
    if n not in {"line", "external_id", "company_external_id", "consents"}
)
_CONTACT_FIELDS = ("company_id", *_RECORD_CONTACT_FIELDS, "active")
_EMAIL = _CONTACT_FIELDS.index("email")
_company_values = attrgetter(*_COMPANY_FIELDS)
_record_contact_values = attrgetter(*_RECORD_CONTACT_FIELDS)


def _silent(stage: str, done: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class ImportSummary:
    companies_created: int
    companies_updated: int
    contacts_created: int
    contacts_updated: int
    consents_set: int


def import_network(
    engine: Engine,
    network: NetworkFile | Iterable[NetworkFile],
    *,
    now: datetime,
    source: str,
    progress: Progress = _silent,
) -> ImportSummary:
    """Upsert the whole file in one transaction; ``progress`` hears of each batch written
    (a network of tens of thousands of contacts takes seconds).

    ``network`` may come in parts (a NetworkStream: each part's companies are those not
    in an earlier part, its contacts' companies are in it or an earlier one), written as
    they come; an exception while they come (the file's problems, found late) rolls the
    whole import back."""
    parts = [network] if isinstance(network, NetworkFile) else network
    c_new = c_upd = p_new = p_upd = consents = 0
    with collector_paused(), engine.begin() as conn, _page_cache(conn, _IMPORT_CACHE_KIB):
        empty = _empty_tables(conn)
        companies = _Ids(conn, _COMPANY, fresh=_COMPANY in empty)
        contacts = _Ids(conn, _CONTACT, fresh=_CONTACT in empty)
        with _indexes_built_after(conn, _CONTACT, empty=_CONTACT in empty):
            for part in parts:
                created, updated = _upsert_companies(conn, part.companies, now, progress, companies)
                c_new, c_upd = c_new + created, c_upd + updated
                created, updated = _upsert_contacts(
                    conn, part.contacts, companies.known, now, progress, contacts
                )
                p_new, p_upd = p_new + created, p_upd + updated
                consents += _upsert_consents(
                    conn, part.contacts, contacts.known, now, source, progress,
                    empty=_CONSENT in empty,
                )  # fmt: skip
    return ImportSummary(c_new, c_upd, p_new, p_upd, consents)


@contextmanager
def _page_cache(conn: Connection, kib: int) -> Iterator[None]:
    """SQLite's page cache for this connection raised to ``kib`` for the block, then put
    back (the connection returns to the pool). Its default 2 MB held a fraction of the
    indexes a big import writes into: pages went out and came back, a quarter of the
    write time for 100,000 contacts."""
    if conn.dialect.name != "sqlite":
        yield
        return
    (previous,) = conn.exec_driver_sql("PRAGMA cache_size").one()
    conn.exec_driver_sql(f"PRAGMA cache_size=-{int(kib)}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={int(previous)}")


def _empty_tables(conn: Connection) -> set[Table]:
    """The tables of the import that hold no row (a first import), on SQLite only: there
    the transaction began IMMEDIATE, holding the write lock, so they stay empty but for
    this import's rows, and whatever it writes is new. On PostgreSQL another writer may
    insert meanwhile: every batch is looked up."""
    if conn.dialect.name != "sqlite":
        return set()
    tables = (_COMPANY, _CONTACT, _CONSENT)
    return {t for t in tables if conn.execute(select(1).select_from(t).limit(1)).first() is None}


@contextmanager
def _indexes_built_after(conn: Connection, table: Table, *, empty: bool) -> Iterator[None]:
    """On SQLite, an ``empty`` table's secondary indexes dropped for the block and created
    again at its end: building an index over the loaded rows at once costs less than
    keeping it up to date row by row. SQLite's DDL is part of the transaction, so a
    failed import (the block raises, the transaction rolls back) gets them back as they
    were. Indexes behind a UNIQUE constraint (which the upsert's ON CONFLICT needs) have
    no SQL of their own and stay."""
    if not empty or conn.dialect.name != "sqlite":
        yield
        return
    indexes = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
        "AND sql IS NOT NULL",
        (table.name,),
    ).all()
    for name, _ in indexes:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    yield
    for _, sql in indexes:
        conn.exec_driver_sql(sql)


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), _BATCH):
        yield items[i : i + _BATCH]


def _upsert(conn: Connection, table: Table, keys: Sequence[str], updated: Sequence[str]) -> Insert:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET each of ``updated`` to the new value:
    the statement both backends understand (their dialects spell it alike)."""
    module: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = module.insert(table)
    return statement.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=list(keys), set_={name: statement.excluded[name] for name in updated}
    )


class _Writer:
    """A Core statement compiled once for ``columns``, run as the driver's executemany
    over plain tuples in that order.

    ``Connection.execute(statement, dicts)`` processes every parameter of every row in
    Python (type processors, Python-side defaults): for 400,000 rows it cost more than
    SQLite's own work. Here a column's bind processor runs once for a value the same on
    every row (``constants``: the import's timestamp) and per row only where the type has
    one (booleans); the statement still runs on the transaction's connection. A statement
    whose compiled parameters are not exactly ``columns`` (a model that gained a column
    with a Python-side default) goes through ``execute`` with dicts instead."""

    def __init__(
        self,
        conn: Connection,
        table: Table,
        statement: Insert,
        columns: Sequence[str],
        constants: dict[str, object],
    ) -> None:
        self.conn = conn
        self.statement = statement
        self.columns = list(columns)
        self.constants = constants
        dialect = conn.dialect
        compiled = statement.compile(dialect=dialect, column_keys=[*columns, *constants])
        names = list(compiled.positiontup or []) if compiled.positional else list(compiled.binds)
        self.raw = sorted(names) == sorted([*columns, *constants])
        self.sql = str(compiled)
        self.positional = compiled.positional
        self.order = names
        processed = {}
        for name, value in constants.items():
            processor = _processor(table, name, dialect)
            processed[name] = processor(value) if processor else value
        self.processed = processed
        self.processors = [
            (i, processor)
            for i, name in enumerate(self.columns)
            if (processor := _processor(table, name, dialect)) is not None
        ]
        # The usual order: the columns as given, then the constants: a row is its tuple
        # plus the same tail.
        count = len(self.columns)
        self.tail: tuple[object, ...] | None = None
        if self.positional and self.order[:count] == self.columns:
            self.tail = tuple(processed[name] for name in self.order[count:])

    def write(self, rows: list[tuple[object, ...]]) -> None:
        if not rows:
            return
        if not self.raw:
            self.conn.execute(
                self.statement,
                [{**dict(zip(self.columns, row, strict=True)), **self.constants} for row in rows],
            )
            return
        if self.processors:
            rows = [self._process(row) for row in rows]
        index = {name: i for i, name in enumerate(self.columns)}
        constants = self.processed
        if self.tail is not None:
            tail = self.tail
            params: list[Any] = [row + tail for row in rows]
        elif self.positional:
            picks = [(index.get(name), constants.get(name)) for name in self.order]
            params = [
                tuple(row[i] if i is not None else value for i, value in picks) for row in rows
            ]
        else:
            params = [{**dict(zip(self.columns, row, strict=True)), **constants} for row in rows]
        self.conn.exec_driver_sql(self.sql, params)

    def _process(self, row: tuple[object, ...]) -> tuple[object, ...]:
        values = list(row)
        for i, processor in self.processors:
            values[i] = processor(values[i])
        return tuple(values)


class _Upserts:
    """A batch's rows to write, by external id: a new row with every column, a changed
    one through an upsert that SETs only the columns that differ from the stored row
    (and updated_at). SQLite rewrites the index entries of every column an UPDATE SETs,
    changed or not: an update of 100,000 last names rewrote every contact index."""

    def __init__(
        self, conn: Connection, table: Table, fields: Sequence[str], constants: dict[str, object]
    ) -> None:
        self.conn, self.table, self.fields, self.constants = conn, table, tuple(fields), constants
        self._writers: dict[tuple[str, ...], _Writer] = {}
        self._rows: dict[tuple[str, ...], list[tuple[object, ...]]] = {}

    def add(
        self, external_id: str, values: tuple[object, ...], stored: tuple[object, ...] | None
    ) -> None:
        """``values`` in ``fields`` order; ``stored``: the row's as read, None if new."""
        if stored is None:
            changed = self.fields
        else:
            changed = tuple(
                name
                for name, old, new in zip(self.fields, stored, values, strict=True)
                if old != new
            )
        self._rows.setdefault(changed, []).append((external_id, *values))

    def write(self) -> None:
        for changed, rows in self._rows.items():
            writer = self._writers.get(changed)
            if writer is None:
                statement = _upsert(
                    self.conn, self.table, ["external_id"], [*changed, "updated_at"]
                )
                writer = self._writers[changed] = _Writer(
                    self.conn, self.table, statement, ["external_id", *self.fields], self.constants
                )
            writer.write(rows)
        self._rows.clear()


def _processor(table: Table, name: str, dialect: Dialect) -> Callable[[Any], Any] | None:
    # The dialect's own type (SQLite's DATETIME writes its fixed string format): what
    # Connection.execute would apply.
    column_type = table.c[name].type
    if dialect.name == "sqlite" and isinstance(column_type, Boolean):
        # Its processor makes a bool the integer 1 or 0, which sqlite3 writes of a bool
        # (an int) itself: 200,000 calls saved on 100,000 contacts.
        return None
    return column_type.dialect_impl(dialect).bind_processor(dialect)  # type: ignore[no-any-return]


# Each batch's lookups take their keys through one expanding parameter: the statement is
# compiled once and cached, where an IN of 500 literal values was compiled anew per batch
# (a fifth of the write time of 100,000 contacts).
_KEYS = "keys"


def _keyed(*columns: Any) -> Any:
    """A select of ``columns`` whose first table's external_id is IN the ``keys`` list."""
    return select(*columns).where(
        columns[0].table.c.external_id.in_(bindparam(_KEYS, expanding=True))
    )


def _stored(conn: Connection, query: Any, keys: list[Any], *, empty: bool) -> Any:
    """The rows ``query`` finds for the batch's ``keys``; none at all, without asking, in
    a table that was empty (see _empty_tables). Fetched at once: iterating a result
    fetches row by row (400,000 rows in an update of 100,000 contacts)."""
    return () if empty else conn.execute(query, {_KEYS: keys}).all()


class _Ids:
    """The database ids of the rows of one table that the import wrote or found, by
    external id, across its parts.

    In a table that was empty (see _empty_tables) every row is this import's: the ids of
    a part's new rows are read after it with one range scan (ids above the last one
    read), not looked up per batch."""

    def __init__(self, conn: Connection, table: Table, *, fresh: bool) -> None:
        self.conn, self.table, self.fresh = conn, table, fresh
        self.known: dict[str, int] = {}
        self._last = 0

    def look_up(self, external_ids: list[str]) -> None:
        """Note the ids of these rows, just written (a table that was not empty)."""
        if external_ids:
            query = _keyed(self.table.c.external_id, self.table.c.id)
            rows = self.conn.execute(query, {_KEYS: external_ids}).all()
            self.known.update((external_id, id_) for external_id, id_ in rows)

    def read_new(self) -> None:
        """Note the ids of the rows written since the last call (a table that was empty)."""
        table = self.table
        query = select(table.c.external_id, table.c.id).where(table.c.id > self._last)
        new = {external_id: id_ for external_id, id_ in self.conn.execute(query).all()}
        if new:
            self.known.update(new)
            self._last = max(new.values())


def _upsert_companies(
    conn: Connection,
    records: list[CompanyRecord],
    now: datetime,
    progress: Progress,
    ids: _Ids,
) -> tuple[int, int]:
    """(created, updated); ``ids`` learns the companies' ids."""
    writes = _Upserts(conn, _COMPANY, _COMPANY_FIELDS, {"created_at": now, "updated_at": now})
    columns = [_COMPANY.c[name] for name in _COMPANY_FIELDS]
    created = updated = 0
    query = _keyed(_COMPANY.c.external_id, _COMPANY.c.id, *columns)
    for batch in _chunks(records):
        stored = _stored(conn, query, [r.external_id for r in batch], empty=ids.fresh)
        existing = {row[0]: (row[1], tuple(row[2:])) for row in stored}
        fresh: list[str] = []
        for record in batch:
            values = _company_values(record)
            found = existing.get(record.external_id)
            if found is not None:
                ids.known[record.external_id] = found[0]
                if found[1] == values:
                    continue
                updated += 1
            else:
                created += 1
                fresh.append(record.external_id)
            writes.add(record.external_id, values, None if found is None else found[1])
        writes.write()
        if not ids.fresh:
            ids.look_up(fresh)
        progress("companies", len(batch))
    if ids.fresh:
        ids.read_new()
    return created, updated


def _contact_values(record: ContactRecord, company_id: int) -> tuple[object, ...]:
    # Level and EmailKind are StrEnums: equal to the strings the database gives back.
    return (company_id, *_record_contact_values(record), True)  # listed: active again


def _upsert_contacts(
    conn: Connection,
    records: list[ContactRecord],
    companies: dict[str, int],
    now: datetime,
    progress: Progress,
    ids: _Ids,
) -> tuple[int, int]:
    """(created, updated); ``ids`` learns the contacts' ids."""
    # A new row starts without a bounce mark; an existing one keeps its own (not SET).
    writes = _Upserts(
        conn,
        _CONTACT,
        _CONTACT_FIELDS,
        {"email_invalid_reason": "", "created_at": now, "updated_at": now},
    )
    columns = [_CONTACT.c[name] for name in _CONTACT_FIELDS]
    clear_mark = (
        update(_CONTACT)
        .where(_CONTACT.c.id == bindparam("contact"))
        .values(email_invalid_at=None, email_invalid_reason="")
    )
    created = updated = 0
    query = _keyed(_CONTACT.c.external_id, _CONTACT.c.id, _CONTACT.c.email_invalid_at, *columns)
    for batch in _chunks(records):
        stored = _stored(conn, query, [r.external_id for r in batch], empty=ids.fresh)
        existing = {row[0]: (row[1], row[2], tuple(row[3:])) for row in stored}
        fresh: list[str] = []
        cleared: list[dict[str, object]] = []
        for record in batch:
            values = _contact_values(record, companies[record.company_external_id])
            found = existing.get(record.external_id)
            if found is not None:
                contact_id, invalid_at, current = found
                ids.known[record.external_id] = contact_id
                if current == values:
                    continue
                updated += 1
                if _new_address_clears_mark(invalid_at, current[_EMAIL], record.email):  # type: ignore[arg-type]
                    cleared.append({"contact": contact_id})
            else:
                created += 1
                fresh.append(record.external_id)
            writes.add(record.external_id, values, None if found is None else found[2])
        writes.write()
        if cleared:
            conn.execute(clear_mark, cleared)
        if not ids.fresh:
            ids.look_up(fresh)
        progress("contacts", len(batch))
    if ids.fresh:
        ids.read_new()
    return created, updated


def _new_address_clears_mark(
    invalid_at: datetime | None, old_email: str | None, new_email: str | None
) -> bool:
    """A new email address clears the invalid mark its predecessor's hard bounce left;
    the same address again (whatever its case) keeps it: it would bounce again."""
    new = (new_email or "").lower()
    return invalid_at is not None and bool(new) and new != (old_email or "").lower()


def _upsert_consents(
    conn: Connection,
    records: list[ContactRecord],
    contacts: dict[str, int],
    now: datetime,
    source: str,
    progress: Progress,
    *,
    empty: bool,
) -> int:
    """How many consent records were set (new, or a different basis)."""
    statement = _upsert(
        conn, _CONSENT, ["contact_id", "channel"], ["basis", "source", "updated_at"]
    )
    writer = _Writer(
        conn,
        _CONSENT,
        statement,
        ["contact_id", "channel", "basis"],
        {"source": source, "updated_at": now},
    )
    query = select(_CONSENT.c.contact_id, _CONSENT.c.channel, _CONSENT.c.basis).where(
        _CONSENT.c.contact_id.in_(bindparam(_KEYS, expanding=True))
    )
    changed = 0
    for batch in _chunks(records):
        wanted = [
            (contacts[r.external_id], channel, basis._value_)  # not .value: a property
            for r in batch
            for channel, basis in r.consents.items()
        ]
        # A contact appears once in a file and a channel once in its consents: no
        # (contact, channel) twice in ``wanted``.
        if wanted and not empty:
            contact_ids = sorted({contact_id for contact_id, _, _ in wanted})
            stored = _stored(conn, query, contact_ids, empty=False)
            existing = {(c, ch): basis for c, ch, basis in stored}
            wanted = [w for w in wanted if existing.get((w[0], w[1])) != w[2]]
        writer.write(wanted)
        changed += len(wanted)
        progress("consents", len(batch))
    return changed
