"""Read and validate a network CSV file (companies and their contacts), all or nothing.

One row per contact; the company columns repeat on every contact of the company, as in
a spreadsheet export. ``docs/network-csv.md`` documents every column. Every bad line is
reported with its number and reason; nothing is returned unless the whole file is clean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from network_anim.domain import CHANNEL_NAMES, EmailKind, LawfulBasis, Level
from network_anim.errors import UserError
from network_anim.network.csv_input import formula_problem, open_rows, read_text

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


@dataclass(frozen=True, slots=True)
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


def parse_network_csv(text: str, *, source: str, defaults: ImportDefaults) -> NetworkFile:
    reader, header = open_rows(
        text,
        source=source,
        known=ALL_COLUMNS,
        required=REQUIRED_COLUMNS,
        hint="see docs/network-csv.md for the column list",
    )

    problems: list[str] = []
    companies: dict[str, tuple[int, CompanyRecord]] = {}
    contacts: list[ContactRecord] = []
    seen_contacts: dict[str, int] = {}
    line = reader.line_num
    for row in reader:
        start, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.append(f"line {start}: {len(row)} cells, the header has {len(header)}")
            continue
        raw_cells = dict(zip(header, row, strict=True))
        cells = {name: value.strip() for name, value in raw_cells.items()}
        try:
            company, contact = _parse_row(cells, start, defaults, raw_cells)
        except _LineProblems as exc:
            problems.extend(f"line {start}: {p}" for p in exc.problems)
            continue
        first = companies.setdefault(company.external_id, (start, company))
        if first[1] != company:
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
    if problems:
        raise UserError(f"{source}: {len(problems)} bad line(s); nothing was imported", problems)
    if not contacts:
        raise UserError(f"{source}: no contact rows under the header")
    return NetworkFile(companies=[c for _, c in companies.values()], contacts=contacts)


def _first_difference(a: CompanyRecord, b: CompanyRecord) -> str:
    for name in CompanyRecord.__slots__:
        if getattr(a, name) != getattr(b, name):
            return f"{name} {getattr(a, name)!r} vs {getattr(b, name)!r}"
    return "same"


def _parse_row(
    cells: dict[str, str], line: int, defaults: ImportDefaults, raw_cells: dict[str, str]
) -> tuple[CompanyRecord, ContactRecord]:
    problems: list[str] = []

    def get(name: str) -> str:
        return cells.get(name, "")

    for name, value in cells.items():
        formula = (
            None if name in _PHONE_COLUMNS else formula_problem(name, raw_cells[name].lstrip(" "))
        )
        if formula:
            problems.append(formula)
        limit = _MAX_LENGTH.get(name, _DEFAULT_MAX_LENGTH)
        if len(value) > limit and name != "email":
            problems.append(f"{name} is {len(value)} characters; at most {limit}")
    for name in REQUIRED_COLUMNS:
        if not get(name):
            problems.append(f"{name} is empty; it is required")

    level = _choice(get("level"), Level, "level", problems)
    country = (get("country") or defaults.region).upper()
    if len(country) != 2 or not country.isalpha():
        problems.append(f"country {get('country')!r} is not a two-letter ISO code (FR, BE, CH...)")
        country = defaults.region

    email = _email(get("email"), problems)
    email_kind = _email_kind(get("email_kind"), email, problems)
    mobile = _phone(get("mobile"), "mobile", country, problems, mobile_only=True)
    phone = _phone(get("phone"), "phone", country, problems, mobile_only=False)
    web_access = _flag(get("web_access"), "web_access", problems, default=True)
    timezone = get("timezone") or defaults.timezone
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone {timezone!r} is unknown (use an IANA name like Europe/Paris)")
    language = (get("language") or defaults.language).lower()
    if len(language) != 2 or not language.isalpha():
        problems.append(f"language {get('language')!r} is not a two-letter code (fr, en...)")
    consents = {}
    for channel in CHANNEL_NAMES:
        value = get(f"consent_{channel}").lower()
        if value:
            basis = _choice(value, LawfulBasis, f"consent_{channel}", problems)
            if basis is not None:
                consents[channel] = basis

    company = CompanyRecord(
        external_id=get("company_id"),
        name=get("company_name"),
        sector=get("sector"),
        size=get("size"),
        tier=get("tier"),
        region=get("region"),
        delivery_point=get("delivery_point"),
        building=get("building"),
        street=get("street"),
        locality=get("locality"),
        postcode=get("postcode"),
        city=get("city"),
        country=country,
    )
    if company.street or company.postcode or company.city:
        problems.extend(_address_problems(company, cells))
    if problems:
        raise _LineProblems(problems)
    assert level is not None
    contact = ContactRecord(
        line=line,
        external_id=get("contact_id"),
        company_external_id=company.external_id,
        civility=get("civility"),
        first_name=get("first_name"),
        last_name=get("last_name"),
        role=get("role"),
        level=level,
        email=email,
        email_kind=email_kind,
        mobile=mobile,
        phone=phone,
        web_access=web_access,
        timezone=timezone,
        language=language,
        consents=consents,
    )
    return company, contact


def _choice(value: str, enum: type[E], column: str, problems: list[str]) -> E | None:
    try:
        return enum(value.lower())
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        problems.append(f"{column} {value!r} is not one of {allowed}")
        return None


def _email(value: str, problems: list[str]) -> str | None:
    if not value:
        return None
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        problems.append(f"email {value!r} is not valid: {exc}")
        return None


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


# Overseas departments share France's country but not its numbering plan.
_FRENCH_OVERSEAS_REGIONS = ("GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF")


def _phone(
    value: str, column: str, region: str, problems: list[str], *, mobile_only: bool
) -> str | None:
    if not value:
        return None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        problems.append(f"{column} {value!r} is not a phone number: {exc}")
        return None
    if not phonenumbers.is_valid_number(number) and region == "FR" and not value.startswith("+"):
        for overseas in _FRENCH_OVERSEAS_REGIONS:
            candidate = phonenumbers.parse(value, overseas)
            if phonenumbers.is_valid_number(candidate):
                number = candidate
                break
    if not phonenumbers.is_valid_number(number):
        problems.append(
            f"{column} {value!r} is not a valid number for region {region} "
            "(write it with its country code, e.g. +33 6 12 34 56 78)"
        )
        return None
    mobile_types = (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )
    if mobile_only and phonenumbers.number_type(number) not in mobile_types:
        problems.append(
            f"mobile {value!r} is not a mobile number; put landlines in the phone column"
        )
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


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


def _address_problems(company: CompanyRecord, cells: dict[str, str]) -> list[str]:
    from network_anim.channels.postal import address_block_problems, company_address

    address = company_address(
        company,
        civility=cells.get("civility", ""),
        first_name=cells.get("first_name", ""),
        last_name=cells.get("last_name", ""),
    )
    return [f"postal address: {problem}" for problem in address_block_problems(address)]
