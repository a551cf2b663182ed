"""Phone and email normalisation for imports, fast on the common shapes and exactly as
``phonenumbers`` and ``email_validator`` answer on every input.

A 100,000-contact file spent most of its parse time in these two libraries: a phone
number parsed then matched against every number type twice, and an email's domain
validated (IDNA, Unicode tables) once per contact although a company's contacts share
it. Here:

* the common French shapes ("06 12 34 56 78", "0612345678", "+33 6 12 34 56 78") skip
  ``phonenumbers.parse``: for them it always yields country code 33 and the digits after
  the trunk 0 (France's numbering plan: trunk prefix "0", nine-digit national numbers
  starting 1 to 9); validity and type are then asked of ``phonenumbers`` itself, once;
* an email whose local part is plain ASCII dot-atom text is the local part, "@" and the
  domain as ``email_validator`` normalises it, the domain validated once per distinct
  domain; any other address (quotes, Unicode, a reserved mailbox name, a bad domain,
  a long one) goes through ``validate_email`` whole, for its exact message;
* a number's type is the one ``phonenumbers.number_type`` gives, from the same metadata
  and in the same order, with the region's patterns looked up once instead of once per
  type per number (that lookup was most of the phone's cost);
* results are cached per distinct value (a company's switchboard number repeats on each
  of its contacts).

``tests/test_import_speed_fields.py`` holds the fast paths to the libraries' answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from email_validator.rfc_constants import (
    CASE_INSENSITIVE_MAILBOX_NAMES,
    DNS_LABEL_LENGTH_LIMIT,
    DOMAIN_MAX_LENGTH,
    DOT_ATOM_TEXT,
    EMAIL_MAX_LENGTH,
    LOCAL_PART_MAX_LENGTH,
)
from email_validator.syntax import validate_email_domain_name

# Overseas departments share France's country but not its numbering plan.
FRENCH_OVERSEAS_REGIONS = ("GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF")
_MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)
_UNKNOWN = phonenumbers.PhoneNumberType.UNKNOWN
# ASCII digits only: phonenumbers also reads other scripts' digits, left to it.
_FR_NATIONAL = re.compile(r"0[1-9](?: ?[0-9]{2}){4}")
_FR_INTERNATIONAL = re.compile(r"\+33 ?[1-9](?: ?[0-9]{2}){4}")
_CASE_INSENSITIVE = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)
_Type = phonenumbers.PhoneNumberType
# The order in which phonenumbers' _number_type_helper tries the types before the fixed
# line and mobile ones.
_SPECIAL_TYPES = (
    ("premium_rate", _Type.PREMIUM_RATE),
    ("toll_free", _Type.TOLL_FREE),
    ("shared_cost", _Type.SHARED_COST),
    ("voip", _Type.VOIP),
    ("personal_number", _Type.PERSONAL_NUMBER),
    ("pager", _Type.PAGER),
    ("uan", _Type.UAN),
    ("voicemail", _Type.VOICEMAIL),
)


def _french_digits(value: str, region: str) -> str | None:
    """The national significant number (nine digits, the first 1 to 9) of a value in
    one of the common French shapes, as phonenumbers.parse reads it with country code
    33; None for any other shape."""
    if region == "FR" and _FR_NATIONAL.fullmatch(value):
        return value.replace(" ", "")[1:]
    if _FR_INTERNATIONAL.fullmatch(value):
        return value.replace(" ", "")[3:]
    return None


def parse_phone(value: str, region: str) -> phonenumbers.PhoneNumber:
    """``phonenumbers.parse(value, region)``; raises its NumberParseException alike."""
    digits = _french_digits(value, region)
    if digits is not None:
        return phonenumbers.PhoneNumber(country_code=33, national_number=int(digits))
    return phonenumbers.parse(value, region)


def _alternative(*descs: Any) -> str | None:
    """A regex that fully matches a national number matching every one of ``descs`` as
    phonenumbers' _is_number_matching_desc does (a possible length, then the national
    number pattern in full); None when one of them matches nothing."""
    parts = []
    for desc in descs:
        if desc is None or not desc.national_number_pattern:
            return None
        lengths = "|".join(f".{{{n}}}" for n in sorted(set(desc.possible_length)))
        if lengths:
            parts.append(rf"(?=(?:{lengths})\Z)")
        parts.append(rf"(?=(?:{desc.national_number_pattern})\Z)")
    return "".join(parts) + _ANY


_ANY = ".*"


@cache
def _type_finder(region: str) -> Callable[[str], Any]:
    """A national significant number's type against ``region``'s metadata, as
    phonenumbers' _number_type_helper finds it: its tries, in its order, as the
    alternatives of one regex (the first that matches wins), not a dozen matches (the
    most of a phone number's check)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region, None)
    fixed, mobile = metadata.fixed_line, metadata.mobile
    tries = [(kind, (getattr(metadata, name),)) for name, kind in _SPECIAL_TYPES]
    if metadata.same_mobile_and_fixed_line_pattern:
        tries.append((_Type.FIXED_LINE_OR_MOBILE, (fixed,)))
    else:
        tries += [
            (_Type.FIXED_LINE_OR_MOBILE, (fixed, mobile)),
            (_Type.FIXED_LINE, (fixed,)),
            (_Type.MOBILE, (mobile,)),
        ]
    kinds: dict[str, Any] = {}
    alternatives = []
    for kind, descs in tries:
        alternative = _alternative(*descs)
        if alternative is not None:
            name = f"t{len(kinds)}"
            kinds[name] = kind
            alternatives.append(f"(?P<{name}>{alternative})")
    general = _alternative(metadata.general_desc)
    if general is None or not alternatives:
        return lambda number: _UNKNOWN
    pattern = re.compile(general.removesuffix(_ANY) + "(?:" + "|".join(alternatives) + ")")

    def find(number: str) -> Any:
        match = pattern.fullmatch(number)
        return _UNKNOWN if match is None else kinds[match.lastgroup or ""]

    return find


def number_type(number: phonenumbers.PhoneNumber) -> Any:
    """``phonenumbers.number_type(number)``; UNKNOWN means not a valid number. Only a
    calling code of one region is answered here (its region is then the number's, its
    metadata the region's); the others, and numbers with leading zeros, ask the library."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(number.country_code)
    if (
        regions is None
        or len(regions) != 1
        or regions[0] == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY
        or number.italian_leading_zero
        or phonenumbers.PhoneMetadata.metadata_for_region(regions[0], None) is None
    ):
        return phonenumbers.number_type(number)
    return _type_finder(regions[0])(str(number.national_number))


@lru_cache(maxsize=8192)
def check_phone(
    value: str, column: str, region: str, mobile_only: bool
) -> tuple[str | None, str | None]:
    """(E.164 number, None), or (None, the problem). ``value`` is not empty."""
    digits = _french_digits(value, region)
    if digits is not None:
        # What the general path below gives such a number, without making the
        # PhoneNumber (most of its cost): calling code 33 is France's alone, a number
        # whose first digit is 1 to 9 has no leading zero to keep, and E.164 is the
        # calling code and those digits.
        kind = _type_finder("FR")(digits)
        if kind != _UNKNOWN and not (mobile_only and kind not in _MOBILE_TYPES):
            return f"+33{digits}", None
    try:
        number = parse_phone(value, region)
    except phonenumbers.NumberParseException as exc:
        return None, f"{column} {value!r} is not a phone number: {exc}"
    # is_valid_number() is number_type() != UNKNOWN (same region, same metadata, the same
    # type helper): one pass over the number types instead of two.
    kind = number_type(number)
    valid = kind != _UNKNOWN
    if not valid and region == "FR" and not value.startswith("+"):
        for overseas in FRENCH_OVERSEAS_REGIONS:
            candidate = phonenumbers.parse(value, overseas)
            kind = number_type(candidate)
            if kind != _UNKNOWN:
                number, valid = candidate, True
                break
    if not valid:
        return None, (
            f"{column} {value!r} is not a valid number for region {region} "
            "(write it with its country code, e.g. +33 6 12 34 56 78)"
        )
    if mobile_only and kind not in _MOBILE_TYPES:
        return None, f"mobile {value!r} is not a mobile number; put landlines in the phone column"
    if number.italian_leading_zero is None and number.extension is None:
        # What format_number's E164 writes for a number without leading zeros.
        return f"+{number.country_code}{number.national_number}", None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


# Lower-case letters, digits and inner hyphens, labels of 1 to 63 characters, at least
# two labels, the last ending with a letter: what validate_email_domain_name gives back
# unchanged (UTS-46 maps none of these characters, IDNA leaves such labels alone) once its
# other checks pass. "--" (Punycode, reserved R-LDH labels) is left to it.
_PLAIN_DOMAIN = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z0-9][a-z0-9-]{0,61})?[a-z]"
)
assert DNS_LABEL_LENGTH_LIMIT == 63, "the label length in _PLAIN_DOMAIN"
_SPECIAL_USE_SUFFIXES = tuple("." + name for name in SPECIAL_USE_DOMAIN_NAMES)


def _plain_domain(domain: str) -> bool:
    """Whether validate_email_domain_name accepts ``domain`` and returns it as it is."""
    return (
        len(domain) <= DOMAIN_MAX_LENGTH
        and "--" not in domain
        and _PLAIN_DOMAIN.fullmatch(domain) is not None
        and domain not in SPECIAL_USE_DOMAIN_NAMES
        and not domain.endswith(_SPECIAL_USE_SUFFIXES)
    )


@lru_cache(maxsize=4096)
def _domain(domain: str) -> tuple[str, str] | None:
    """(normalised, IDNA ASCII) domain as validate_email sees it, None when it refuses it.
    A plain domain skips the library's Unicode checks (a tenth of a network's parse)."""
    if _plain_domain(domain):
        return domain, domain
    try:
        info = validate_email_domain_name(domain, test_environment=False, globally_deliverable=True)
    except EmailNotValidError:
        return None
    return info["domain"], info["ascii_domain"]


def _fast_email(value: str) -> str | None:
    """The normalised address when the fast path applies; None sends it to validate_email."""
    if not value.isascii() or value.count("@") != 1 or "<" in value or ">" in value:
        return None  # quotes, display names and Unicode are validate_email's to parse
    local, domain = value.split("@")
    if (
        not local
        or len(local) > LOCAL_PART_MAX_LENGTH
        or not DOT_ATOM_TEXT.match(local)
        or local.lower() in _CASE_INSENSITIVE
        or not domain
        or domain.startswith("[")
    ):
        return None
    found = _domain(domain)
    if found is None:
        return None
    normalised, ascii_domain = found
    address = f"{local}@{normalised}"
    if max(len(value), len(address.encode()), len(local) + 1 + len(ascii_domain)) > (
        EMAIL_MAX_LENGTH
    ):
        return None
    return address


def check_email(value: str) -> tuple[str | None, str | None]:
    """(normalised address, None), or (None, the problem). ``value`` is not empty."""
    fast = _fast_email(value)
    if fast is not None:
        return fast, None
    try:
        return validate_email(value, check_deliverability=False).normalized, None
    except EmailNotValidError as exc:
        return None, f"email {value!r} is not valid: {exc}"
