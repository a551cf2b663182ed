"""A partner's CSV with its own headers imports through a column mapping (`--map`,
`[import.mapping]`), `--suggest-map` proposes that mapping, and every message still
names the partner file's own lines and columns."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.db.models import Consent, Contact
from tests.conftest import REPO, SAMPLE_NETWORK
from tests.test_network_import import counts

PARTNER = REPO / "examples" / "partner-export.csv"
EXPECTED_MAPPING = REPO / "tests" / "data" / "partner-export.mapping.toml"


def partner_rows() -> list[str]:
    return PARTNER.read_text(encoding="utf-8").splitlines()


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_partner_export_imports_with_a_mapping(app: App, cli, config_path: Path) -> None:
    result = cli(
        "import", "network", str(PARTNER), "--map", str(EXPECTED_MAPPING), "-c", str(config_path)
    )
    assert result.code == 0, result
    assert "companies 3 created" in result.out and "contacts 7 created" in result.out
    with Session(app.engine) as session:
        rows = {c.external_id: c for c in session.scalars(select(Contact))}
        kevin = rows["P101-3"]
        assert (kevin.civility, kevin.first_name, kevin.last_name) == ("M.", "Kévin", "Le Gall")
        assert kevin.role == "Technicien" and kevin.level == "correspondent"
        assert kevin.mobile == "+33698765432" and kevin.email is None
        assert kevin.web_access is False  # "Non"
        olivier = rows["P101-1"]
        assert olivier.level == "director" and olivier.web_access is True  # "Directeur", "Oui"
        assert (
            olivier.phone == "+33240000011" and olivier.email == "o.masson@froid-atlantique.example"
        )
        sms = dict(
            session.execute(
                select(Contact.external_id, Consent.basis)
                .join(Consent, Consent.contact_id == Contact.id)
                .where(Consent.channel == "sms")
            ).all()
        )
        assert sms["P101-1"] == "consent" and sms["P101-3"] == "opted_out"  # "Oui", "Non"
        assert sorted(rows) == [
            "P101-1",
            "P101-2",
            "P101-3",
            "P102-1",
            "P102-2",
            "P103-1",
            "P103-2",
        ]


def test_suggest_map_proposes_the_mapping_that_imports_without_edits(
    app: App, cli, config_path: Path, tmp_path: Path
) -> None:
    result = cli("import", "network", str(PARTNER), "--suggest-map")
    assert result.code == 0, result
    assert result.out == EXPECTED_MAPPING.read_text(encoding="utf-8")
    suggested = tomllib.loads(result.out)
    assert suggested["columns"]["Niveau"] == "level"  # its values are levels, not tiers
    assert suggested["values"]["level"] == {
        "Directeur": "director",
        "Vendeur": "seller",
        "Correspondant": "correspondent",
        "Directrice": "director",
    }
    assert suggested["values"]["consent_sms"] == {"Oui": "consent", "Non": "opted_out"}
    assert suggested["ignore"] == ["Commentaire", "Date de création"]
    written = write(tmp_path, "suggested.toml", result.out.splitlines())
    imported = cli("import", "network", str(PARTNER), "--map", str(written), "-c", str(config_path))
    assert imported.code == 0 and "contacts 7 created" in imported.out, imported


def test_suggestions_for_other_headers() -> None:
    from network_anim.network.mapping_suggestion import normalise, suggest_mapping

    assert normalise("  N° Client ") == "n client" and normalise("E-mail_Pro") == "e mail pro"
    header = "N° client;Société;Nom du contact;E-mail;Statut;Extranet;Newsletter;GSM;Tél."
    rows = [
        "K1;Kappa;Roy;a@k.example;Gold;X;Oui;0612345678;0140000000",
        "K2;Beta;Lee;;Silver;;Non;;",
    ]
    suggestion = suggest_mapping("\n".join([header, *rows]), source="other.csv")
    assert suggestion.columns == {
        "N° client": "company_id",
        "Société": "company_name",
        "Nom du contact": "last_name",
        "E-mail": "email",
        "Statut": "tier",  # Gold, Silver: not levels
        "Extranet": "web_access",
        "GSM": "mobile",
        "Tél.": "phone",
    }
    assert suggestion.values == {"web_access": {"X": "yes", "": "no"}}  # blank = no
    assert "yes/no values" in suggestion.ignore["Newsletter"]
    assert suggestion.missing == ["contact_id", "level"]


def test_bad_values_name_the_source_line_and_column(
    app: App, cli, config_path: Path, tmp_path: Path
) -> None:
    rows = partner_rows()
    # Line 2's comment runs over two lines: the next row starts on line 4, as in the file.
    rows[1] = rows[1].replace(";Client historique;", ';"Client historique,\nappeler le matin";')
    rows[2] = rows[2].replace(";Vendeur;", ";Patron;")  # now line 4
    rows[3] = rows[3].replace("06 98 76 54 32", "06 98")  # line 5
    rows[5] = rows[5].replace(";Marseille;", ";Marseile;")  # line 7, P102 on line 6
    bad = write(tmp_path, "partner.csv", [*rows, "P104;Trop court"])  # line 10
    result = cli(
        "import", "network", str(bad), "--map", str(EXPECTED_MAPPING), "-c", str(config_path)
    )
    assert result.code == 1, result
    assert f"{bad}: 4 bad line(s); nothing was imported" in result.err
    problems = [line.strip() for line in result.err.splitlines() if line.strip().startswith("- ")]
    assert problems[0] == (
        "- line 4: level (column \"Niveau\") 'Patron' is not one of seller, correspondent, director"
    )
    assert problems[1].startswith("- line 5: mobile (column \"Portable\") '06 98' is not")
    assert problems[2] == (
        "- line 7: company P102 differs from line 6 (city (column \"Ville\") 'Marseille' vs "
        "'Marseile'); every row of a company must repeat the same company columns"
    )
    assert problems[3] == "- line 10: 2 cells, the header has 19"
    assert counts(app) == (0, 0, 0)


def test_a_bad_constant_names_its_key(app: App, cli, config_path: Path, tmp_path: Path) -> None:
    mapping = EXPECTED_MAPPING.read_text(encoding="utf-8").replace(
        '# country = "FR"', 'country = "France"'
    )
    path = write(tmp_path, "map.toml", mapping.splitlines())
    result = cli("import", "network", str(PARTNER), "--map", str(path), "-c", str(config_path))
    assert result.code == 1
    assert (
        f"line 2: country (constants.country of {path}) 'France' is not a two-letter ISO code"
        in result.err
    )


def test_a_bad_mapping_names_the_file_and_the_key(
    app: App, cli, config_path: Path, tmp_path: Path
) -> None:
    mapping = tomllib.loads(EXPECTED_MAPPING.read_text(encoding="utf-8"))
    mapping["columns"]["Raison sociale"] = "company_nam"
    mapping["columns"]["Téléphone"] = "mobile"
    mapping["values"]["level"]["VENDEUR "] = "director"
    mapping["constants"] = {"email_kind": "perso", "role": "Vendeur"}
    path = tmp_path / "map.toml"
    path.write_text(_toml(mapping), encoding="utf-8")
    result = cli("import", "network", str(PARTNER), "--map", str(path), "-c", str(config_path))
    assert result.code == 1
    assert f"{path}: 5 problem(s) in the column mapping" in result.err
    assert (
        "columns.\"Raison sociale\": 'company_nam' is not a network column (did you mean "
        "company_name?)" in result.err
    )
    assert (
        'columns: "Portable" and "Téléphone" both map to mobile; map one and add the other '
        "to ignore" in result.err
    )
    assert "constants.email_kind: 'perso' is not one of personal, shared, none" in result.err
    assert (
        'constants.role: role also comes from column "Fonction" (columns); keep one' in result.err
    )
    assert 'values.level."VENDEUR ": "Vendeur" already translates to \'seller\'' in result.err

    header_wise = tomllib.loads(EXPECTED_MAPPING.read_text(encoding="utf-8"))
    header_wise["columns"]["Villes"] = header_wise["columns"].pop("Ville")
    header_wise["ignore"] = ["Commentaire"]
    del header_wise["columns"]["Code contact"]
    path.write_text(_toml(header_wise), encoding="utf-8")
    result = cli("import", "network", str(PARTNER), "--map", str(path), "-c", str(config_path))
    assert result.code == 1
    assert f"{PARTNER}: 5 problem(s) with the column mapping of {path}" in result.err
    assert (
        f'columns.Villes: no column "Villes" in the header of {PARTNER} (its columns: '
        "Raison sociale, Code client, Secteur, Adresse, CP, Ville, Code contact," in result.err
    )
    assert (
        f'{PARTNER} line 1 (header): column "Date de création" is neither mapped nor a '
        'network column: map it (columns."Date de création" = "<field>") or ignore it '
        f'(ignore = ["Date de création"]) in {path}' in result.err
    )
    assert f"columns: no column of {PARTNER} gives contact_id, which is required" in result.err
    top_level = write(tmp_path, "nested.toml", ["[mapping]", 'columns = { "CP" = "postcode" }'])
    nested = cli("import", "network", str(PARTNER), "--map", str(top_level), "-c", str(config_path))
    assert nested.code == 1 and "mapping: unknown key; a mapping file holds columns" in nested.err
    assert counts(app) == (0, 0, 0)


def _toml(mapping: dict) -> str:
    def table(values: dict) -> str:
        return "\n".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in values.items())

    parts = [f"ignore = {json.dumps(mapping['ignore'], ensure_ascii=False)}"]
    parts += ["[columns]", table(mapping["columns"]), "[constants]", table(mapping["constants"])]
    for field, translations in mapping["values"].items():
        parts += [f"[values.{field}]", table(translations)]
    return "\n".join(parts) + "\n"


def test_the_config_mapping_applies_unless_no_map(
    app: App, cli, config_path: Path, tmp_path: Path
) -> None:
    text = EXPECTED_MAPPING.read_text(encoding="utf-8")
    body = text.split("\n[columns]")[1].replace("[values.", "[import.mapping.values.")
    body = body.replace("[constants]", "[import.mapping.constants]")
    ignore = text[text.index("ignore = [") : text.index("]\n") + 1]
    config = config_path.read_text(encoding="utf-8")
    config_path.write_text(
        f"{config}\n[import.mapping]\n{ignore}\n[import.mapping.columns]{body}", encoding="utf-8"
    )
    result = cli("import", "network", str(PARTNER), "-c", str(config_path), "--dry-run")
    assert result.code == 0 and f"(dry run: nothing written) through {config_path}" in result.out
    canonical = cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path))
    assert canonical.code == 1
    assert 'import.mapping.columns."Raison sociale": no column "Raison sociale"' in canonical.err
    as_is = cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path), "--no-map")
    assert as_is.code == 0 and "contacts 15 created" in as_is.out, as_is


def test_a_file_without_mapping_imports_as_before(app: App, cli, config_path: Path) -> None:
    result = cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path))
    assert result.code == 0 and "companies 8 created" in result.out, result
    assert "contacts 15 created" in result.out and "through" not in result.out


def test_dry_run_shows_the_first_rows_as_they_would_be_imported(
    app: App, cli, config_path: Path
) -> None:
    args = ("import", "network", str(PARTNER), "--map", str(EXPECTED_MAPPING), "--dry-run")
    shown = cli(*args, "--rows", "2", "-c", str(config_path))
    assert shown.code == 0, shown
    assert "3 companies, 7 contacts (dry run: nothing written)" in shown.out
    assert "the first 2 row(s) as they would be imported" in shown.out
    assert "line 2" in shown.out and "line 3" in shown.out and "line 4" not in shown.out
    assert "+33611223344" in shown.out and "Raison sociale" in shown.out
    as_json = json.loads(cli(*args, "--json", "-c", str(config_path)).out)
    assert as_json["dry_run"] is True and as_json["contacts"] == 7
    assert as_json["sources"]["web_access"] == "Accès extranet"
    assert len(as_json["rows"]) == 5
    first = as_json["rows"][0]
    assert first["line"] == 2 and first["mobile"] == "+33611223344"
    assert (first["level"], first["web_access"], first["consent_sms"]) == (
        "director",
        "yes",
        "consent",
    )
    assert first["country"] == "FR" and "consent_email" not in first  # default; not given
    plain = json.loads(
        cli(
            "import", "network", str(SAMPLE_NETWORK), "--dry-run", "--json", "-c", str(config_path)
        ).out
    )
    assert plain["mapping"] is None and plain["rows"][0]["contact_id"] == "C0001"
    assert counts(app) == (0, 0, 0)


def test_suggest_map_refuses_options_that_import(cli) -> None:
    result = cli("import", "network", str(PARTNER), "--suggest-map", "--dry-run")
    assert result.code == 2 and "--suggest-map imports nothing: drop --dry-run" in result.err


def test_translations_match_trimmed_any_case_and_blanks(tmp_path: Path) -> None:
    from network_anim.network.column_mapping import load_mapping, read_mapped_network_csv
    from network_anim.network.network_csv import ImportDefaults

    csv_file = write(
        tmp_path,
        "marks.csv",
        [
            "Code;Société;Contact;Nom;Profil;Extranet;Email",
            "K1;Kappa;P1;Roy; VENDEUR ;X;anne@kappa.example",
            "K1;Kappa;P2;Lee;Directeur;;",
        ],
    )
    mapping = write(
        tmp_path,
        "marks.toml",
        [
            "[columns]",
            'Code = "company_id"',
            '"Société" = "company_name"',
            'Contact = "contact_id"',
            'Nom = "last_name"',
            'Profil = "level"',
            'Extranet = "web_access"',  # "Email" is a network column: it needs no entry
            "[constants]",
            'consent_email = "legitimate_interest"',
            "[values.level]",
            'vendeur = "seller"',
            'directeur = "director"',
            "[values.web_access]",
            'x = "yes"',
            '"" = "no"',
        ],
    )
    mapped = read_mapped_network_csv(csv_file, load_mapping(mapping), ImportDefaults())
    roy, lee = mapped.network.contacts
    assert (roy.level, roy.web_access, roy.email) == ("seller", True, "anne@kappa.example")
    assert (lee.level, lee.web_access, lee.email) == ("director", False, None)
    assert roy.consents == {"email": "legitimate_interest"} == lee.consents
    assert mapped.sources["email"] == "Email"
    assert mapped.sources["consent_email"] == "constants.consent_email"


def test_a_column_both_mapped_and_ignored_or_a_value_over_two_lines_is_refused() -> None:
    from network_anim.config.settings import ImportMapping
    from network_anim.errors import UserError
    from network_anim.network.column_mapping import checked_mapping

    spec = ImportMapping(
        columns={"Fonction": "role"},
        ignore=("fonction",),
        values={"level": {"Chef": "direc\ntor"}},
    )
    with pytest.raises(UserError) as raised:
        checked_mapping(spec, "netanim.toml", "import.mapping")
    assert raised.value.summary == "netanim.toml: 2 problem(s) in the column mapping"
    assert raised.value.problems == [
        'import.mapping.columns.Fonction: "Fonction" is also in import.mapping.ignore; map it '
        "or ignore it",
        "import.mapping.values.level.Chef: 'direc\\ntor' holds a line break; give a value on "
        "one line",
    ]
