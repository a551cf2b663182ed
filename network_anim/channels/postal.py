"""The French postal address block (NF Z10-011 / XP Z10-011), as pure functions.

La Poste sorts mail by machine, reading the block from the bottom up: at most 6 lines of at
most 38 characters, no blank line in the middle, the last French line being
``POSTCODE CITY`` in upper case without accents. For a company addressee the lines are:

    1. company name (raison sociale)
    2. recipient identity and/or service
    3. building, entrance, residence, industrial zone
    4. number and street
    5. special distribution mention: BP, CS, TSA, lieu-dit
    6. postcode and CITY (CEDEX kept)

A private person puts their name on line 1 and the delivery point (apartment, floor) on
line 2. Abroad, the country name in French capitals is the last line, inside the same six.
Empty lines are dropped, so a block is usually shorter than six lines.

API choice: :func:`address_block_problems` is the core and returns every problem at once
(what an importer wants to show for a CSV row); :func:`address_block` calls it and raises
:class:`AddressError` (carrying the same list) when there is any. Nothing is ever truncated
silently: a line that does not fit is reported with a hint on how to shorten it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

MAX_LINES = 6
MAX_LENGTH = 38


class AddressError(ValueError):
    """The address cannot be printed as a valid block; ``problems`` says what to fix."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True, kw_only=True)
class PostalAddress:
    """The parts of an address, each in its AFNOR slot (keyword-only: eight look-alike strs)."""

    recipient: str  # "M. Jean DUPONT", see person_line; may be "" when a company is given
    street: str  # number + street type + name (line 4)
    postcode: str
    city: str  # "Lyon", "Lyon Cedex 03"
    company: str | None = None  # raison sociale (line 1)
    delivery_point: str | None = None  # service, floor, apartment (line 2 complement)
    building: str | None = None  # entrance, building, residence, ZI (line 3)
    locality: str | None = None  # BP, CS, TSA, lieu-dit (line 5)
    country: str = "FR"  # ISO 3166 alpha-2


@dataclass(frozen=True, slots=True)
class _Country:
    name: str  # French name, capitals, no accents: what La Poste wants on the last line
    postcode: str  # regular expression of a well-formed postcode (after normalisation)
    example: str
    city_first: bool = False  # "LONDON SW1A 1AA" rather than "1000 BRUXELLES"


# A small table on purpose: the EU, its neighbours and the UK are where a French network's
# partners are. Anything else is reported rather than printed with a guessed format.
COUNTRIES: dict[str, _Country] = {
    "AD": _Country("ANDORRE", r"AD\d{3}", "AD500"),
    "AT": _Country("AUTRICHE", r"\d{4}", "1010"),
    "BE": _Country("BELGIQUE", r"\d{4}", "1000"),
    "BG": _Country("BULGARIE", r"\d{4}", "1000"),
    "CH": _Country("SUISSE", r"\d{4}", "1201"),
    "CY": _Country("CHYPRE", r"\d{4}", "1010"),
    "CZ": _Country("TCHEQUIE", r"\d{3} ?\d{2}", "110 00"),
    "DE": _Country("ALLEMAGNE", r"\d{5}", "10115"),
    "DK": _Country("DANEMARK", r"\d{4}", "1050"),
    "EE": _Country("ESTONIE", r"\d{5}", "10111"),
    "ES": _Country("ESPAGNE", r"\d{5}", "28001"),
    "FI": _Country("FINLANDE", r"\d{5}", "00100"),
    "GB": _Country("ROYAUME-UNI", r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}", "SW1A 1AA", True),
    "GR": _Country("GRECE", r"\d{3} ?\d{2}", "105 57"),
    "HR": _Country("CROATIE", r"\d{5}", "10000"),
    "HU": _Country("HONGRIE", r"\d{4}", "1051"),
    "IE": _Country("IRLANDE", r"[A-Z]\d[\dW] ?[\dA-Z]{4}", "D02 X285", True),
    "IS": _Country("ISLANDE", r"\d{3}", "101"),
    "IT": _Country("ITALIE", r"\d{5}", "00184"),
    "LI": _Country("LIECHTENSTEIN", r"\d{4}", "9490"),
    "LT": _Country("LITUANIE", r"(?:LT-)?\d{5}", "LT-01100"),
    "LU": _Country("LUXEMBOURG", r"(?:L-)?\d{4}", "L-1009"),
    "LV": _Country("LETTONIE", r"LV-\d{4}", "LV-1050", True),
    "MC": _Country("MONACO", r"980\d{2}", "98000"),
    "MT": _Country("MALTE", r"[A-Z]{3} ?\d{4}", "VLT 1117", True),
    "NL": _Country("PAYS-BAS", r"\d{4} ?[A-Z]{2}", "1012 AB"),
    "NO": _Country("NORVEGE", r"\d{4}", "0150"),
    "PL": _Country("POLOGNE", r"\d{2}-\d{3}", "00-950"),
    "PT": _Country("PORTUGAL", r"\d{4}-\d{3}", "1000-001"),
    "RO": _Country("ROUMANIE", r"\d{6}", "010011"),
    "SE": _Country("SUEDE", r"\d{3} ?\d{2}", "113 51"),
    "SI": _Country("SLOVENIE", r"(?:SI-)?\d{4}", "1000"),
    "SK": _Country("SLOVAQUIE", r"\d{3} ?\d{2}", "811 01"),
}
COUNTRY_CODES_BY_NAME: dict[str, str] = {c.name: code for code, c in COUNTRIES.items()}

# Overseas departments and collectivities addressed exactly like mainland France: French
# postcode, no country line. Value: the postcode prefix each one uses. Saint-Barthelemy and
# Saint-Martin share Guadeloupe's 971 range, so the longest prefix must win when reading back.
FRENCH_OVERSEAS: dict[str, str] = {
    "GP": "971",
    "MQ": "972",
    "GF": "973",
    "RE": "974",
    "PM": "975",
    "YT": "976",
    "BL": "97133",
    "MF": "97150",
}
_FRENCH_POSTCODE = re.compile(r"\d{5}")
_COUNTRY_ALIASES = {"UK": "GB", "": "FR"}

# How to shorten each kind of line, for the error messages (La Poste's usual abbreviations).
_HINTS = {
    "company": "shorten the company name (STE for SOCIETE, ETS for ETABLISSEMENTS...)",
    "recipient": "use the first name's initial (M. J DUPONT)",
    "recipient and service": "shorten the service (SCE, DIR...) or give it less text",
    "delivery point": "abbreviate (APT, ETG, ESC, SCE...)",
    "building": "abbreviate (BAT, IMM, RES, ZI, ZA...)",
    "delivery point and building": "abbreviate (APT, ETG, BAT, RES...)",
    "street": "abbreviate (AV, BD, RTE, CHE, PL, ALL...)",
    "locality": "abbreviate (BP, CS, LD...)",
    "postcode and city": "use La Poste's short locality name (ST for SAINT, STE for SAINTE)",
    "country": "check the country code",
}

# Letters that NFKD does not decompose into base + accent but that La Poste still wants plain.
_PLAIN_LETTERS = str.maketrans(
    {"Œ": "OE", "œ": "oe", "Æ": "AE", "æ": "ae", "Ø": "O", "ø": "o", "Ł": "L", "ł": "l",
     "Đ": "D", "đ": "d", "ß": "ss"}
)  # fmt: skip
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
_INITIALISM = re.compile(r"\b(?:[^\W\d_]\.){2,}")  # B.P. Z.I. C.S.
_WORD_END_DOT = re.compile(r"\.(?=[\s\-]|$)")


def person_line(civility: str | None, first_name: str | None, last_name: str | None) -> str:
    """``"M. Jean DUPONT"``: the usual French form, last name in capitals so it stands out."""
    parts = [_clean(civility), _clean(first_name), _clean(last_name).upper()]
    return " ".join(p for p in parts if p)


class CompanyAddress(Protocol):
    """The address columns a company carries (database row or CSV record alike)."""

    name: str
    delivery_point: str
    building: str
    street: str
    locality: str
    postcode: str
    city: str
    country: str


def company_address(
    company: CompanyAddress, *, civility: str, first_name: str, last_name: str
) -> PostalAddress:
    """The letter address of a contact: their company's address, with their name."""
    return PostalAddress(
        recipient=person_line(civility, first_name, last_name),
        company=company.name or None,
        delivery_point=company.delivery_point or None,
        building=company.building or None,
        street=company.street,
        locality=company.locality or None,
        postcode=company.postcode,
        city=company.city,
        country=company.country,
    )


def strip_accents(text: str) -> str:
    """``"Saint-Étienne" -> "Saint-Etienne"``, also folding Œ, Æ, ß... into plain letters."""
    if text.isascii():
        return text  # no letter to fold, nothing to decompose
    decomposed = unicodedata.normalize("NFKD", text.translate(_PLAIN_LETTERS))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def address_block_problems(
    addr: PostalAddress, *, max_lines: int = MAX_LINES, max_length: int = MAX_LENGTH
) -> list[str]:
    """Every reason ``addr`` cannot be printed; empty when :func:`address_block` succeeds."""
    return _build(addr, max_lines=max_lines, max_length=max_length)[1]


def address_block(
    addr: PostalAddress, *, max_lines: int = MAX_LINES, max_length: int = MAX_LENGTH
) -> tuple[str, ...]:
    """The printable block, top line first; raises :class:`AddressError` rather than truncate."""
    lines, problems = _build(addr, max_lines=max_lines, max_length=max_length)
    if problems:
        raise AddressError(problems)
    return lines


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a block sends the letter, read back from its last lines (for the mail house)."""

    postcode: str
    city: str
    country: str  # ISO alpha-2; an overseas department gets its own code (GP, RE...)


def split_destination(lines: Sequence[str]) -> Destination:
    """Read postcode, city and country back from a block made by :func:`address_block`.

    Transports only receive the lines, yet the mail house wants postcode and country in
    columns of their own (postage, sorting). Raises :class:`AddressError` when the last
    lines are not a postcode and city this module would have written.
    """
    if not lines:
        raise AddressError(["the address block is empty"])
    code = COUNTRY_CODES_BY_NAME.get(lines[-1])
    if code is not None and len(lines) >= 2:
        country = COUNTRIES[code]
        pattern, city_first, last = country.postcode, country.city_first, lines[-2]
    else:
        code, pattern, city_first, last = "FR", _FRENCH_POSTCODE.pattern, False, lines[-1]
    regex = (
        rf"(?P<city>.+?) (?P<postcode>{pattern})" if city_first
        else rf"(?P<postcode>{pattern}) (?P<city>.+)"
    )  # fmt: skip
    match = re.fullmatch(regex, last)
    if match is None:
        raise AddressError(
            [f"last address line {last!r} is not a postcode and city for {code}: "
             "build the block with network_anim.channels.postal.address_block"]
        )  # fmt: skip
    postcode = match["postcode"]
    if code == "FR":
        code = _overseas_code(postcode) or "FR"
    return Destination(postcode=postcode, city=match["city"], country=code)


def _overseas_code(postcode: str) -> str | None:
    for code, prefix in sorted(FRENCH_OVERSEAS.items(), key=lambda kv: -len(kv[1])):
        if postcode.startswith(prefix):
            return code
    return None


def _clean(value: str | None) -> str:
    """Drop control and format characters, collapse every run of white space to one space."""
    if not value:
        return ""
    if value.isprintable():
        # No character of the dropped categories (printable excludes all of them); the
        # common case, checked in C rather than character by character.
        return " ".join(value.split())
    # Tabs and line breaks (category Cc too) survive the filter so split() turns them into
    # word gaps; a NUL or a zero-width joiner would only confuse a sorting machine.
    kept = "".join(
        ch for ch in value
        if ch.isspace() or unicodedata.category(ch) not in _DROPPED_CATEGORIES
    )  # fmt: skip
    return " ".join(kept.split())


def _unpunctuate(value: str) -> str:
    """Lines 4 to 6 carry no commas or dots (La Poste): "3, av. Foch" -> "3 av Foch"."""
    value = _INITIALISM.sub(lambda m: m.group().replace(".", ""), value)  # B.P. -> BP
    value = value.replace("’", "'").replace(",", " ")
    # A dot ending a word ("av.", "St.-Jean") goes; one glued between words becomes a space.
    value = _WORD_END_DOT.sub("", value).replace(".", " ")
    return " ".join(value.split())


def _postal_upper(value: str) -> str:
    return " ".join(strip_accents(value.upper()).split())


def _build(
    addr: PostalAddress, *, max_lines: int, max_length: int
) -> tuple[tuple[str, ...], list[str]]:
    problems: list[str] = []
    recipient = _clean(addr.recipient)
    company = _clean(addr.company)
    delivery_point = _clean(addr.delivery_point)
    building = _clean(addr.building)
    street = _unpunctuate(_clean(addr.street))
    locality = _unpunctuate(_clean(addr.locality))
    # Fold accents before removing punctuation: NFKD may turn a exotic comma into ",".
    city = _unpunctuate(_postal_upper(_clean(addr.city)))
    raw_country = _clean(addr.country).upper()
    country = _COUNTRY_ALIASES.get(raw_country, raw_country)
    postcode = _postal_upper(_clean(addr.postcode))

    if not recipient and not company:
        problems.append("no addressee: give a recipient name or a company name")
    if not street:
        problems.append("street is missing: give the number and street (line 4)")
    if not city:
        problems.append("city is missing: give the locality (line 6)")

    abroad: _Country | None = None
    if country == "FR" or country in FRENCH_OVERSEAS:
        postcode = postcode.replace(" ", "")
        if not postcode:
            problems.append("postcode is missing: give the 5-digit French postcode")
        elif not _FRENCH_POSTCODE.fullmatch(postcode):
            problems.append(f"postcode {postcode!r} is not 5 digits (French postcode, e.g. 75001)")
        elif country in FRENCH_OVERSEAS and not postcode.startswith(FRENCH_OVERSEAS[country]):
            problems.append(
                f"postcode {postcode!r} is not in {country} (its postcodes start with "
                f"{FRENCH_OVERSEAS[country]}): check the postcode or the country"
            )
    elif country in COUNTRIES:
        abroad = COUNTRIES[country]
        if not postcode:
            problems.append(
                f"postcode is missing: give the {country} postcode (e.g. {abroad.example})"
            )
        elif not re.fullmatch(abroad.postcode, postcode):
            problems.append(
                f"postcode {postcode!r} is not a valid {country} postcode (e.g. {abroad.example})"
            )
    else:
        problems.append(
            f"country {addr.country!r} is not supported: use an ISO code among FR, "
            f"{', '.join(sorted([*FRENCH_OVERSEAS, *COUNTRIES]))}"
        )
    # Carry on after a field problem so an importer sees the layout problems of the same
    # row too, in one pass.
    if abroad is None:
        last = [("postcode and city", f"{postcode} {city}")]
    elif abroad.city_first:
        last = [("postcode and city", f"{city} {postcode}"), ("country", abroad.name)]
    else:
        last = [("postcode and city", f"{postcode} {city}"), ("country", abroad.name)]
    tail = [("street", street), ("locality", locality), *last]

    def compose(merge_service: bool, merge_building: bool) -> list[tuple[str, str]]:
        # Merging trades a line for width: the recipient and their service share line 2
        # (the standard's "identity and/or service"); the delivery point and the building
        # share line 3 (both are "complements" of the delivery place).
        head: list[tuple[str, str]] = []
        if company:
            head.append(("company", company))
        dp = delivery_point
        if merge_service and recipient and dp:
            head.append(("recipient and service", f"{recipient} - {dp}"))
            dp = ""
        else:
            head.append(("recipient", recipient))
        if merge_building and dp and building:
            head.append(("delivery point and building", f"{dp} {building}"))
        else:
            head += [("delivery point", dp), ("building", building)]
        return [(role, text) for role, text in [*head, *tail] if text]

    # Separate lines read best; merge only as much as the line count demands.
    separate = compose(False, False)
    if not problems and len(separate) <= max_lines and not _too_long(separate, max_length):
        return tuple(text for _, text in separate), []  # the first option below fits
    options = [separate]
    if company:
        options.append(compose(True, False))
    options += [compose(False, True), compose(True, True)] if company else [compose(False, True)]
    fitting = [o for o in options if len(o) <= max_lines]
    best = next((o for o in fitting if not _too_long(o, max_length)), None)
    if best is not None and not problems:
        return tuple(text for _, text in best), []
    if best is None:
        base = options[0]
        needed = len(base) if fitting else min(len(o) for o in options)
        if needed > max_lines:
            problems.append(
                f"the address needs {needed} lines; at most {max_lines}: drop or merge a "
                "line (building, delivery point or locality)"
            )
        if fitting and len(base) > max_lines:
            # Merging would have fitted the count; say which merged line is then too long.
            problems += [
                f"merged into {len(fitting[0])} lines, {p}"
                for p in _too_long(fitting[0], max_length)
            ]
        else:
            problems += _too_long(base, max_length)
    return (), problems


def _too_long(lines: list[tuple[str, str]], max_length: int) -> list[str]:
    return [
        f"line {number} ({role}) '{text}' is {len(text)} characters; at most {max_length}: "
        f"{_HINTS[role]}"
        for number, (role, text) in enumerate(lines, start=1)
        if len(text) > max_length
    ]
