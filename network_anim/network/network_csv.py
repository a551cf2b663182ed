"""Read and validate a network CSV file (companies and their contacts), all or nothing.

One row per contact; the company columns repeat on every contact of the company, as in
a spreadsheet export. ``docs/network-csv.md`` documents every column. Every bad line is
reported with its number and reason; nothing is returned unless the whole file is clean.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from network_anim.domain import CHANNEL_NAMES, EmailKind, LawfulBasis, Level
from network_anim.errors import UserError
from network_anim.gc_pause import collector_paused
from network_anim.network.csv_input import (
    FORMULA_STARTS,
    formula_lines,
    formula_problem,
    line_breaks,
    open_rows,
    read_text,
    rows_reader,
)
from network_anim.network.field_checks import check_email, check_phone
from network_anim.network.forked_stream import ForkedStream

COMPANY_COLUMNS = (
    "company_id",
    "company_name",
    "sector",
    "size",
    "tier",
    "region",
    "delivery_point",
    "building",
    "street",
    "locality",
    "postcode",
    "city",
    "country",
)
CONTACT_COLUMNS = (
    "contact_id",
    "civility",
    "first_name",
    "last_name",
    "role",
    "level",
    "email",
    "email_kind",
    "mobile",
    "phone",
    "web_access",
    "timezone",
    "language",
)
E = TypeVar("E", Level, LawfulBasis)
CONSENT_COLUMNS = tuple(f"consent_{channel}" for channel in CHANNEL_NAMES)
ALL_COLUMNS = COMPANY_COLUMNS + CONTACT_COLUMNS + CONSENT_COLUMNS
REQUIRED_COLUMNS = ("company_id", "company_name", "contact_id", "last_name", "level")
# A leading + is how a phone number is written; anywhere else it may start a formula.
_PHONE_COLUMNS = frozenset({"mobile", "phone"})
_TRUE = {"yes", "y", "true", "1", "oui", "o", "x"}
_FALSE = {"no", "n", "false", "0", "non"}
_MAX_LENGTH = {"company_name": 200, "company_id": 64, "contact_id": 64}
_DEFAULT_MAX_LENGTH = 80
# No cell this long or shorter can break a length limit (the smallest limit is 64).
_ALWAYS_SHORT = min(min(_MAX_LENGTH.values()), _DEFAULT_MAX_LENGTH)
# Any cell (lstripped of spaces) that starts like a formula; a row without a match needs
# no cell-by-cell formula check. Cells are joined on NUL, so each starts after \A or NUL.
_FORMULA_HINT = re.compile(r"(?:\A|\x00) *[" + re.escape("".join(FORMULA_STARTS)) + "]")
# A file this long has its rows checked on two cores (see NetworkStream); below, forking
# costs more than it saves.
PARALLEL_FROM_ROWS = 20_000
# The share of a big file's rows checked here, the rest in the forked child: this
# process also writes every row into the database, the child only checks. Measured
# (callgrind, 100,000 contacts, the child handing addresses back): at 15% this process
# ran 25.9 G instructions to the child's 23.1 G, at 10% 24.9 G to 24.3 G; and only this
# process works after the last row (indexes, commit).
_SHARE_HERE = 0.08
# Rows per chunk the child sends: each is written while the child checks the next.
_CHUNK_ROWS = 5_000
# The columns _parse_row reads of every row, in its order (Layout.contact_cells).
_ROW_COLUMNS = (
    "contact_id", "level", "email", "email_kind", "mobile", "phone", "web_access",
    "timezone", "language", "civility", "first_name", "last_name", "role",
)  # fmt: skip
_MEMBERS: dict[type, dict[str, object]] = {
    enum: {member.value: member for member in enum} for enum in (Level, LawfulBasis, EmailKind)
}


@dataclass(frozen=True, slots=True)
class CompanyRecord:
    external_id: str
    name: str
    sector: str
    size: str
    tier: str
    region: str
    delivery_point: str
    building: str
    street: str
    locality: str
    postcode: str
    city: str
    country: str


# Not frozen: a frozen dataclass sets each field through object.__setattr__, 2 µs a
# record against 0.3 µs, and a big file makes its records twice (checked in the child,
# rebuilt here). Nothing changes a record once made.
@dataclass(slots=True)
class ContactRecord:
    line: int
    external_id: str
    company_external_id: str
    civility: str
    first_name: str
    last_name: str
    role: str
    level: Level
    email: str | None
    email_kind: EmailKind
    mobile: str | None
    phone: str | None
    web_access: bool
    timezone: str
    language: str
    # Only the channels whose column was filled: a blank keeps what is recorded.
    consents: dict[str, LawfulBasis] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NetworkFile:
    companies: list[CompanyRecord]
    contacts: list[ContactRecord]


@dataclass(frozen=True, slots=True)
class ImportDefaults:
    region: str = "FR"
    timezone: str = "Europe/Paris"
    language: str = "fr"


class _LineProblems(Exception):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems


def read_network_csv(path: Path, defaults: ImportDefaults) -> NetworkFile:
    return parse_network_csv(read_text(path), source=str(path), defaults=defaults)


class _Layout:
    """Where the columns sit in this file's rows, and the per-file caches.

    Rows are read as lists of stripped cells with one "" appended: a column the file
    lacks points at that last cell. A big file repeats each company's columns on every
    one of its contacts: the company record and its country check are made once per
    distinct set of company cells."""

    def __init__(self, header: Sequence[str], defaults: ImportDefaults) -> None:
        self.header = list(header)
        self.defaults = defaults
        missing = len(header)
        self.at = {name: header.index(name) if name in header else missing for name in ALL_COLUMNS}
        unchecked = [i for i, name in enumerate(header) if name not in _PHONE_COLUMNS]
        self._formula_cells = _getter(unchecked)
        self._company_cells = _getter([header.index(n) for n in COMPANY_COLUMNS if n in header])
        # Where a row's own columns sit, in _parse_row's order: one unpacking a row
        # instead of a dict lookup per column.
        self.contact_cells = tuple(self.at[name] for name in _ROW_COLUMNS)
        self.required = [(self.at[name], name) for name in REQUIRED_COLUMNS]
        self.consents = [
            (channel, f"consent_{channel}", self.at[f"consent_{channel}"])
            for channel in CHANNEL_NAMES
            if f"consent_{channel}" in header
        ]
        self.companies: dict[tuple[str, ...], tuple[CompanyRecord, str | None]] = {}
        # Optimistic pass (exact=False): addresses are checked after the loop, once per
        # company, with its longest recipient line and with an empty one if any row has
        # none; any problem at all and the file is parsed again exactly, row by row.
        self.exact = False
        self.longest: dict[tuple[str, ...], tuple[int, CompanyRecord, dict[str, str]]] = {}
        self.nameless: dict[tuple[str, ...], tuple[CompanyRecord, dict[str, str]]] = {}
        # The lines where a cell may start like a formula (csv_input.formula_lines) in
        # the rows this process checks; None: look at every row's cells.
        self.formula_lines: set[int] | None = None

    def needs_cell_checks(self, row: list[str], line: int) -> bool:
        """False when no cell can start like a formula nor break a length limit: the
        cell-by-cell loop would find nothing. ``line``: where the row starts."""
        if max(map(len, row)) > _ALWAYS_SHORT:
            return True
        if self.formula_lines is not None:
            return line in self.formula_lines
        return _FORMULA_HINT.search("\x00".join(self._formula_cells(row))) is not None

    def company(
        self, row: list[str], cells: list[str]
    ) -> tuple[tuple[str, ...], CompanyRecord, str | None]:
        """(cache key, the record, the country problem if any) of this row's company."""
        key = self._company_cells(row)
        found = self.companies.get(key)
        if found is None:
            named = {name: cells[self.at[name]] for name in COMPANY_COLUMNS}
            found = self.companies[key] = _company(named, self.defaults)
        return key, found[0], found[1]


def _getter(indices: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """A tuple of the cells at ``indices`` (itemgetter, which gives a bare value for one)."""
    if not indices:
        return lambda row: ()
    if len(indices) == 1:
        index = indices[0]
        return lambda row: (row[index],)
    return itemgetter(*indices)  # type: ignore[return-value]


def _company(cells: dict[str, str], defaults: ImportDefaults) -> tuple[CompanyRecord, str | None]:
    country = (cells.get("country", "") or defaults.region).upper()
    problem = None
    if len(country) != 2 or not country.isalpha():
        problem = (
            f"country {cells.get('country', '')!r} is not a two-letter ISO code (FR, BE, CH...)"
        )
        country = defaults.region
    record = CompanyRecord(
        external_id=cells.get("company_id", ""),
        name=cells.get("company_name", ""),
        sector=cells.get("sector", ""),
        size=cells.get("size", ""),
        tier=cells.get("tier", ""),
        region=cells.get("region", ""),
        delivery_point=cells.get("delivery_point", ""),
        building=cells.get("building", ""),
        street=cells.get("street", ""),
        locality=cells.get("locality", ""),
        postcode=cells.get("postcode", ""),
        city=cells.get("city", ""),
        country=country,
    )
    return record, problem


def parse_network_csv(text: str, *, source: str, defaults: ImportDefaults) -> NetworkFile:
    """The whole file at once (see NetworkStream for the checks and their order)."""
    companies: list[CompanyRecord] = []
    contacts: list[ContactRecord] = []
    for part in NetworkStream(text, source=source, defaults=defaults):
        companies.extend(part.companies)
        contacts.extend(part.contacts)
    return NetworkFile(companies=companies, contacts=contacts)


class NetworkStream:
    """A network file's rows checked and handed over in parts, in line order, each part
    as soon as it is checked: the companies first seen in it and its contacts.

    A clean file is read once, its postal addresses checked once per company with its
    hardest row; a big one on both cores: this process checks the first rows while a
    forked child checks the others and sends them back in chunks, so a consumer (the
    importer) writes what is done while the child works on. A file with any problem is
    read again the original way, every row's address checked, and iterating raises a
    UserError naming every bad line exactly; some problems (a company whose rows differ,
    an address too long) show only late, after parts were handed over: a consumer that
    writes them does so in one transaction, which the error rolls back.

    The header is checked at construction; iterate once."""

    def __init__(self, text: str, *, source: str, defaults: ImportDefaults) -> None:
        self.text, self.source, self.defaults = text, source, defaults
        reader, header = _open(text, source)
        self.layout = _Layout(header, defaults)
        self.delimiter: str = reader.dialect.delimiter
        # Rows are about lines: a quoted cell over several lines only makes this a guess.
        self.rows_estimate = max(text.count("\n") - 1, 1)
        self._here: tuple[str, int | None] = (text, None)  # the rows checked here
        self._there: _Cut | int | None = None  # where the child's rows start
        self._child: ForkedStream | None = None
        if self.rows_estimate < PARALLEL_FROM_ROWS:
            return
        cut = _Cut.of(text, _SHARE_HERE)
        if cut is None:
            self._there = int(self.rows_estimate * _SHARE_HERE)
            self._here = (text, self._there)
        else:
            self._there = cut
            self._here = (text[: cut.offset], None)
        addresses = _ChildAddresses(self.layout)
        self._child = ForkedStream.start(
            partial(_wired_outcomes, self),
            addresses.clean,
            chunk=_CHUNK_ROWS,
            hand_over=addresses.hand_over,
        )
        if self._child is None:
            self._here, self._there = (text, None), None

    def __iter__(self) -> Iterator[NetworkFile]:
        with collector_paused():
            try:
                yield from self._parts()
            finally:
                if self._child is not None:
                    self._child.close()

    def _parts(self) -> Iterator[NetworkFile]:
        merger = _Merger()
        child = self._child
        text, stop = self._here
        # Without quotes the lines are the rows: formula-like cells are found at once.
        self.layout.formula_lines = None if '"' in text else formula_lines(text, self.delimiter)
        yield from self._checked(merger, _outcomes(text, self.source, self.layout, 0, stop))
        # Judged now, while the child works on, rather than after its last chunk.
        clean = _addresses_clean(self.layout)
        if child is not None:
            companies: dict[tuple[str, ...], CompanyRecord] = {}
            for chunk in child.chunks():
                yield from self._checked(merger, (_from_wire(w, companies) for w in chunk))
            if child.handed is not None:
                # Judged here while the child judges the rest of its companies.
                handed = [(_company_from_wire(f, companies), n) for f, n in child.handed]
                clean = _printable(handed) and clean
                child.wait()
            if child.complete:
                clean = clean and child.trailer
            else:
                # The child died: the addresses of the rows it checked are noted here
                # again, and the rows it did not send are checked here.
                rows = self._child_rows()
                for _ in itertools.islice(rows, child.received):
                    pass
                yield from self._checked(merger, rows)
                clean = clean and _addresses_clean(self.layout)
        if not clean:
            self._raise_exact()
        if not merger.contacts_seen:
            raise UserError(f"{self.source}: no contact rows under the header")

    def _child_rows(self) -> Iterator[_Outcome]:
        """The outcomes of the rows the child checks (run by the child itself, or here
        when it died), noted in this process's layout."""
        there, layout = self._there, self.layout
        if isinstance(there, _Cut):
            segment = self.text[there.offset :]
            layout.formula_lines = formula_lines(segment, self.delimiter, there.line)
            reader = rows_reader(segment, self.delimiter)
            return (
                _row_outcome(line + there.line - 1, row, layout) for line, row in _numbered(reader)
            )
        assert there is not None
        layout.formula_lines = None
        return _outcomes(self.text, self.source, layout, there, None)

    def _checked(self, merger: _Merger, outcomes: Iterable[_Outcome]) -> Iterator[NetworkFile]:
        part = merger.add(outcomes)
        if merger.problems:
            self._raise_exact()
        if part.contacts:
            yield part

    def _raise_exact(self) -> NoReturn:
        if self._child is not None:
            self._child.close()
        layout = _Layout(self.layout.header, self.defaults)
        layout.exact = True
        merger = _Merger()
        outcomes = _outcomes(self.text, self.source, layout, 0, None)
        # In slices, each part dropped once added: only the problems are wanted, and the
        # records of a whole big file would double this process's memory.
        while rows := list(itertools.islice(outcomes, _CHUNK_ROWS)):
            merger.add(rows)
        # The optimistic pass differs only in checking a company's address with its
        # hardest row: whatever it found, this pass finds on the same lines.
        assert merger.problems, "the exact pass found none of the optimistic pass's problems"
        raise UserError(
            f"{self.source}: {len(merger.problems)} bad line(s); nothing was imported",
            merger.problems,
        )


@dataclass(frozen=True, slots=True)
class _Cut:
    """Where the child's rows start in a file without quotes, whose lines are its rows:
    the child reads its own part of the text only."""

    offset: int  # of the first character of the line
    line: int

    @classmethod
    def of(cls, text: str, share: float) -> _Cut | None:
        """The line after the first ``share`` of the text; None for a file with quotes
        (a quoted cell may hold a line break) or without a "\n" line break past it."""
        if '"' in text:
            return None
        offset = text.find("\n", int(len(text) * share)) + 1
        if offset == 0:
            return None
        return cls(offset, 1 + line_breaks(text, 0, offset))


class _Merger:
    """The checks across rows, part after part in line order: a company's rows agree,
    a contact appears once."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.companies: dict[str, tuple[int, CompanyRecord]] = {}
        self.seen_contacts: dict[str, int] = {}

    @property
    def contacts_seen(self) -> int:
        return len(self.seen_contacts)

    def add(self, outcomes: Iterable[_Outcome]) -> NetworkFile:
        """The part these rows make: the companies first seen in them, their contacts."""
        problems, companies, seen_contacts = self.problems, self.companies, self.seen_contacts
        new_companies: list[CompanyRecord] = []
        contacts: list[ContactRecord] = []
        for outcome in outcomes:
            if outcome is None:
                continue
            start, row_problems, company, contact = outcome
            if row_problems:
                problems.extend(f"line {start}: {p}" for p in row_problems)
                continue
            assert company is not None and contact is not None
            first = companies.get(company.external_id)
            if first is None:
                companies[company.external_id] = (start, company)
                new_companies.append(company)
            elif first[1] is not company and first[1] != company:
                diff = _first_difference(first[1], company)
                problems.append(
                    f"line {start}: company {company.external_id} differs from line {first[0]} "
                    f"({diff}); every row of a company must repeat the same company columns"
                )
                continue
            if contact.external_id in seen_contacts:
                problems.append(
                    f"line {start}: contact_id {contact.external_id} already on line "
                    f"{seen_contacts[contact.external_id]}"
                )
                continue
            seen_contacts[contact.external_id] = start
            contacts.append(contact)
        return NetworkFile(companies=new_companies, contacts=contacts)


# (line, its problems or None, company, contact); None for a blank row.
_Outcome = tuple[int, list[str] | None, CompanyRecord | None, ContactRecord | None] | None


def _row_outcome(start: int, row: list[str], layout: _Layout) -> _Outcome:
    """What one row says on its own (the checks across rows come after, in line order)."""
    cells = list(map(str.strip, row))
    if not any(cells):
        return None
    width = len(layout.header)
    if len(row) != width:
        return start, [f"{len(row)} cells, the header has {width}"], None, None
    cells.append("")  # what a column the file lacks reads
    try:
        company, contact = _parse_row(cells, start, row, layout)
    except _LineProblems as exc:
        return start, exc.problems, None, None
    return start, None, company, contact


def _numbered(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """Each row with the line it starts on."""
    line = reader.line_num
    for row in reader:
        yield line + 1, row
        line = reader.line_num


def _open(text: str, source: str) -> tuple[Any, list[str]]:
    """The rows' reader (past the header, which it checks) and the header."""
    return open_rows(  # type: ignore[no-any-return]
        text,
        source=source,
        known=ALL_COLUMNS,
        required=REQUIRED_COLUMNS,
        hint="see docs/network-csv.md for the column list",
    )


def _outcomes(
    text: str, source: str, layout: _Layout, start: int, stop: int | None
) -> Iterator[_Outcome]:
    """The outcomes of rows ``start`` to ``stop`` (row indices) of the file."""
    rows = itertools.islice(_numbered(_open(text, source)[0]), start, stop)
    return (_row_outcome(line, row, layout) for line, row in rows)


# Records travel as plain tuples, enums as their values: pickling 50,000 slotted
# dataclasses and their enum members took longer than checking the rows. A company's
# tuple is made once: pickle then writes it once per chunk, a reference on its other rows.
_WIRED_ENUMS = [
    (ContactRecord.__slots__.index(name), enum)
    for name, enum in (("level", Level), ("email_kind", EmailKind))
]
_contact_fields = attrgetter(*ContactRecord.__slots__)
_company_fields = attrgetter(*CompanyRecord.__slots__)


def _wired_outcomes(stream: NetworkStream) -> Iterator[Any]:  # pragma: no cover (in the child)
    companies: dict[int, tuple[str, ...]] = {}
    return (_to_wire(outcome, companies) for outcome in stream._child_rows())


def _to_wire(outcome: _Outcome, companies: dict[int, tuple[str, ...]]) -> Any:
    """``companies``: each company's tuple by the id of its record (which the layout
    keeps alive, one per company)."""
    if outcome is None or outcome[2] is None:
        return outcome
    start, problems, company, contact = outcome
    assert contact is not None
    fields = list(_contact_fields(contact))
    # _value_, not .value (a property) nor str() (a new string each row, which pickle
    # would write out each time).
    for index, _ in _WIRED_ENUMS:
        fields[index] = fields[index]._value_
    fields[-1] = {channel: basis._value_ for channel, basis in fields[-1].items()}
    wired = companies.get(id(company))
    if wired is None:
        wired = companies[id(company)] = _company_fields(company)
    return start, problems, wired, tuple(fields)


def _from_wire(wired: Any, companies: dict[tuple[str, ...], CompanyRecord]) -> _Outcome:
    """An outcome back from the wire; ``companies``: one record per company, as the
    one-process pass makes (its rows share it)."""
    if wired is None or wired[2] is None:
        return wired  # type: ignore[no-any-return]
    start, problems, company_fields, contact_fields = wired
    fields = list(contact_fields)
    for index, enum in _WIRED_ENUMS:
        fields[index] = _MEMBERS[enum][fields[index]]
    bases = _MEMBERS[LawfulBasis]
    fields[-1] = {channel: bases[value] for channel, value in fields[-1].items()}
    return start, problems, _company_from_wire(company_fields, companies), ContactRecord(*fields)


def _company_from_wire(
    fields: tuple[str, ...], companies: dict[tuple[str, ...], CompanyRecord]
) -> CompanyRecord:
    """The one record of the company these fields describe (made on first sight)."""
    company = companies.get(fields)
    if company is None:
        company = companies[fields] = CompanyRecord(*fields)
    return company


def _first_difference(a: CompanyRecord, b: CompanyRecord) -> str:
    for name in CompanyRecord.__slots__:
        if getattr(a, name) != getattr(b, name):
            return f"{name} {getattr(a, name)!r} vs {getattr(b, name)!r}"
    return "same"


def _parse_row(
    cells: list[str], line: int, row: list[str], layout: _Layout
) -> tuple[CompanyRecord, ContactRecord]:
    problems: list[str] = []
    defaults = layout.defaults
    (
        contact_id, level_cell, email_cell, kind_cell, mobile_cell, phone_cell, web_cell,
        zone_cell, language_cell, civility, first_name, last_name, role,
    ) = map(cells.__getitem__, layout.contact_cells)  # fmt: skip

    if layout.needs_cell_checks(row, line):
        for name, value, raw in zip(layout.header, cells, row, strict=False):
            formula = None if name in _PHONE_COLUMNS else formula_problem(name, raw.lstrip(" "))
            if formula:
                problems.append(formula)
            limit = _MAX_LENGTH.get(name, _DEFAULT_MAX_LENGTH)
            if len(value) > limit and name != "email":
                problems.append(f"{name} is {len(value)} characters; at most {limit}")
    for index, name in layout.required:
        if not cells[index]:
            problems.append(f"{name} is empty; it is required")

    level = _choice(level_cell, Level, "level", problems)
    company_key, company, country_problem = layout.company(row, cells)
    if country_problem is not None:
        problems.append(country_problem)
    country = company.country

    email = _email(email_cell, problems)
    email_kind = _email_kind(kind_cell, email, problems)
    mobile = _phone(mobile_cell, "mobile", country, problems, mobile_only=True)
    phone = _phone(phone_cell, "phone", country, problems, mobile_only=False)
    web_access = _flag(web_cell, "web_access", problems, default=True)
    timezone = zone_cell or defaults.timezone
    if not _zone_known(timezone):
        problems.append(f"timezone {timezone!r} is unknown (use an IANA name like Europe/Paris)")
    language = (language_cell or defaults.language).lower()
    if len(language) != 2 or not language.isalpha():
        problems.append(f"language {language_cell!r} is not a two-letter code (fr, en...)")
    consents = {}
    bases = _MEMBERS[LawfulBasis]
    for channel, column, index in layout.consents:
        value = cells[index]
        if value:
            value = value.lower()
            basis = bases.get(value)
            if basis is None:
                basis = _choice(value, LawfulBasis, column, problems)
            if basis is not None:
                consents[channel] = basis

    if company.street or company.postcode or company.city:
        if layout.exact:
            names = {"civility": civility, "first_name": first_name, "last_name": last_name}
            problems.extend(_address_problems(company, names))
        else:
            _note_address(company_key, company, civility, first_name, last_name, layout)
    if problems:
        raise _LineProblems(problems)
    assert level is not None
    contact = ContactRecord(
        line,
        contact_id,
        company.external_id,
        civility,
        first_name,
        last_name,
        role,
        level,  # type: ignore[arg-type]
        email,
        email_kind,
        mobile,
        phone,
        web_access,
        timezone,
        language,
        consents,  # type: ignore[arg-type]
    )
    return company, contact


@lru_cache(maxsize=1024)
def _zone_known(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _choice(value: str, enum: type[E], column: str, problems: list[str]) -> E | None:
    # A dict of the members rather than enum(value): the same exact-value lookup (these
    # enums have no _missing_), without the enum machinery, seven times a row.
    member = _MEMBERS[enum].get(value.lower())
    if member is not None:
        return member  # type: ignore[return-value]
    allowed = ", ".join(e.value for e in enum)
    problems.append(f"{column} {value!r} is not one of {allowed}")
    return None


def _email(value: str, problems: list[str]) -> str | None:
    if not value:
        return None
    address, problem = check_email(value)
    if problem is not None:
        problems.append(problem)
    return address


def _email_kind(value: str, email: str | None, problems: list[str]) -> EmailKind:
    if not value:
        return EmailKind.PERSONAL if email else EmailKind.NONE
    try:
        kind = EmailKind(value.lower())
    except ValueError:
        problems.append(f"email_kind {value!r} is not one of personal, shared, none")
        return EmailKind.NONE
    if kind != EmailKind.NONE and email is None:
        problems.append(f"email_kind is {kind} but the email column is empty")
    return kind if email else EmailKind.NONE


def _phone(
    value: str, column: str, region: str, problems: list[str], *, mobile_only: bool
) -> str | None:
    if not value:
        return None
    number, problem = check_phone(value, column, region, mobile_only)
    if problem is not None:
        problems.append(problem)
    return number


def _flag(value: str, column: str, problems: list[str], *, default: bool) -> bool:
    if not value:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    problems.append(f"{column} {value!r} is not yes or no")
    return default


def _note_address(
    key: tuple[str, ...],
    company: CompanyRecord,
    civility: str,
    first_name: str,
    last_name: str,
    layout: _Layout,
) -> None:
    """Keep the row whose letter is the hardest to lay out for this company's address.

    The block's layout and problems depend on the recipient line only through whether it
    is empty and how long it is, and a shorter line never makes a line too long nor needs
    more lines: if the company's longest recipient line prints, every shorter one does."""
    from network_anim.channels.postal import _clean, person_line

    kept = layout.longest.get(key)
    # Cleaning only drops characters (and upper-cases the last name after): a bound on
    # the line's length, so most rows skip building it. A printable last name is never
    # cleaned away, so that row's line is not empty either.
    bound = len(civility) + len(first_name) + len(last_name.upper()) + 2
    if kept is not None and bound <= kept[0] and last_name.isprintable():
        return
    recipient = _clean(person_line(civility, first_name, last_name))
    names = {"civility": civility, "first_name": first_name, "last_name": last_name}
    if not recipient:
        layout.nameless.setdefault(key, (company, names))
        return
    if kept is None or len(recipient) > kept[0]:
        layout.longest[key] = (len(recipient), company, names)


def _addresses_clean(layout: _Layout) -> bool:
    """Whether the hardest row of each company noted in ``layout`` prints (each process
    judges the rows it checked: a company's hardest row is among one's or the other's)."""
    return _printable(_hardest_rows(layout))


def _hardest_rows(layout: _Layout) -> list[tuple[CompanyRecord, dict[str, str]]]:
    """Each company's rows to judge: its longest recipient line, and an empty one if any."""
    return [*((c, cells) for _, c, cells in layout.longest.values()), *layout.nameless.values()]


def _printable(rows: list[tuple[CompanyRecord, dict[str, str]]]) -> bool:
    return not any(_address_problems(company, cells) for company, cells in rows)


# The share of its companies' addresses the child hands back to be judged here: this
# process then also writes the child's last chunk.
_HANDED_SHARE = 0.4


class _ChildAddresses:
    """The child's last work, its companies' addresses, shared: ``hand_over`` gives a
    part of them to this process, ``clean`` judges the rest."""

    def __init__(self, layout: _Layout) -> None:
        self.layout = layout
        self.rest: list[tuple[CompanyRecord, dict[str, str]]] | None = None  # once handed

    def hand_over(self) -> list[tuple[tuple[str, ...], dict[str, str]]]:
        rows = _hardest_rows(self.layout)
        cut = int(len(rows) * _HANDED_SHARE)
        self.rest = rows[cut:]
        return [(_company_fields(company), cells) for company, cells in rows[:cut]]

    def clean(self) -> bool:
        assert self.rest is not None, "ForkedStream hands over before it finishes"
        return _printable(self.rest)


def _address_problems(company: CompanyRecord, cells: dict[str, str]) -> list[str]:
    from network_anim.channels.postal import address_block_problems, company_address

    address = company_address(
        company,
        civility=cells.get("civility", ""),
        first_name=cells.get("first_name", ""),
        last_name=cells.get("last_name", ""),
    )
    return [f"postal address: {problem}" for problem in address_block_problems(address)]
