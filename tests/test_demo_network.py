"""The demo network generator: a clean import, the requested size, a realistic mix."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import pytest

from network_anim.demo.network import HEADER, generate_network_csv
from network_anim.domain import EmailKind, LawfulBasis, Level
from network_anim.network.network_csv import (
    ALL_COLUMNS,
    ContactRecord,
    ImportDefaults,
    NetworkFile,
    parse_network_csv,
)

OVERSEAS = {"Guadeloupe": ("971", "America/Guadeloupe"), "La Réunion": ("974", "Indian/Reunion")}


def parse(text: str) -> NetworkFile:
    # UserError (any bad line) fails the test with every problem listed.
    return parse_network_csv(text, source="demo.csv", defaults=ImportDefaults())


@pytest.fixture(scope="module")
def text() -> str:
    return generate_network_csv()


@pytest.fixture(scope="module")
def network(text: str) -> NetworkFile:
    return parse(text)


def test_default_network_imports_with_every_column(text: str, network: NetworkFile) -> None:
    header = text.splitlines()[0].split(";")
    assert header == list(HEADER)
    assert sorted(header) == sorted(ALL_COLUMNS)
    assert len(network.companies) == 40
    assert len(network.contacts) == 400


def test_same_seed_same_text_other_seed_other_text(text: str) -> None:
    assert generate_network_csv() == text
    assert generate_network_csv(seed=2026) == text
    assert generate_network_csv(seed=2027) != text


@pytest.mark.parametrize(
    ("companies", "contacts", "seed"),
    [(1, 1, 0), (3, 7, 1), (12, 100, 5), (40, 400, 7), (40, 400, 99), (90, 1000, 11)],
)
def test_other_sizes_and_seeds_import_cleanly(companies: int, contacts: int, seed: int) -> None:
    network = parse(generate_network_csv(companies=companies, contacts=contacts, seed=seed))
    assert len(network.companies) == companies
    assert len(network.contacts) == contacts
    directors = Counter(
        c.company_external_id for c in network.contacts if c.level == Level.DIRECTOR
    )
    assert set(directors.values()) == {1}


def test_fewer_contacts_than_companies_is_refused() -> None:
    with pytest.raises(ValueError, match="director"):
        generate_network_csv(companies=10, contacts=9)
    with pytest.raises(ValueError):
        generate_network_csv(companies=0, contacts=5)


def test_ids_are_unique_and_every_company_has_one_director(network: NetworkFile) -> None:
    company_ids = [c.external_id for c in network.companies]
    contact_ids = [c.external_id for c in network.contacts]
    assert len(set(company_ids)) == 40 and all(re.fullmatch(r"D\d{3}", i) for i in company_ids)
    assert len(set(contact_ids)) == 400 and all(re.fullmatch(r"C\d{5}", i) for i in contact_ids)
    assert len({c.name for c in network.companies}) == 40
    levels = Counter((c.company_external_id, c.level) for c in network.contacts)
    for company_id in company_ids:
        assert levels[(company_id, Level.DIRECTOR)] == 1
    correspondents = sum(levels[(i, Level.CORRESPONDENT)] > 0 for i in company_ids)
    assert 15 <= correspondents <= 40  # "often"
    assert Counter(c.level for c in network.contacts)[Level.SELLER] > 250


def test_companies_mix_kinds_sizes_tiers_and_places(network: NetworkFile) -> None:
    companies = network.companies
    assert {c.sector for c in companies} == {"telecom", "electrical", "office", "it", "installer"}
    assert {c.size for c in companies} == {"TPE", "PME", "ETI"}
    assert {c.tier for c in companies} >= {"bronze", "silver", "gold"}
    regions = {c.region for c in companies}
    assert len(regions - {"Belgique", *OVERSEAS}) == 13  # every metropolitan region
    overseas = [c for c in companies if c.region in OVERSEAS]
    belgian = [c for c in companies if c.country == "BE"]
    assert 1 <= len(overseas) <= 2 and 1 <= len(belgian) <= 2
    for company in overseas:
        assert company.country == "FR"
        assert company.postcode.startswith(OVERSEAS[company.region][0])
    for company in belgian:
        assert re.fullmatch(r"\d{4}", company.postcode) and company.region == "Belgique"
    for company in companies:
        if company.country == "FR" and company.region not in OVERSEAS:
            assert re.fullmatch(r"(?!97)\d{5}", company.postcode)
    assert any(re.match(r"(ZA|ZI|ZAC|Parc d'activités) ", c.building) for c in companies)


def test_time_zones_languages_and_civilities_follow_the_place(network: NetworkFile) -> None:
    region_of = {c.external_id: c.region for c in network.companies}
    for contact in network.contacts:
        region = region_of[contact.company_external_id]
        if region in OVERSEAS:
            assert contact.timezone == OVERSEAS[region][1]
        elif region == "Belgique":
            assert contact.timezone == "Europe/Brussels" and contact.language in ("fr", "en")
        else:
            assert contact.timezone == "Europe/Paris" and contact.language == "fr"
        assert contact.civility in (("Mr", "Ms") if contact.language == "en" else ("M.", "Mme"))
    civilities = Counter(c.civility for c in network.contacts)
    assert civilities["Mme"] >= 80 and civilities["M."] >= 150


def test_equipment_mix_reflects_white_and_blue_collar(network: NetworkFile) -> None:
    contacts = network.contacts
    sector_of = {c.external_id: c.sector for c in network.companies}
    kinds = Counter(c.email_kind for c in contacts)
    assert 0.05 <= (kinds[EmailKind.SHARED] + kinds[EmailKind.NONE]) / 400 <= 0.30
    assert kinds[EmailKind.SHARED] >= 5 and kinds[EmailKind.NONE] >= 5
    assert 0.02 <= sum(not c.web_access for c in contacts) / 400 <= 0.15
    assert 0.01 <= sum(c.mobile is None for c in contacts) / 400 <= 0.12

    def share(sector_group: set[str], test: Callable[[ContactRecord], bool]) -> float:
        group = [c for c in contacts if sector_of[c.company_external_id] in sector_group]
        return sum(map(test, group)) / len(group)

    def no_personal_email(c: ContactRecord) -> bool:
        return c.email_kind != EmailKind.PERSONAL

    white, blue = {"telecom", "it", "office"}, {"installer"}
    assert share(white, no_personal_email) < 0.12 < 0.4 < share(blue, no_personal_email)
    assert share(white, lambda c: not c.web_access) < share(blue, lambda c: not c.web_access)
    # A shared mailbox is one generic address for several people of the company.
    shared = Counter(
        (c.company_external_id, c.email) for c in contacts if c.email_kind == EmailKind.SHARED
    )
    assert max(shared.values()) >= 2
    for _, email in shared:
        assert email.split("@")[0] in {
            "contact", "commercial", "info", "accueil", "comptoir", "agence", "commandes",
            "atelier", "secretariat", "bureau",
        }  # fmt: skip


def test_emails_and_phones_look_real(network: NetworkFile) -> None:
    region_of = {c.external_id: c.region for c in network.companies}
    personal = [c.email for c in network.contacts if c.email_kind == EmailKind.PERSONAL]
    assert len(set(personal)) == len(personal)
    mobiles = [c.mobile for c in network.contacts if c.mobile]
    assert len(set(mobiles)) == len(mobiles)
    for contact in network.contacts:
        if contact.email:
            assert re.fullmatch(r"[a-z0-9.-]+@[a-z0-9-]+\.example", contact.email)
        expected = {"Guadeloupe": r"\+590690", "La Réunion": r"\+26269[23]", "Belgique": r"\+324"}
        if contact.mobile:
            prefix = expected.get(region_of[contact.company_external_id], r"\+33[67]")
            assert re.match(prefix, contact.mobile), contact
        if contact.phone:
            assert re.fullmatch(r"\+\d{10,12}", contact.phone)


def test_consents_mostly_given_with_a_few_opt_outs_and_blanks(network: NetworkFile) -> None:
    contacts = network.contacts

    def bases(channel: str) -> Counter:
        return Counter(c.consents.get(channel) for c in contacts)

    email, sms, print_ = bases("email"), bases("sms"), bases("print")
    assert email[LawfulBasis.OPTED_OUT] == 8  # 2 %
    assert sms[LawfulBasis.OPTED_OUT] == 12  # 3 %
    assert email[LawfulBasis.CONSENT] > 250 and sms[LawfulBasis.CONSENT] > 300
    assert print_[LawfulBasis.LEGITIMATE_INTEREST] > 380 and print_[LawfulBasis.OPTED_OUT] >= 1
    # Blanks: no basis recorded, beyond the contacts who simply have no email or mobile.
    with_email = [c for c in contacts if c.email]
    assert 1 <= sum("email" not in c.consents for c in with_email) <= 20
    with_mobile = [c for c in contacts if c.mobile]
    assert 1 <= sum("sms" not in c.consents for c in with_mobile) <= 20
    assert all("email" not in c.consents for c in contacts if not c.email)
    assert all("sms" not in c.consents for c in contacts if not c.mobile)
    assert not any("intranet" in c.consents or "flash" in c.consents for c in contacts)
    shared = [c for c in contacts if c.email_kind == EmailKind.SHARED]
    assert LawfulBasis.CONSENT not in {c.consents.get("email") for c in shared}


def test_the_shipped_tables_load_and_a_malformed_file_is_refused_with_its_place() -> None:
    from importlib import resources

    from network_anim.demo.tables import DATA_FILE, DemoDataError, load_tables, parse_tables

    tables = load_tables()
    assert len(tables.mainland) == 13 and set(tables.areas) == {"mainland", "GP", "RE", "BE"}
    text = resources.files("network_anim.demo").joinpath(DATA_FILE).read_text(encoding="utf-8")
    assert parse_tables(text) == tables
    broken = {
        "not TOML": "[regions\n",
        "regions.Bretagne.cities[0]": text.replace('["Rennes", "35000", "02"]', '["Rennes"]'),
        "kinds.office.group": text.replace('"white"\nsizes = { TPE = 4', '"x"\nsizes = { TPE = 4'),
        "groups.installer.email": text.replace("none = 0.25", "none = 0.5"),
        "people.first_names_male": text.replace("[people]\nfirst_names_male = [", "[people]\nfirst_names_male = 3\nx = ["),
    }  # fmt: skip
    for where, bad in broken.items():
        assert bad != text
        with pytest.raises(DemoDataError, match=re.escape(DATA_FILE)) as error:
            parse_tables(bad)
        if where != "not TOML":
            assert where in str(error.value), (where, error.value)
