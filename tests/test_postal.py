"""The NF Z10-011 address block: slots, merging, limits, abroad and overseas."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from network_anim.channels.postal import (
    COUNTRIES,
    FRENCH_OVERSEAS,
    AddressError,
    Destination,
    PostalAddress,
    address_block,
    address_block_problems,
    person_line,
    split_destination,
    strip_accents,
)


def test_person_line_puts_last_name_in_capitals() -> None:
    assert person_line("M.", "Jean", "Dupont") == "M. Jean DUPONT"
    assert person_line("Mme", " Élise ", "Lefèvre-Dubois") == "Mme Élise LEFÈVRE-DUBOIS"
    assert person_line(None, "", "Martin") == "MARTIN"
    assert person_line("", "", "") == ""


def test_company_person_and_service_fill_the_six_slots() -> None:
    block = address_block(
        PostalAddress(
            company="Société Dupont & Fils",
            recipient=person_line("M.", "Jean", "Dupont"),
            delivery_point="Service achats",
            building="ZI de la Ballastière",
            street="12, av. des Champs-Élysées",
            locality="B.P. 40",
            postcode="33 501",
            city="Libourne Cedex",
        )
    )
    # Seven parts for six lines: the recipient and their service share line 2.
    assert block == (
        "Société Dupont & Fils",
        "M. Jean DUPONT - Service achats",
        "ZI de la Ballastière",
        "12 av des Champs-Élysées",  # L4-L6 without commas or dots
        "BP 40",
        "33501 LIBOURNE CEDEX",
    )


def test_service_gets_its_own_line_when_there_is_room() -> None:
    block = address_block(
        PostalAddress(
            company="Garage Martin",
            recipient="Mme Anne MARTIN",
            delivery_point="Direction commerciale",
            street="3 rue Haute",
            postcode="69003",
            city="Lyon",
        )
    )
    assert block == (
        "Garage Martin",
        "Mme Anne MARTIN",
        "Direction commerciale",
        "3 rue Haute",
        "69003 LYON",
    )


def test_company_without_named_person_addresses_the_service() -> None:
    block = address_block(
        PostalAddress(
            company="Garage Martin",
            recipient="",
            delivery_point="Service comptabilité",
            street="3 rue Haute",
            postcode="69003",
            city="Lyon",
        )
    )
    assert block[:2] == ("Garage Martin", "Service comptabilité")


def test_contact_without_company_starts_with_their_name() -> None:
    block = address_block(
        PostalAddress(
            recipient="M. Paul ROUX",
            delivery_point="Appartement 12 étage 3",
            building="Résidence Les Pins",
            street="8 chemin des Vignes",
            locality="Lieu-dit Les Granges",
            postcode="13100",
            city="Aix-en-Provence",
        )
    )
    assert block == (
        "M. Paul ROUX",
        "Appartement 12 étage 3",
        "Résidence Les Pins",
        "8 chemin des Vignes",
        "Lieu-dit Les Granges",
        "13100 AIX-EN-PROVENCE",
    )


def test_empty_parts_leave_no_blank_line() -> None:
    block = address_block(
        PostalAddress(
            recipient="M. Paul ROUX", building="  ", street="8 rue Neuve", postcode="13100",
            city="Aix",
        )
    )  # fmt: skip
    assert block == ("M. Paul ROUX", "8 rue Neuve", "13100 AIX")


def test_accents_are_removed_on_the_last_line_only() -> None:
    block = address_block(
        PostalAddress(
            recipient="Mme Hélène GÉRARD",
            street="2 place de l'Église",
            postcode="42000",
            city="Saint-Étienne",
        )
    )
    assert block == ("Mme Hélène GÉRARD", "2 place de l'Église", "42000 SAINT-ETIENNE")
    assert strip_accents("Œuvre à Haÿ-lès-Roses") == "OEuvre a Hay-les-Roses"


def test_long_line_is_refused_with_a_hint_not_truncated() -> None:
    addr = PostalAddress(
        recipient="M. Jean DUPONT",
        street="145 avenue du Général de Gaulle prolongée",
        postcode="75008",
        city="Paris",
    )
    with pytest.raises(AddressError) as caught:
        address_block(addr)
    message = str(caught.value)
    assert "line 2 (street)" in message
    assert "is 41 characters; at most 38" in message
    assert "AV" in message  # how to fix it
    assert address_block_problems(addr) == caught.value.problems


def test_seven_lines_are_refused() -> None:
    addr = PostalAddress(
        company="Transports Lambert",
        recipient="M. Luc LAMBERT",
        delivery_point="Service logistique et expéditions",  # too long to share line 2
        building="Bâtiment C",
        street="4 rue des Entrepôts",
        locality="BP 12",
        postcode="59000",
        city="Lille",
    )
    problems = address_block_problems(addr)
    assert any("needs 7 lines; at most 6" in p for p in problems), problems
    with pytest.raises(AddressError):
        address_block(addr)


def test_missing_street_postcode_city_are_all_reported() -> None:
    problems = address_block_problems(
        PostalAddress(recipient="M. A B", street=" ", postcode="", city="")
    )
    joined = " | ".join(problems)
    assert "street is missing" in joined
    assert "postcode is missing" in joined
    assert "city is missing" in joined


def test_bad_french_postcode_is_refused() -> None:
    problems = address_block_problems(
        PostalAddress(recipient="M. A B", street="1 rue A", postcode="7500", city="Paris")
    )
    assert problems == ["postcode '7500' is not 5 digits (French postcode, e.g. 75001)"]


def test_abroad_ends_with_the_country_in_french_capitals() -> None:
    block = address_block(
        PostalAddress(
            company="Distribution Peeters",
            recipient="M. Jan PEETERS",
            street="Rue de la Loi 16",
            postcode="1000",
            city="Bruxelles",
            country="be",
        )
    )
    assert block == (
        "Distribution Peeters",
        "M. Jan PEETERS",
        "Rue de la Loi 16",
        "1000 BRUXELLES",
        "BELGIQUE",
    )
    assert split_destination(block) == Destination("1000", "BRUXELLES", "BE")


def test_abroad_country_line_counts_in_the_six() -> None:
    addr = PostalAddress(
        company="Müller GmbH",
        recipient="Herr Hans MÜLLER",
        delivery_point="Einkauf",
        building="Haus 2",
        street="Hauptstraße 5",
        postcode="10115",
        city="Berlin",
        country="DE",
    )
    block = address_block(addr)
    assert len(block) == 6
    assert block[1] == "Herr Hans MÜLLER - Einkauf"
    assert block[-2:] == ("10115 BERLIN", "ALLEMAGNE")
    with_bp = PostalAddress(**{**addr.__dict__, "locality": "Postfach 12"})
    assert any("needs 7 lines" in p for p in address_block_problems(with_bp))


def test_uk_puts_the_postcode_after_the_town() -> None:
    block = address_block(
        PostalAddress(
            recipient="Ms Jane SMITH", street="10 Downing Street", postcode="sw1a 2aa",
            city="London", country="UK",
        )
    )  # fmt: skip
    assert block[-2:] == ("LONDON SW1A 2AA", "ROYAUME-UNI")
    assert split_destination(block) == Destination("SW1A 2AA", "LONDON", "GB")


def test_switzerland_and_unknown_country() -> None:
    block = address_block(
        PostalAddress(recipient="M. Noé FAVRE", street="Rue du Rhône 8", postcode="1204",
                      city="Genève", country="CH")
    )  # fmt: skip
    assert block[-2:] == ("1204 GENEVE", "SUISSE")
    problems = address_block_problems(
        PostalAddress(recipient="Mr A B", street="1 Main St", postcode="10001",
                      city="New York", country="US")
    )  # fmt: skip
    assert len(problems) == 1
    assert "country 'US' is not supported" in problems[0]


@pytest.mark.parametrize(
    ("country", "postcode", "city"),
    [("RE", "97400", "Saint-Denis"), ("GP", "97110", "Pointe-à-Pitre"),
     ("BL", "97133", "Saint-Barthélemy"), ("YT", "97600", "Mamoudzou")],
)  # fmt: skip
def test_overseas_departments_are_addressed_as_france(
    country: str, postcode: str, city: str
) -> None:
    block = address_block(
        PostalAddress(recipient="Mme L HOARAU", street="5 rue de Paris", postcode=postcode,
                      city=city, country=country)
    )  # fmt: skip
    assert block[-1] == f"{postcode} {strip_accents(city).upper()}"  # no country line
    assert len(block) == 3
    assert split_destination(block).country == country


def test_overseas_postcode_must_match_the_territory() -> None:
    problems = address_block_problems(
        PostalAddress(recipient="M. X", street="1 rue A", postcode="75001", city="Paris",
                      country="MQ")
    )  # fmt: skip
    assert problems and "not in MQ" in problems[0]


def test_split_destination_refuses_a_block_without_postcode() -> None:
    with pytest.raises(AddressError, match="not a postcode and city"):
        split_destination(("M. X", "1 rue A", "PARIS"))
    assert split_destination(("M. X", "1 rue A", "75001 PARIS CEDEX 01")) == Destination(
        "75001", "PARIS CEDEX 01", "FR"
    )


_COUNTRY_CODES = ["FR", "", "uk", "US", *sorted(FRENCH_OVERSEAS), *sorted(COUNTRIES)]
_short = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=44)
_latin = st.text(alphabet="abcdeéèàôçÉŒß ,.'-0123456789\t\n", max_size=44)
_field = st.one_of(_short, _latin)


@settings(max_examples=300, deadline=None)
@given(
    recipient=_field,
    company=st.none() | _field,
    delivery_point=st.none() | _field,
    building=st.none() | _field,
    street=_field,
    locality=st.none() | _field,
    postcode=st.one_of(st.from_regex(r"\d{4,5}", fullmatch=True), _short),
    city=_field,
    country=st.sampled_from(_COUNTRY_CODES),
)
def test_every_block_fits_the_window(
    recipient: str,
    company: str | None,
    delivery_point: str | None,
    building: str | None,
    street: str,
    locality: str | None,
    postcode: str,
    city: str,
    country: str,
) -> None:
    addr = PostalAddress(
        recipient=recipient, company=company, delivery_point=delivery_point, building=building,
        street=street, locality=locality, postcode=postcode, city=city, country=country,
    )  # fmt: skip
    problems = address_block_problems(addr)
    try:
        block = address_block(addr)
    except AddressError as exc:
        assert exc.problems == problems
        assert problems and all(p for p in problems)
        return
    assert problems == []
    assert 1 <= len(block) <= 6
    for line in block:
        assert line.strip(), block
        assert len(line) <= 38, block
        assert line == " ".join(line.split()), block  # no stray or doubled white space
    split_destination(block)  # what the print channel reads back always parses
