"""The import's fast phone and email paths answer exactly as phonenumbers and
email_validator do (network_anim/network/field_checks.py)."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email

from network_anim.demo.network import generate_network_csv
from network_anim.network.field_checks import (
    FRENCH_OVERSEAS_REGIONS,
    check_email,
    check_phone,
    number_type,
    parse_phone,
)


def _library_phone(value: str, column: str, region: str, mobile_only: bool) -> tuple:
    """The import's phone rule written with the library calls only (the code before the
    fast paths)."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        return None, f"{column} {value!r} is not a phone number: {exc}"
    if not phonenumbers.is_valid_number(number) and region == "FR" and not value.startswith("+"):
        for overseas in FRENCH_OVERSEAS_REGIONS:
            candidate = phonenumbers.parse(value, overseas)
            if phonenumbers.is_valid_number(candidate):
                number = candidate
                break
    if not phonenumbers.is_valid_number(number):
        return None, (
            f"{column} {value!r} is not a valid number for region {region} "
            "(write it with its country code, e.g. +33 6 12 34 56 78)"
        )
    mobile_types = (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )
    if mobile_only and phonenumbers.number_type(number) not in mobile_types:
        return None, f"mobile {value!r} is not a mobile number; put landlines in the phone column"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def _phones() -> list[str]:
    rng = random.Random(18)
    values = []
    for prefix in range(1, 10):
        for _ in range(60):
            digits = f"0{prefix}" + "".join(rng.choice("0123456789") for _ in range(8))
            pairs = " ".join(digits[i : i + 2] for i in range(0, 10, 2))
            values += [digits, pairs, "+33 " + pairs[1:], "+33" + digits[1:]]
    return [
        *values,
        "0690 12 34 56",  # Guadeloupe mobile, written the French way
        "06 90 12 34 56",
        "0262 12 34 56",
        "06 12",
        "12",
        "+32 470 12 34 56",
        "+330612345678",
        "00 33 6 12 34 56 78",
        "06.12.34.56.78",
        "06-12-34-56-78",
        "(0)6 12 34 56 78",
        "06 12 34 56 78 ext 12",
        "٠٦١٢٣٤٥٦٧٨",  # Arabic-Indic digits: phonenumbers reads them
        "06  12 34 56 78",
        "0 6 12 34 56 78",
        "abc",
    ]


@pytest.mark.parametrize("region", ["FR", "BE"])
def test_phone_answers_match_the_library(region: str) -> None:
    check_phone.cache_clear()
    for value in _phones():
        for column, mobile_only in (("mobile", True), ("phone", False)):
            assert check_phone(value, column, region, mobile_only) == _library_phone(
                value, column, region, mobile_only
            ), value


def _numbers_near_the_examples() -> list[phonenumbers.PhoneNumber]:
    """For every calling code, each type's example number (from the library's own
    metadata) and variants of it: its last digits changed, a digit more or less, with
    and without a kept leading zero."""
    rng = random.Random(18)
    numbers = []
    for calling_code, regions in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()):
        for region in regions:
            metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
                calling_code, region
            )
            if metadata is None:
                continue
            for name in ("fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost",
                         "voip", "personal_number", "pager", "uan", "voicemail"):  # fmt: skip
                desc = getattr(metadata, name)
                example = desc.example_number if desc is not None else None
                if not example:
                    continue
                variants = [example, example[:-1], example + "5"]
                variants += [example[:-3] + f"{rng.randrange(1000):03d}" for _ in range(4)]
                for digits in variants:
                    for zero in (False, True):
                        numbers.append(
                            phonenumbers.PhoneNumber(
                                country_code=calling_code,
                                national_number=int(digits),
                                italian_leading_zero=zero,
                            )
                        )
    return numbers


def test_number_type_is_the_library_answer() -> None:
    """Every calling code (of one region or several, non-geographic ones), every type."""
    seen = set()
    for number in _numbers_near_the_examples():
        expected = phonenumbers.number_type(number)
        assert number_type(number) == expected, number
        assert (expected != phonenumbers.PhoneNumberType.UNKNOWN) == (
            phonenumbers.is_valid_number(number)
        ), number
        seen.add(expected)
    assert len(seen) == len(phonenumbers.PhoneNumberType.values()), seen


def test_fast_parse_is_the_library_parse() -> None:
    for value in _phones():
        try:
            expected = phonenumbers.parse(value, "FR")
        except phonenumbers.NumberParseException:
            continue
        ours = parse_phone(value, "FR")
        assert (ours.country_code, ours.national_number, ours.italian_leading_zero) == (
            expected.country_code,
            expected.national_number,
            expected.italian_leading_zero,
        ), value


EMAILS = [
    "anne@kappa.example",
    "Anne.Roy@Kappa.Example",
    "anne+tag@kappa.example",
    "a.b.c@sub.kappa.example",
    "postmaster@kappa.example",
    "Abuse@kappa.example",
    "anne@@kappa",
    "nope",
    "anne@kappa",
    "anne@localhost",
    "anne@kappa.local",
    "anne@kappa..example",
    "anne@-kappa.example",
    "anne@ka--ppa.example",
    "anne@xn--bcher-kva.example",
    "anne@bücher.example",
    "ännè@kappa.example",
    '"anne roy"@kappa.example',
    "Anne <anne@kappa.example>",
    ".anne@kappa.example",
    "anne.@kappa.example",
    "an..ne@kappa.example",
    "anne@[192.168.0.1]",
    "anne@kappa.123",
    "x" * 65 + "@kappa.example",
    "x" * 64 + "@" + "k" * 60 + "." + "k" * 60 + "." + "k" * 60 + ".example",
    "anne@" + "k" * 64 + ".example",
    "anne@kappa.example.",
    "anne @kappa.example",
    "anne@kappa.test",
    "anne@kappa.invalid",
    "anne@sub.kappa.onion",
    "anne@home.arpa",
    "anne@arpa",
    "anne@a.b",
    "anne@1.2.3.com",
    "anne@kappa.co1",
    "anne@kappa.-com",
    "anne@kappa.c-m",
    "anne@kappa-.example",
    "anne@ab--cd.example",
    "anne@kappa.exa_mple",
    "anne@KAPPA.example",
    "anne@" + "k" * 63 + ".example",
    "anne@" + "k" * 62 + "." + "t" * 63,
    "anne@" + "k" * 62 + "." + "t" * 64,
    "anne@" + ".".join(["k" * 60] * 4) + ".com",
    "anne@" + ".".join(["k" * 61] * 4) + ".com",
]


def test_plain_domains_are_the_library_answer() -> None:
    """Every domain the fast path keeps as it is, the library keeps as it is; the others
    go to it (the generated network's domains are plain)."""
    from email_validator.syntax import validate_email_domain_name

    from network_anim.network.field_checks import _plain_domain

    generated = generate_network_csv(companies=300, contacts=600, seed=3)
    domains = {line.split(";")[19].partition("@")[2] for line in generated.splitlines()[1:]}
    domains.discard("")
    samples = sorted(domains) + [e.partition("@")[2] for e in EMAILS]
    plain = [d for d in samples if _plain_domain(d)]
    assert set(domains) <= set(plain)
    for domain in plain:
        info = validate_email_domain_name(domain, test_environment=False, globally_deliverable=True)
        assert (info["domain"], info["ascii_domain"]) == (domain, domain)


@pytest.mark.parametrize("value", EMAILS)
def test_email_answers_match_the_library(value: str) -> None:
    try:
        expected = (validate_email(value, check_deliverability=False).normalized, None)
    except EmailNotValidError as exc:
        expected = (None, f"email {value!r} is not valid: {exc}")
    assert check_email(value) == expected
