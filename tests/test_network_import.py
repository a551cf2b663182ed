"""Network import: validation line by line, all or nothing, upsert by external id."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from network_anim.app import App
from network_anim.db.models import Company, Consent, Contact
from tests.conftest import SAMPLE_NETWORK

HEADER = (
    "company_id;company_name;street;postcode;city;contact_id;civility;first_name;last_name;"
    "level;email;email_kind;mobile;web_access;consent_email;consent_sms"
)
GOOD = "K1;Kappa Distribution;4 rue Neuve;75011;Paris;P1;Mme;Anne;Roy;seller;anne@kappa.example;;06 12 34 56 78;yes;consent;consent"


def counts(app: App) -> tuple[int, int, int]:
    with Session(app.engine) as session:
        return (
            session.scalar(select(func.count()).select_from(Company)) or 0,
            session.scalar(select(func.count()).select_from(Contact)) or 0,
            session.scalar(select(func.count()).select_from(Consent)) or 0,
        )


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "network.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def test_sample_network_imports_and_normalises(app: App, cli, config_path: Path) -> None:
    result = cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path))
    assert result.code == 0, result
    assert "companies 8 created" in result.out and "contacts 15 created" in result.out
    with Session(app.engine) as session:
        helene = session.scalars(select(Contact).where(Contact.external_id == "C0001")).one()
        assert helene.mobile == "+33612345678"
        assert helene.email == "helene.dupre@tsl.example"
        assert helene.level == "director" and helene.email_kind == "personal"
        guadeloupe = session.scalars(select(Contact).where(Contact.external_id == "C0011")).one()
        assert guadeloupe.mobile == "+590690123456"  # overseas numbering plan found from 0690
        shared = session.scalars(select(Contact).where(Contact.external_id == "C0004")).one()
        assert shared.email_kind == "shared" and shared.web_access is False
        no_email = session.scalars(select(Contact).where(Contact.external_id == "C0005")).one()
        assert no_email.email is None and no_email.email_kind == "none"
        opted = session.scalars(
            select(Consent)
            .join(Contact)
            .where(Contact.external_id == "C0003", Consent.channel == "sms")
        ).one()
        assert opted.basis == "opted_out"


def test_reimport_upserts_without_duplicates(
    app: App, cli, config_path: Path, tmp_path: Path
) -> None:
    assert cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path)).code == 0
    before = counts(app)
    again = cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path))
    assert again.code == 0 and "0 created, 0 updated" in again.out
    assert counts(app) == before
    changed = SAMPLE_NETWORK.read_text(encoding="utf-8").replace(
        "Julien;Garnier", "Julien;Garnier-Petit"
    )
    path = tmp_path / "changed.csv"
    path.write_text(changed, encoding="utf-8")
    third = cli("import", "network", str(path), "-c", str(config_path), "--json")
    assert third.code == 0
    assert '"contacts_updated": 1' in third.out and '"contacts_created": 0' in third.out
    assert counts(app) == before
    with Session(app.engine) as session:
        assert (
            session.scalars(select(Contact.last_name).where(Contact.external_id == "C0002")).one()
            == "Garnier-Petit"
        )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (GOOD.replace("06 12 34 56 78", "06 12"), "mobile '06 12' is not a valid number"),
        (GOOD.replace("06 12 34 56 78", "01 42 00 00 00"), "is not a mobile number"),
        (GOOD.replace("anne@kappa.example", "anne@@kappa"), "email 'anne@@kappa' is not valid"),
        (
            GOOD.replace("seller", "boss"),
            "level 'boss' is not one of seller, correspondent, director",
        ),
        (GOOD.replace("Roy", '=HYPERLINK("http://x")'), "formula-like cells are refused"),
        (GOOD.replace("Anne", "@SUM(A1)"), "first_name '@SUM(A1)' starts with '@'"),
        (GOOD.replace(";yes;", ";maybe;"), "web_access 'maybe' is not yes or no"),
        (GOOD.replace("consent;consent", "consent;sure"), "consent_sms 'sure' is not one of"),
        (
            GOOD.replace("4 rue Neuve", "4 rue de la Grande Avenue des Champs Fleuris"),
            "postal address",
        ),
    ],
)
def test_bad_line_is_named_and_nothing_changes(
    app: App, cli, config_path: Path, tmp_path: Path, line: str, expected: str
) -> None:
    assert cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path)).code == 0
    before = counts(app)
    good_second = GOOD.replace("K1;", "K2;").replace("P1;", "P2;")
    result = cli(
        "import", "network", str(write(tmp_path, good_second, line)), "-c", str(config_path)
    )
    assert result.code == 1, result
    assert "nothing was imported" in result.err
    assert "line 3:" in result.err and expected in result.err
    assert "Traceback" not in result.err
    assert counts(app) == before


def test_every_bad_line_is_listed(app: App, cli, config_path: Path, tmp_path: Path) -> None:
    bad_email = GOOD.replace("P1;", "P2;").replace("anne@kappa.example", "nope")
    bad_phone = GOOD.replace("P1;", "P3;").replace("06 12 34 56 78", "12")
    duplicate = GOOD
    result = cli(
        "import",
        "network",
        str(write(tmp_path, GOOD, bad_email, bad_phone, duplicate)),
        "-c",
        str(config_path),
    )
    assert result.code == 1
    problem_lines = [line for line in result.err.splitlines() if line.strip().startswith("- line")]
    assert [line.split(":")[0].strip() for line in problem_lines] == [
        "- line 3",
        "- line 4",
        "- line 5",
    ]
    assert "contact_id P1 already on line 2" in result.err
    assert counts(app) == (0, 0, 0)


def test_header_problems(app: App, cli, config_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "company_id;company_name;contact_id;surname;level\nK;Kappa;P;Roy;seller\n", encoding="utf-8"
    )
    result = cli("import", "network", str(path), "-c", str(config_path))
    assert result.code == 1
    assert "unknown column(s): surname" in result.err
    assert "missing required column(s): last_name" in result.err


def test_company_rows_must_agree(app: App, cli, config_path: Path, tmp_path: Path) -> None:
    other = GOOD.replace("P1;", "P2;").replace("Kappa Distribution", "Kappa Distrib")
    result = cli("import", "network", str(write(tmp_path, GOOD, other)), "-c", str(config_path))
    assert result.code == 1
    assert "company K1 differs from line 2" in result.err


def test_not_utf8_is_explained(app: App, cli, config_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(("\n".join([HEADER, GOOD.replace("Roy", "Roÿ")]) + "\n").encode("latin-1"))
    result = cli("import", "network", str(path), "-c", str(config_path))
    assert result.code == 1 and "not UTF-8" in result.err and "CSV UTF-8" in result.err


def test_dry_run_writes_nothing(app: App, cli, config_path: Path) -> None:
    result = cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path), "--dry-run")
    assert result.code == 0 and "15 contacts" in result.out
    assert counts(app) == (0, 0, 0)


def test_progress_hears_every_row_of_each_stage(app: App) -> None:
    from network_anim.demo.network import generate_network_csv
    from network_anim.network.importer import import_network
    from network_anim.network.network_csv import ImportDefaults, parse_network_csv

    network = parse_network_csv(
        generate_network_csv(companies=40, contacts=1200, seed=3),
        source="generated.csv",
        defaults=ImportDefaults(),
    )
    heard: list[tuple[str, int]] = []
    import_network(
        app.engine,
        network,
        now=app.clock.now(),
        source="test",
        progress=lambda stage, done: heard.append((stage, done)),
    )
    totals: dict[str, int] = {}
    for stage, done in heard:
        totals[stage] = totals.get(stage, 0) + done
    assert totals == {"companies": 40, "contacts": 1200, "consents": 1200}
    assert [stage for stage, _ in heard] == sorted(
        (stage for stage, _ in heard), key=["companies", "contacts", "consents"].index
    )
    assert len([1 for stage, _ in heard if stage == "contacts"]) >= 3  # batch by batch


def test_the_import_gives_the_page_cache_back(app: App) -> None:
    """The import raises SQLite's page cache on its connection and puts it back, also when
    the import fails: the pooled connection serves the daemon afterwards."""
    from network_anim.demo.network import generate_network_csv
    from network_anim.network.importer import import_network
    from network_anim.network.network_csv import ImportDefaults, parse_network_csv

    if app.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's page cache")
    network = parse_network_csv(
        generate_network_csv(companies=5, contacts=50, seed=4),
        source="generated.csv",
        defaults=ImportDefaults(),
    )

    def cache_size() -> int:
        with app.engine.connect() as conn:
            return int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())

    before = cache_size()

    def fail_in_contacts(stage: str, done: int) -> None:
        if stage == "contacts":
            raise RuntimeError("stop")

    import_network(app.engine, network, now=app.clock.now(), source="test")
    assert cache_size() == before
    with pytest.raises(RuntimeError):
        import_network(
            app.engine, network, now=app.clock.now(), source="t", progress=fail_in_contacts
        )
    assert cache_size() == before
